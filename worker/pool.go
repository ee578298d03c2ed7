// Package worker is the transport engine: a pool of workers that claim due
// transactions from the database with a lease, send them over HTTP and
// record what happened, plus the rescuer of expired leases, the sweeper of
// overdue receipts and the bulk job runner. Every piece of progress lives in
// the database, so several server processes on one database share the work.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"unifi/models"
	"unifi/models/designer"
	"unifi/models/pg"
	"unifi/models/queue"
	"unifi/models/store"
	"unifi/worker/enginedb"
)

// Pool is the transport engine of one server process.
type Pool struct {
	opts   Opts
	store  *store.Store
	engine *enginedb.DB // the engine's SQL, on store
	log    *slog.Logger
	sender *sender

	mu       sync.Mutex
	started  bool
	wake     chan struct{} // closed and replaced to wake every waiting goroutine
	nudge    chan struct{} // one token: wakes one waiting worker (work was notified)
	bulkWake chan struct{} // a bulk job is waiting for a runner: claim it now
	stopping chan struct{} // closed at Stop: claim nothing new
	cancel   context.CancelFunc
	wg       sync.WaitGroup // workers and bulk job runners: the work to finish at a soft stop
	bg       sync.WaitGroup // listener and maintenance
	jobs     map[int64]bool // bulk jobs this process runs

	handMu     sync.Mutex
	handed     []queue.Handed // transactions ticket changes handed over (Take), leased to us, not yet taken by a worker
	handSignal chan struct{}  // one token: wakes the hand worker (Take)
	handBusy   atomic.Bool    // the hand worker is in a round: Take wakes a claiming worker too

	surplus surplus // released work leased to this process beyond a worker's chain

	counts counters // Stats
	edits  edits    // ticket changes of this process in flight (Editing)

	cfgMu   sync.Mutex
	cfg     *enginedb.EngineConfig // integrations, connections, messages: cached briefly
	actions []models.ResponseAction
	cfgAt   time.Time
}

// config returns the cached engine configuration and response actions.
// The cache is dropped when the database notifies a configuration change
// (designer.ConfigChannel, migration 00170) and when the listening
// connection (re)connects; it is read again at the next claim, so a saved
// change reaches the engine of every process within a second. Without a
// listening connection it is read again every poll interval (at least
// 200 ms), and at most every configFallback when listening, in case a
// notification is lost with its connection.
func (p *Pool) config(ctx context.Context) (*enginedb.EngineConfig, []models.ResponseAction) {
	p.cfgMu.Lock()
	defer p.cfgMu.Unlock()
	ttl := max(p.opts.PollInterval, 200*time.Millisecond)
	if p.opts.DatabaseURL != "" {
		ttl = configFallback
	}
	if p.cfg != nil && time.Since(p.cfgAt) < ttl {
		return p.cfg, p.actions
	}
	cfg, err := p.engine.LoadEngineConfig(ctx)
	if err != nil {
		return p.cfg, p.actions // nil config: ClaimWork reads it itself
	}
	actions, err := p.engine.ResponseActions(ctx)
	if err != nil {
		return p.cfg, p.actions
	}
	p.cfg, p.actions, p.cfgAt = cfg, actions, time.Now()
	return cfg, actions
}

// configFallback is how long the engine keeps its configuration while it
// listens for changes: a safety net, the notification drops it sooner.
const configFallback = 10 * time.Second

// ConfigChanged drops the cached configuration: the next claim reads it
// again. Transactions already claimed keep the configuration they were
// claimed with (docs/designer.md, "Which values apply when").
func (p *Pool) ConfigChanged(context.Context) {
	p.cfgMu.Lock()
	p.cfg, p.actions = nil, nil
	p.cfgMu.Unlock()
}

