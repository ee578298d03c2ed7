package main

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/queue"
	"unifi/models/store"
	"unifi/worker"
)

// latencyFigures are the latency part's measures.
type latencyFigures struct {
	p50, p99 time.Duration
	// The phases' medians, each over the samples on its own: the ticket
	// change (UpdateTicket, its database transaction and commit), the
	// commit to the engine starting the request (NOTIFY, the LISTEN
	// connection, waking a worker, the claim), the request (to the remote's
	// answer, which it sends once it has applied the message) and the
	// bench seeing the remote's count move (its /_bench/wait answer).
	change, wake, send, observe time.Duration
	// recorded is the median time from seen to the engine having recorded
	// the probe's completion (its bond free again): the next probe waits
	// for it, so that each finds its bond idle, as the figure's name says.
	recorded time.Duration
	// tail is the slowest 1 % of the probes (five at most), slowest first,
	// with their phases: what the p99 is made of.
	tail             []probePhases
	loadTarget, load float64 // tx/s asked and delivered beside the probes
	factor           float64 // loadTarget's share of half the capacity (BENCH_LATENCY_FACTOR; 1)
	// writes and delivery are the rates from which loadTarget is set
	// (calibrateLoad); busy is the share of the machine's CPU (engine,
	// PostgreSQL, remote and the load's writer) used while the probes ran.
	writes, delivery, busy float64
	// backlog is how many load transactions were unfinished when the
	// probes ended: more than a second's worth means the machine could not
	// carry the load asked, and the figures are of an overload.
	backlog int64
	loadCPU cpuPer
	// rounds is what the engine's workers did while the probes ran
	// (worker.Stats, the end's counts less the start's).
	rounds worker.Stats
}

func (l latencyFigures) lines() []string {
	return []string{
		fmt.Sprintf("latency p50: %.1f ms", ms(l.p50)),
		fmt.Sprintf("latency p99: %.1f ms", ms(l.p99)),
		fmt.Sprintf("latency load: %.0f tx/s delivered beside the probes (asked %.0f: %s the machine's capacity to "+
			"write and deliver them, 1/(1/%.0f + 1/%.0f): delivery and the load's writer alone, tx/s), "+
			"machine %.0f%% busy during the probes, %d unfinished at the end", l.load, l.loadTarget, l.share(), l.delivery,
			l.writes, 100*l.busy, l.backlog),
		fmt.Sprintf("latency phases (medians): change %.2f ms, commit to request %.2f ms, request %.2f ms, seen %.2f ms; "+
			"completion recorded %.2f ms after seen", ms(l.change), ms(l.wake), ms(l.send), ms(l.observe), ms(l.recorded)),
		l.loadCPU.line("latency load"),
		fmt.Sprintf("latency slowest 1 %% (%d slowest shown): %s", len(l.tail), l.tailLine()),
		l.roundsLine(),
	}
}

// roundsLine says how large the engine's rounds were beside the probes.
func (l latencyFigures) roundsLine() string {
	return fmt.Sprintf("latency engine rounds: %s during the probes; a worker gave way to a probe's edit %d times",
		roundsNote(l.rounds), l.rounds.GaveWay)
}

// roundsNote says how many rounds the engine's workers sent, how large they
// were, how their transactions came to them and how many claims they made.
func roundsNote(r worker.Stats) string {
	sent := max(r.Sent(), 1)
	pct := func(n int64) float64 { return 100 * float64(n) / float64(sent) }
	return fmt.Sprintf("%d, %.1f transactions a round (%.0f%% claimed, %.0f%% chained, %.0f%% handed over); "+
		"%d claims, %.0f%% of them empty",
		r.Rounds, float64(r.Sent())/float64(max(r.Rounds, 1)), pct(r.Claimed), pct(r.Chained), pct(r.Handed), r.Claims,
		100*float64(r.EmptyClaims)/float64(max(r.Claims, 1)))
}