// Opts configures a Pool.
type Opts struct {
	Store       *store.Store
	Logger      *slog.Logger
	DatabaseURL string // for the LISTEN connection; empty: polling only
	Instance    string // lease owner name of this process

	Workers      int           // claiming workers; default DefaultWorkers
	Batch        int           // transactions claimed at once per worker; default DefaultBatch
	Lease        time.Duration // claim lease (plus the integration's sync timeout); default 30 s
	PollInterval time.Duration // fallback poll, rescuer and sweeper period; default 1 s
	// SoftStopTimeout is how long Stop waits for in-flight sends before
	// cancelling them; default 10 s (Stop's context can shorten it).
	SoftStopTimeout time.Duration
	// HTTPClient sends the requests; default a client tuned for many
	// concurrent requests to few hosts, which refuses to connect to a
	// link-local or cloud metadata address unless AllowLinkLocal is set.
	HTTPClient *http.Client
	// AllowLinkLocal (ALLOW_LINK_LOCAL_ENDPOINTS) lets the default client
	// connect to link-local and metadata addresses (docs/designer.md).
	AllowLinkLocal bool
}

// The engine's defaults (WORKERS, WORKER_BATCH): up to 800 requests in
// flight to one remote, as 4 workers with batches of 200. Larger batches
// amortise the claim and the recording statements over more transactions,
// and fewer workers mean fewer database transactions at once on the
// machine's cores: on 2 cores (bench, engine section) 4 × 200 drained
// 100,000 queued in 17.6–18.0 s against 20.0–22.2 s for 8 × 100, with less
// CPU per transaction in PostgreSQL (0.19 against 0.23–0.25 ms). Lower them
// for a remote that takes less.
const (
	DefaultWorkers = 4
	DefaultBatch   = 200
)

// New returns a Pool; Start runs it.
func New(o Opts) *Pool {
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Lease <= 0 {
		o.Lease = 30 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.SoftStopTimeout <= 0 {
		o.SoftStopTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			DialContext: (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second,
				Control: designer.DialControl(o.AllowLinkLocal)}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}}
	}
	return &Pool{opts: o, store: o.Store, engine: enginedb.New(o.Store), log: o.Logger.With(slog.String("instance", o.Instance)),
		sender: newSender(o.HTTPClient, o.Store.Now, o.Store.Scripts()), wake: make(chan struct{}), nudge: make(chan struct{}, 1),
		handSignal: make(chan struct{}, 1), bulkWake: make(chan struct{}, 1), jobs: map[int64]bool{}}
}

// Start runs the workers, the LISTEN connection and the maintenance loop.
// Cancelling ctx stops the pool hard (in-flight sends are abandoned and
// their leases expire); Stop stops it softly.
func (p *Pool) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.started {
		return errors.New("start worker pool: already started")
	}
	p.started = true
	p.handMu.Lock() // Take reads stopping under it
	p.stopping = make(chan struct{})
	p.handMu.Unlock()
	p.store.HandTo(p)
	jobCtx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	for i := range p.opts.Workers + 1 { // the last is the hand worker
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.runWorker(jobCtx, i, i == p.opts.Workers)
		}()
	}
	p.bg.Add(2)
	go func() {
		defer p.bg.Done()
		p.listen(jobCtx)
	}()
	go func() {
		defer p.bg.Done()
		p.maintain(jobCtx)
	}()
	p.log.InfoContext(ctx, "engine started", slog.Int("workers", p.opts.Workers), slog.Int("batch", p.opts.Batch))
	return nil
}

// Stop stops claiming, waits for in-flight sends and bulk job steps up to
// the soft stop timeout (or ctx's end), then cancels what is left and waits
// for every goroutine to return.
func (p *Pool) Stop(ctx context.Context) error {
	p.mu.Lock()
	if !p.started {
		p.mu.Unlock()
		return nil
	}
	p.started = false
	p.store.StopHandingTo(p)
	p.handMu.Lock() // Take gives back what comes after this
	close(p.stopping)
	p.handMu.Unlock()
	p.mu.Unlock()
	p.Notify(ctx)

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	soft := time.NewTimer(p.opts.SoftStopTimeout)
	defer soft.Stop()
	var err error
	select {
	case <-done:
	case <-soft.C:
		err = errors.New("stop worker pool: in-flight sends cancelled after the soft stop timeout")
	case <-ctx.Done():
		err = fmt.Errorf("stop worker pool: %w", ctx.Err())
	}
	p.cancel()
	<-done
	p.giveBackSurplus()
	p.handMu.Lock()
	left := p.handed
	p.handed = nil
	p.handMu.Unlock()
	p.giveBackIDs(p.log, handedIDs(left))
	p.bg.Wait()
	p.opts.HTTPClient.CloseIdleConnections()
	p.log.Info("engine stopped")
	return err
}

// Lease implements queue.Taker: what a claim of this engine would lease.
func (p *Pool) Lease() (owner string, seconds float64) {
	return p.opts.Instance, p.opts.Lease.Seconds()
}

// Take implements queue.Taker: the committed transactions are leased to
// this engine, to be sent next by the hand worker, or by a claiming worker
// woken for them when the hand worker is in a round (runWorker). A stopping
// engine gives them back at once, for any engine to claim.
func (p *Pool) Take(handed []queue.Handed) {
	p.handMu.Lock()
	if p.isStopping() {
		p.handMu.Unlock()
		p.giveBackIDs(p.log, handedIDs(handed))
		return
	}
	p.handed = append(p.handed, handed...)
	p.handMu.Unlock()
	select {
	case p.handSignal <- struct{}{}:
	default: // the hand worker is already due to look
	}
	if p.handBusy.Load() {
		p.wakeOne()
	}
}

// takeHanded takes up to n of the handed-over transactions, waking another
// worker for the rest.
func (p *Pool) takeHanded(n int) []queue.Handed {
	p.handMu.Lock()
	defer p.handMu.Unlock()
	if len(p.handed) == 0 || n <= 0 {
		return nil
	}
	k := min(n, len(p.handed))
	taken := slices.Clone(p.handed[:k])
	p.handed = p.handed[k:]
	if len(p.handed) > 0 {
		p.wakeOne()
	}
	return taken
}

// handedIDs are the ids of handed-over transactions.
func handedIDs(handed []queue.Handed) []int64 {
	ids := make([]int64, len(handed))
	for i, h := range handed {
		ids[i] = h.Transaction.ID
	}
	return ids
}

// Notify wakes every waiting worker of this process (other processes are
// woken by NOTIFY from the database transaction that made the work).
func (p *Pool) Notify(context.Context) {
	p.mu.Lock()
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// wakeOne wakes one waiting worker for work a NOTIFY announced. Waking
// every worker for each notification made the idle ones race for the same
// few transactions: under the latency bench's load (a NOTIFY every 5 ms)
// 7,972 claims for 3,139 recorded batches in 13 s, most of them empty or
// splitting a handful of transactions, each a walk of the claimable index
// and each split a round of recording statements more (pg_stat_statements).
// Waking one: latency p50 8.9, 11.2, 7.5 ms against 11.9, 11.2, 12.7 in
// alternating runs, PostgreSQL CPU per load transaction down 5-34 %
// (docs/engine.md). The worker that finds a full batch wakes the next
// (runWorker), so a large release still gets every worker at once.
func (p *Pool) wakeOne() {
	select {
	case p.nudge <- struct{}{}:
	default: // a worker is already due to wake
	}
}

func (p *Pool) wakeChan() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.wake
}

func (p *Pool) isStopping() bool {
	select {
	case <-p.stopping:
		return true
	default:
		return false
	}
}