// probePhases is one probe's time split into the phases of latencyFigures.
type probePhases struct {
	total, change, wake, send, observe time.Duration
}

// tailLine lists the slowest probes (tail) with their phases.
func (l latencyFigures) tailLine() string {
	parts := make([]string, len(l.tail))
	for i, p := range l.tail {
		parts[i] = fmt.Sprintf("%.1f ms (change %.1f, commit to request %.1f, request %.1f, seen %.1f)",
			ms(p.total), ms(p.change), ms(p.wake), ms(p.send), ms(p.observe))
	}
	return strings.Join(parts, "; ")
}

// share says what part of the capacity the load was asked to be.
func (l latencyFigures) share() string {
	if l.factor == 1 {
		return "half"
	}
	return fmt.Sprintf("%g times half", l.factor)
}

// probeTransport times the requests whose path starts with prefix (the
// probes'), handing each probe's start and answer to sent, and passes every
// request on to base.
type probeTransport struct {
	base   http.RoundTripper
	prefix string
	sent   chan [2]time.Time
}

func (t *probeTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if !strings.HasPrefix(r.URL.Path, t.prefix) {
		return t.base.RoundTrip(r)
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(r)
	t.sent <- [2]time.Time{start, time.Now()}
	return resp, err
}

// latency: ticket updates one at a time, each timed from calling
// UpdateTicket to the remote having applied its message (p50, p99), while
// the same engine delivers a paced load of half the machine's capacity on
// another integration of another process (1,000 bonds, new transactions
// written every 5 ms as a ticket change writes them: Sending when the bond
// is free, else Queued, and a NOTIFY).
//
// The machine's capacity for this load counts the writing of each load
// transaction as well as its delivery (calibrateLoad): half of delivery
// alone, the rate used before, was the machine's whole capacity. "Machine
// busy" is printed but is no measure of load: a worker with less work makes
// more, smaller rounds, so the engine fills whatever CPU is idle
// (docs/engine.md, "Quiet machine").
func (b *engineBench) latency(delivery float64) (latencyFigures, error) {
	var figs latencyFigures
	loadProc := models.Process{Name: "BenchLoad", TicketTable: "incident", ReferenceField: "number", NumberPrefix: "INC"}
	if err := b.db.WithContext(b.ctx).Create(&loadProc).Error; err != nil {
		return figs, err
	}
	loadIn, loadUpdateID, err := b.integrationOf(loadProc.ID, "load", models.IntegrationPaused)
	if err != nil {
		return figs, err
	}
	refs, err := b.backlog(loadIn, loadUpdateID, 1) // one ticket per bond, its Create queued
	if err != nil {
		return figs, err
	}
	if _, _, err := b.integration("latency", models.IntegrationActive); err != nil { // turns the load's Off
		return figs, err
	}
	var bonds []int64
	err = b.db.WithContext(b.ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("UPDATE integrations SET state = ? WHERE id = ?", models.IntegrationActive, loadIn.ID).Error; err != nil {
			return err
		}
		if err := tx.Exec("UPDATE transactions SET state = ? WHERE integration_id = ? AND state = ?",
			models.Sending, loadIn.ID, models.Queued).Error; err != nil {
			return err
		}
		return tx.Raw("SELECT id FROM bonds WHERE integration_id = ? ORDER BY id", loadIn.ID).Scan(&bonds).Error
	})
	if err != nil {
		return figs, err
	}
	probes := &probeTransport{prefix: "/latency", sent: make(chan [2]time.Time, 16), base: &http.Transport{
		DialContext:  (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}}
	start0, err := b.remote.applied()
	if err != nil {
		return figs, err
	}
	p := b.poolWith("bench-latency", &http.Client{Transport: probes})
	if err := p.Start(b.ctx); err != nil {
		return figs, err
	}
	defer func() { _ = p.Stop(context.Background()) }()
	t, err := b.store.CreateTicket(b.ctx, b.actor, store.TicketInput{ProcessID: b.proc.ID, ShortDescription: "latency probe"})
	if err != nil {
		return figs, err
	}
	if err := b.remote.wait(t.Number, 1); err != nil {
		return figs, err
	}
	<-probes.sent
	if err := b.waitApplied(start0+int64(len(bonds))+1, time.Minute); err != nil {
		return figs, err
	}

	sent, err := b.calibrateLoad(&figs, loadIn.ID, loadUpdateID, bonds, delivery)
	if err != nil {
		return figs, err
	}
	before, err := b.remote.applied()
	if err != nil {
		return figs, err
	}
	stop, paced := make(chan struct{}), make(chan error, 1)
	var loadSent int
	go func() {
		var err error
		loadSent, err = b.paceLoad(loadIn.ID, loadUpdateID, bonds, figs.loadTarget, stop)
		paced <- err
	}()
	time.Sleep(time.Second) // the load reaches its pace before the first probe
	mark, began, counts0 := b.cpuNow(), time.Now(), p.Stats()
	applied0, err := b.remote.applied()
	if err != nil {
		close(stop)
		return figs, err
	}
	var samples, change, wake, send, observe, recorded []time.Duration
	var phases []probePhases
	var probeErr error
	for i := range latencySamples {
		in := store.TicketInputOf(t)
		in.WorkNotes = "probe " + strconv.Itoa(i)
		var have int64
		if have, probeErr = b.remote.count(t.Number); probeErr != nil {
			break
		}
		begin := time.Now()
		if t, probeErr = b.store.UpdateTicket(b.ctx, b.actor, t.ID, t.Version, in); probeErr != nil {
			break
		}
		committed := time.Now()
		// Answers once the remote has applied it (one loopback round trip).
		if probeErr = b.remote.wait(t.Number, have+1); probeErr != nil {
			break
		}
		seen := time.Now()
		// The engine may see the remote's answer after the bench sees the
		// remote's count move.
		req := <-probes.sent
		reqStart, reqEnd := req[0], req[1]
		samples = append(samples, seen.Sub(begin))
		change, wake = append(change, committed.Sub(begin)), append(wake, reqStart.Sub(committed))
		send, observe = append(send, reqEnd.Sub(reqStart)), append(observe, seen.Sub(reqEnd))
		phases = append(phases, probePhases{total: seen.Sub(begin), change: committed.Sub(begin),
			wake: reqStart.Sub(committed), send: reqEnd.Sub(reqStart), observe: seen.Sub(reqEnd)})
		if probeErr = b.waitBondFree(t.ID); probeErr != nil {
			break
		}
		recorded = append(recorded, time.Since(seen))
		time.Sleep(20 * time.Millisecond) // idle between updates
	}
	applied1, aerr := b.remote.applied()
	elapsed, counts1 := time.Since(began), p.Stats()
	figs.rounds = counts1.Since(counts0)
	figs.loadCPU = b.cpuSince(mark, max(applied1-applied0, 1))
	figs.busy = figs.loadCPU.total() * float64(max(applied1-applied0, 1)) / ms(elapsed) / float64(runtime.NumCPU())
	if err := b.db.WithContext(b.ctx).Raw(`SELECT count(*) FROM transactions WHERE integration_id = ?
		AND state NOT IN (`+pg.StateSQL(models.Complete, models.Ignored)+`)`, loadIn.ID).Scan(&figs.backlog).Error; err != nil {
		return figs, err
	}
	close(stop)
	if perr := <-paced; perr != nil {
		return figs, fmt.Errorf("load: %w", perr)
	}
	if probeErr != nil {
		return figs, fmt.Errorf("probe %d: %w", len(samples), probeErr)
	}
	if aerr != nil {
		return figs, aerr
	}
	figs.load = float64(applied1-applied0-int64(len(samples))) / elapsed.Seconds()
	// Every load transaction delivered, in order per bond, none twice.
	if err := b.waitApplied(before+int64(loadSent+len(samples)), time.Minute); err != nil {
		return figs, err
	}
	if err := b.checkRemote(refs, 1+(sent+loadSent)/len(bonds)); err != nil {
		return figs, err
	}
	b.note("latency: %d load transactions in %s beside %d probes", loadSent, elapsed.Round(time.Millisecond), len(samples))
	figs.p50, figs.p99 = percentile(samples, 50), percentile(samples, 99)
	figs.change, figs.wake, figs.send, figs.observe = percentile(change, 50), percentile(wake, 50),
		percentile(send, 50), percentile(observe, 50)
	figs.recorded = percentile(recorded, 50)
	slices.SortFunc(phases, func(a, b probePhases) int { return cmp.Compare(b.total, a.total) })
	figs.tail = phases[:min(max(len(phases)/100, 1), 5)]
	return figs, nil
}

// waitBondFree waits until the ticket has no unfinished outbound
// transaction: the engine has recorded the last one's completion (a minute
// at most).
func (b *engineBench) waitBondFree(ticketID int64) error {
	deadline := time.Now().Add(time.Minute)
	for {
		// The store's own test, per bond of the ticket: "state NOT IN
		// (Complete, Ignored)" on the ticket's transactions took 20.6 ms a
		// call (pg_stat_statements), 0.5 of the machine's 2 cores.
		var busy bool
		err := b.db.WithContext(b.ctx).Raw(`SELECT EXISTS (SELECT 1 FROM bonds b WHERE b.ticket_id = ?
			AND `+queue.UnfinishedOutboundSQL("b.id")+`)`, ticketID).Scan(&busy).Error
		if err != nil || !busy {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ticket %d still has an unfinished transaction after a minute", ticketID)
		}
		time.Sleep(time.Millisecond)
	}
}

// percentile is the p-th percentile of d (sorted in place).
func percentile(d []time.Duration, p int) time.Duration {
	slices.Sort(d)
	return d[len(d)*p/100]
}

// calibrateLoad sets figs.loadTarget to half the machine's capacity for the
// load: every load transaction is written and then delivered, so the
// capacity is 1 / (1/delivery + 1/writes), where delivery is the delivery
// part's rate (transactions written before it was timed) and writes the
// rate at which the load's writer alone writes them, measured here over
// calibrationTime with the load's integration paused (the engine leaves
// them); they are then delivered before the probes start. It returns how
// many transactions it wrote.
func (b *engineBench) calibrateLoad(figs *latencyFigures, integrationID, messageID int64, bonds []int64, delivery float64) (int, error) {
	applied0, err := b.remote.applied()
	if err != nil {
		return 0, err
	}
	setState := func(st models.IntegrationState) error {
		return b.db.WithContext(b.ctx).Exec("UPDATE integrations SET state = ? WHERE id = ?", st, integrationID).Error
	}
	if err := setState(models.IntegrationPaused); err != nil {
		return 0, err
	}
	// In statements of the size paceLoad writes at about the target (a
	// 5 ms tick's worth): a thousand rows a statement wrote 8,800-13,700
	// tx/s, cheaper per row than the paced load, whose capacity it overstated.
	// The target is taken as delivery/4, which assumes the writes alone run
	// about as fast as delivery (2,652-3,671 against 3,963-4,296 tx/s in the
	// runs of docs/engine.md): a statement size, not a figure.
	chunk := min(int(delivery/4*0.005)+1, len(bonds))
	sent, began := 0, time.Now()
	// Until the time is up and the round is whole (every bond the same
	// count, as paceLoad ends).
	for time.Since(began) < calibrationTime || sent%len(bonds) != 0 {
		from := sent % len(bonds)
		k := min(chunk, len(bonds)-from)
		if err := b.enqueueLoad(integrationID, messageID, bonds[from:from+k]); err != nil {
			return sent, fmt.Errorf("load: %w", err)
		}
		sent += k
	}
	figs.writes, figs.delivery = float64(sent)/time.Since(began).Seconds(), delivery
	if err := setState(models.IntegrationActive); err != nil {
		return sent, err
	}
	if err := queue.Notify(b.db.WithContext(b.ctx)); err != nil {
		return sent, err
	}
	if err := b.waitApplied(applied0+int64(sent), 2*time.Minute); err != nil {
		return sent, err
	}
	figs.loadTarget, figs.factor = 1/(1/figs.delivery+1/figs.writes)/2, 1
	// BENCH_LATENCY_FACTOR scales that load, to see the latency at another
	// (0.02: the floor, the probes beside almost nothing).
	if f, err := strconv.ParseFloat(os.Getenv("BENCH_LATENCY_FACTOR"), 64); err == nil && f >= 0 {
		figs.loadTarget, figs.factor = figs.loadTarget*f, f
	}
	b.note("latency: the load's writer alone wrote %.0f tx/s; delivery %.0f tx/s; the load will be %.0f tx/s",
		figs.writes, figs.delivery, figs.loadTarget)
	return sent, nil
}

// paceLoad writes rate transactions a second on the bonds, one per bond in
// turn, until stop closes; then it finishes the round, so every bond has the
// same number, and returns how many it wrote.
func (b *engineBench) paceLoad(integrationID, messageID int64, bonds []int64, rate float64, stop <-chan struct{}) (int, error) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	start, sent := time.Now(), 0
	for stopped := false; !stopped; {
		select {
		case <-stop:
			stopped = true
		case <-tick.C:
		}
		due := int(rate*time.Since(start).Seconds()) - sent
		if stopped {
			due = (len(bonds) - sent%len(bonds)) % len(bonds)
		}
		for due > 0 {
			k := min(due, len(bonds)-sent%len(bonds)) // up to the end of the round: one per bond per statement
			from := sent % len(bonds)
			if err := b.enqueueLoad(integrationID, messageID, bonds[from:from+k]); err != nil {
				return sent, err
			}
			sent, due = sent+k, due-k
		}
	}
	return sent, nil
}