// runWorker is one worker: claim a batch, send it, record it, repeat; wait for a
// wake-up or the poll interval when there is nothing to do. Recording a batch
// leases the transactions it releases (the next on each finished bond) to
// this worker, up to four fifths of a batch: they are sent next without a
// claim of their own; the rest go to the process's surplus. What the chain
// leaves of a batch (at least a fifth) is filled by a claim of other due
// work, in due order, so no bond waits long behind busy ones, and by
// surplus, each first in every other round. A round may send the work
// ticket changes of this process handed over (Take) in place of its claim;
// the round after it claims.
//
// The hand worker (hand) never claims: it sends what ticket changes handed
// over, and the work its recordings chain, so that an edit's message does
// not wait for a claiming worker to finish its round when all of them are
// busy with the load (docs/engine.md, "Sixth round": commit -> request was
// 2.5-3.7 ms at the median with two claiming workers beside half the load,
// and up to 17 ms in the slowest probes with four). A claiming worker still
// takes handed-over work when it comes first.
func (p *Pool) runWorker(ctx context.Context, idx int, hand bool) {
	log := p.log.With(slog.Int("worker", idx))
	if hand {
		log = p.log.With(slog.String("worker", "hand"))
	}
	failures := 0
	var chained []*enginedb.Work
	handedLast := false // the last round sent handed-over work instead of claiming
	slack := false      // this worker's last claim came back short: it gives way to edits (giveWay)
	surplusFirst := false
	for {
		if p.isStopping() || ctx.Err() != nil {
			p.giveBack(log, chained)
			return
		}
		wake := p.wakeChan()
		cfg, actions := p.config(ctx)
		limit := claimLimit(p.opts.Batch, len(chained))
		claim := enginedb.ClaimOpts{Owner: p.opts.Instance, Limit: limit, Lease: p.opts.Lease, Config: cfg}
		var claimed []*enginedb.Work
		var err error
		var handed []queue.Handed
		if !handedLast || hand {
			handed = p.takeHanded(limit)
		}
		switch handedLast = len(handed) > 0; {
		case hand && !handedLast:
			// Nothing handed over: send what is chained, or wait for Take.
		case handedLast:
			// Leased to us when written and handed over with what a claim
			// reads (queue.Taker): no claim this round, nor a read. The
			// next round claims, so that a stream of changes made here
			// cannot keep the work of other processes waiting.
			claimed, err = p.engine.HandedWork(ctx, handed, cfg)
		default:
			if slack {
				p.giveWay(ctx)
			}
			// Rounds alternate between the surplus first and the claim
			// first, so that neither waits behind the other: due work in
			// the database gets a claim at least every other round, and
			// the surplus a place in a batch at least as often.
			if surplusFirst = !surplusFirst; surplusFirst {
				chained = append(chained, p.takeSurplus(log, p.opts.Batch-len(chained))...)
				claim.Limit = claimLimit(p.opts.Batch, len(chained))
			}
			if claim.Limit == 0 {
				break
			}
			if claimed, err = p.engine.ClaimWork(ctx, claim); len(claimed) == claim.Limit {
				p.wakeOne() // there may be more due: another worker claims it
			}
			if err == nil {
				p.counts.countClaim(len(claimed))
				slack = len(claimed) < claim.Limit
				if !surplusFirst {
					chained = append(chained, p.takeSurplus(log, claim.Limit-len(claimed))...)
				}
			}
		}
		if err != nil && ctx.Err() == nil && len(chained) == 0 {
			// The database is away (the fault tests restart it): back off, up
			// to 2 s, instead of retrying and logging every poll interval.
			failures++
			if failures == 1 || failures%10 == 0 {
				log.ErrorContext(ctx, "claim work", slog.String("error", err.Error()), slog.Int("failures", failures))
			}
			p.waitFor(ctx, nil, nil, min(p.opts.PollInterval<<min(failures, 6), 2*time.Second))
			continue
		}
		failures = 0
		batch := append(chained, claimed...)
		if hand {
			p.handBusy.Store(len(batch) > 0)
		}
		if len(batch) == 0 {
			if hand {
				p.waitFor(ctx, nil, p.handSignal, p.opts.PollInterval)
			} else {
				p.wait(ctx, wake)
			}
			continue
		}
		p.counts.countRound(len(chained), len(claimed), handedLast)
		chained = nil
		results := p.sendBatch(ctx, log, batch, actions)
		if ctx.Err() != nil {
			return // hard stop: nothing recorded; the leases expire and the work is rescued
		}
		next := enginedb.ClaimOpts{Owner: p.opts.Instance, Limit: chainShare(p.opts.Batch) + p.surplusRoom(),
			Lease: p.opts.Lease, Config: cfg}
		if p.isStopping() {
			next.Limit = 0
		}
		if slack {
			p.giveWay(ctx)
		}
		_, chained, err = p.engine.RecordAttempts(ctx, results, next)
		chained = p.keepChain(chained)
		if err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "record attempts", slog.String("error", err.Error()), slog.Int("count", len(results)))
		}
	}
}

// claimLimit is how many a worker claims beside chained work: what is left
// of its batch, rounded down to a fifth of a batch. Each limit is a prepared
// statement with a plan of its own (enginedb.claimWorkSQL), so a worker asks
// for five limits (nine at most, for a batch under 25) instead of one per
// count of chained work. It claims at most a fifth of a batch fewer than it
// could, and at least a fifth (RecordAttempts chains at most the rest).
func claimLimit(batch, chained int) int {
	step := max(batch/5, 1)
	free := batch - chained
	return free - free%step
}

// giveBack frees the leases of chained work that a stopping worker will not
// send, so that another process takes it at once instead of after the lease.
func (p *Pool) giveBack(log *slog.Logger, chained []*enginedb.Work) {
	ids := make([]int64, len(chained))
	for i, w := range chained {
		ids[i] = w.Transaction.ID
	}
	p.giveBackIDs(log, ids)
}

// giveBackIDs frees this engine's leases on the transactions ids, which it
// will not send.
func (p *Pool) giveBackIDs(log *slog.Logger, ids []int64) {
	if len(ids) == 0 {
		return
	}
	// The pool's context may be cancelled by now: a short one of its own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.engine.ReleaseLeases(ctx, p.opts.Instance, ids); err != nil {
		log.ErrorContext(ctx, "give back leased work", slog.String("error", err.Error()), slog.Int("count", len(ids)))
	}
}

func (p *Pool) wait(ctx context.Context, wake <-chan struct{}) {
	p.waitFor(ctx, wake, p.nudge, p.opts.PollInterval)
}

// waitFor waits d, or less when woken (wake closed, or a token taken from
// nudge), stopped or cancelled; a nil channel never fires.
func (p *Pool) waitFor(ctx context.Context, wake, nudge <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wake:
	case <-nudge:
	case <-t.C:
	case <-p.stopping:
	case <-ctx.Done():
	}
}

// sendBatch sends every claimed transaction at the same time (they are on
// different bonds: at most one per bond is in progress) and returns the
// results of those not abandoned.
func (p *Pool) sendBatch(ctx context.Context, log *slog.Logger, batch []*enginedb.Work, actions []models.ResponseAction) []enginedb.AttemptResult {
	results := make([]enginedb.AttemptResult, len(batch))
	ok := make([]bool, len(batch))
	var wg sync.WaitGroup
	for i, w := range batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					log.ErrorContext(ctx, "send panicked", slog.Int64("transaction_id", w.Transaction.ID),
						slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
				}
			}()
			res, err := p.Work(ctx, w, actions)
			if err != nil {
				if !errors.Is(err, errAbandoned) {
					log.ErrorContext(ctx, "send", slog.Int64("transaction_id", w.Transaction.ID),
						slog.Int64("bond_id", w.Transaction.BondID), slog.String("error", err.Error()))
				}
				return
			}
			results[i], ok[i] = res, true
			level := slog.LevelDebug
			if res.Outcome != enginedb.OutcomeDelivered {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "sent", slog.Int64("transaction_id", w.Transaction.ID),
				slog.Int64("bond_id", w.Transaction.BondID), slog.Int("attempt", w.Attempt()),
				statusAttr(res.Request.ResponseStatus), slog.String("error", res.Error))
		}()
	}
	wg.Wait()
	out := results[:0]
	for i := range results {
		if ok[i] {
			out = append(out, results[i])
		}
	}
	return out
}