// enqueueLoad writes one Update transaction with its Stage on each bond, as
// a ticket change does: the bonds locked in id order first, then in a
// statement of its own (so that its snapshot sees a head finished while it
// waited for a lock) Sending when the bond has nothing unfinished (the
// store's rule, queue.UnfinishedOutboundSQL), else Queued, and a NOTIFY when
// one may be sent now. One statement for the whole round of bonds rather
// than the store's path, a ticket change per transaction: the load must
// cost the machine little beside the engine it loads.
func (b *engineBench) enqueueLoad(integrationID, messageID int64, bonds []int64) error {
	return b.db.WithContext(b.ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SELECT id FROM bonds WHERE id IN ? ORDER BY id FOR UPDATE", bonds).Error; err != nil {
			return err
		}
		return tx.Exec(`WITH b AS (UPDATE bonds SET next_seq = next_seq + 1 WHERE id IN ? RETURNING id, ticket_id, next_seq),
			t AS (INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id, ticket_id,
					direction, state, seq)
				SELECT 'TRN' || lpad(nextval('transaction_number_seq')::text, 7, '0'),
					'MSG' || lpad(nextval('message_number_seq')::text, 7, '0'), ?, b.id, ?, b.ticket_id, 'Outbound',
					CASE WHEN `+queue.UnfinishedOutboundSQL("b.id")+`
					THEN `+pg.StateSQL(models.Queued)+` ELSE `+pg.StateSQL(models.Sending)+` END, b.next_seq
				FROM b
				RETURNING id, state, seq),
			s AS (INSERT INTO stages (transaction_id, data)
				SELECT id, jsonb_build_object('short_description', 'load', 'state', 'In Progress', 'priority', '3',
					'comments', 'load ' || seq) FROM t)
			SELECT pg_notify(?, '') FROM t WHERE state = `+pg.StateSQL(models.Sending)+` LIMIT 1`,
			bonds, integrationID, messageID, queue.NotifyChannel).Error
	})
}