// statusAttr is the remote's HTTP status for a log line: the number, or
// "none" when no answer came (a *int would print as its address).
func statusAttr(status *int) slog.Attr {
	if status == nil {
		return slog.String("status", "none")
	}
	return slog.Int("status", *status)
}

// Work makes one attempt at a claimed transaction. A panic or an incomplete
// claim becomes an error; the lease then expires and it is tried again.
func (p *Pool) Work(ctx context.Context, w *enginedb.Work, actions []models.ResponseAction) (res enginedb.AttemptResult, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("work on transaction %d panicked: %v", w.Transaction.ID, r)
		}
	}()
	if w.Integration == nil || w.Connection == nil || w.Message == nil {
		return res, fmt.Errorf("work on transaction %d: its integration, connection or message is gone", w.Transaction.ID)
	}
	return p.sender.attempt(ctx, w, actions)
}

// listen holds a dedicated connection (pg.Listen) that LISTENs on
// queue.NotifyChannel and queue.BulkNotifyChannel and wakes the workers or
// the bulk job claimer; it reconnects after errors, and on every
// (re)connection wakes both for anything notified while it was not
// listening.
func (p *Pool) listen(ctx context.Context) {
	if p.opts.DatabaseURL == "" {
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { // Stop ends listening too
		defer close(watched)
		select {
		case <-p.stopping:
			cancel()
		case <-lctx.Done():
		}
	}()
	defer func() { cancel(); <-watched }()
	pg.Listen(lctx, p.opts.DatabaseURL, pg.ListenOpts{
		Channels: map[string]func(context.Context, *pgconn.Notification){
			queue.NotifyChannel:     func(context.Context, *pgconn.Notification) { p.wakeOne() },
			queue.BulkNotifyChannel: func(context.Context, *pgconn.Notification) { p.wakeBulk() },
			designer.ConfigChannel: func(ctx context.Context, n *pgconn.Notification) {
				p.ConfigChanged(ctx)
				p.log.InfoContext(ctx, "configuration changed: cached configuration dropped", slog.String("config_version", n.Payload))
			},
		},
		OnConnect: func(ctx context.Context) {
			p.ConfigChanged(ctx) // a change may have been missed while not listening
			p.Notify(ctx)        // anything notified while we were not listening
			p.wakeBulk()
		},
		OnError: func(ctx context.Context, err error) {
			p.log.WarnContext(ctx, "listen for work", slog.String("error", err.Error()))
		},
	})
}

// wakeBulk makes the maintenance loop claim waiting bulk jobs now.
func (p *Pool) wakeBulk() {
	select {
	case p.bulkWake <- struct{}{}:
	default:
	}
}

// maintain runs, every poll interval: the lease rescuer, the receipt
// sweeper, the replayed-request sender and the bulk job claimer; a new bulk
// job (BulkNotifyChannel) is claimed at once.
func (p *Pool) maintain(ctx context.Context) {
	t := time.NewTicker(p.opts.PollInterval)
	defer t.Stop()
	p.maintainOnce(ctx)
	for {
		select {
		case <-t.C:
			p.maintainOnce(ctx)
		case <-p.bulkWake:
			p.claimBulkJobs(ctx)
		case <-ctx.Done():
			return
		case <-p.stopping:
			return
		}
	}
}

func (p *Pool) maintainOnce(ctx context.Context) {
	if n, err := p.engine.RescueLeases(ctx); err != nil && ctx.Err() == nil {
		p.log.ErrorContext(ctx, "rescue leases", slog.String("error", err.Error()))
	} else if n > 0 {
		p.log.WarnContext(ctx, "rescued expired leases", slog.Int64("count", n))
	}
	if n, err := p.engine.SweepReceipts(ctx); err != nil && ctx.Err() == nil {
		p.log.ErrorContext(ctx, "sweep receipts", slog.String("error", err.Error()))
	} else if n > 0 {
		p.log.InfoContext(ctx, "receipts overdue: timed out", slog.Int64("count", n))
	}
	if _, err := p.store.SendReadyRequests(ctx, p.sender.replay); err != nil && ctx.Err() == nil {
		p.log.ErrorContext(ctx, "send replayed requests", slog.String("error", err.Error()))
	}
	p.claimBulkJobs(ctx)
}

// claimBulkJobs takes over every running bulk job that no live process holds
// and runs each in its own goroutine.
func (p *Pool) claimBulkJobs(ctx context.Context) {
	for ctx.Err() == nil && !p.isStopping() {
		job, err := p.store.ClaimBulkJob(ctx, p.opts.Instance, p.opts.Lease)
		if err != nil {
			if !errors.Is(err, models.ErrNotFound) && ctx.Err() == nil {
				p.log.ErrorContext(ctx, "claim bulk job", slog.String("error", err.Error()))
			}
			return
		}
		p.mu.Lock()
		if p.jobs[job.ID] || !p.startedLocked() {
			p.mu.Unlock()
			continue
		}
		p.jobs[job.ID] = true
		p.wg.Add(1)
		p.mu.Unlock()
		go func() {
			defer p.wg.Done()
			p.runBulkJob(ctx, job)
		}()
	}
}

func (p *Pool) startedLocked() bool {
	select {
	case <-p.stopping:
		return false
	default:
		return true
	}
}

// runBulkJob steps a bulk job until it finishes, the lease is lost or the
// pool stops (then another process, or this one after a restart, continues).
func (p *Pool) runBulkJob(ctx context.Context, job *models.BulkJob) {
	log := p.log.With(slog.Int64("bulk_job_id", job.ID), slog.String("kind", string(job.Kind)))
	log.InfoContext(ctx, "bulk job running", slog.Int("total", job.Total))
	defer func() {
		p.mu.Lock()
		delete(p.jobs, job.ID)
		p.mu.Unlock()
	}()
	step := min(p.opts.PollInterval, 200*time.Millisecond)
	t := time.NewTicker(step)
	defer t.Stop()
	settled, full := -1, false
	var counted time.Time
	countEvery := step
	for n := 0; ; n++ {
		// Counting visits every open item: on a large job (100,000 items
		// take ~50 ms to count) count at most every second, and every step
		// once a job is down to its last 10,000 items.
		count := full || time.Since(counted) >= countEvery
		// The full pass visits every open item: every 100 steps, after a step
		// without progress, and on the first step, except for a new resume
		// (all its items are open, and nothing has happened to them yet).
		first := n == 0 && (job.Kind != models.BulkResume || job.ReleasedThrough > 0)
		j, err := p.store.StepBulkJob(ctx, p.opts.Instance, job.ID, p.opts.Lease, full || first || (n > 0 && n%100 == 0), count)
		if n == 0 && err == nil {
			if err := p.store.AnalyzeBulkItems(ctx, job); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, "bulk job statistics", slog.String("error", err.Error()))
			}
		}
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			log.WarnContext(ctx, "bulk job taken over by another process")
			return
		case err != nil && ctx.Err() == nil:
			log.ErrorContext(ctx, "bulk job step", slog.String("error", err.Error()))
		case err == nil && j.State != models.BulkRunning:
			log.InfoContext(ctx, "bulk job finished", slog.String("state", string(j.State)),
				slog.Int("done", j.Done), slog.Int("failed", j.Failed), slog.Int("total", j.Total))
			return
		case err == nil && count:
			// A step without progress looks closer next time.
			full = j.Done+j.Failed == settled
			settled = j.Done + j.Failed
			counted = time.Now()
			open := j.Total - j.Done - j.Failed
			countEvery = min(max(step*time.Duration(open/10000), step), time.Second)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		case <-p.stopping:
			p.store.ReleaseBulkJob(context.WithoutCancel(ctx), p.opts.Instance, job.ID)
			return
		}
	}
}
