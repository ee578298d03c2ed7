package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"unifi/internal/cpuacct"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/designer"
	"unifi/models/query"
	"unifi/models/script"
	"unifi/models/store"
	"unifi/worker"
)

// The engine section:
//   delivery  transactions per second delivered to a local remote on 1,000
//             bonds, per-bond order checked at the remote;
//   drain     time from Resume to the resume job's 100,000/100,000;
//   drain2    the same drain shared by two engines, and what each sent
//             (only when BENCH_ENGINE_PARTS names it);
//   latency   idle ticket update -> the remote has applied it (p50, p99);
//   rss peak  this process's peak resident memory: the engine and the bench
//             harness. The fake remote runs in a child process (remote.go)
//             and PostgreSQL is not included; the remote's own peak is noted.

const (
	benchBonds      = 1000
	deliveryPerBond = 30  // 30,000 transactions
	drainPerBond    = 100 // 100,000 transactions
	// latencySamples probes: the p99 of 300 was the third slowest probe,
	// and it swung 18-33 ms between runs minutes apart on one build
	// (docs/engine.md, "Sixth round"); of 1,000 it is the tenth.
	latencySamples  = 1000
	calibrationTime = 2 * time.Second // the latency load's writer timed alone over this
)

type engineBench struct {
	*env
	store  *store.Store
	remote *childRemote
	url    string
	admin  models.Actor
	actor  models.Actor
	proc   models.Process
	// scripts, when set, are saved on every message of the integrations
	// created afterwards (the scripts section).
	scripts map[script.Point]string
}

func runEngine(e *env) ([]string, error) {
	if e.flags.history > 0 {
		return runHistory(e, e.flags.history)
	}
	var parts []string // e.g. BENCH_ENGINE_PARTS=delivery,latency while profiling; default all
	if p := os.Getenv("BENCH_ENGINE_PARTS"); p != "" {
		parts = strings.Split(p, ",")
	}
	_, lines, err := measureEngine(e, parts)
	return lines, err
}

// engineFigures are the engine section's measures, for the river section's
// ratios.
type engineFigures struct {
	delivery    float64 // tx/s
	deliveryCPU cpuPer
	drain       time.Duration
	drainCPU    cpuPer
}

// measureEngine runs the named parts of the engine section (all when parts
// is empty) on e's fresh database.
func measureEngine(e *env, parts []string) (engineFigures, []string, error) {
	var figs engineFigures
	remote, err := startChildRemote(e.ctx)
	if err != nil {
		return figs, nil, err
	}
	defer remote.close()
	b := &engineBench{env: e, store: store.NewStore(e.db, account.New(e.db, nil), &store.StoreOpts{SecretKey: e.secretKey}), remote: remote, url: remote.url}
	if err := b.fixtures(); err != nil {
		return figs, nil, err
	}
	// `unifi serve` folds the state-change history into the counts every 2 s
	// beside its engine; that work is part of the cost of each delivery.
	compactCtx, stopCompact := context.WithCancel(e.ctx)
	compacted := make(chan struct{})
	go func() {
		defer close(compacted)
		query.NewReader(e.db, nil).RunCountCompactor(compactCtx, 2*time.Second, nil)
	}()
	defer func() { stopCompact(); <-compacted }()
	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return figs, nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return figs, nil, err
		}
		defer pprof.StopCPUProfile()
	}
	var lines []string
	if q := os.Getenv("BENCH_SETUP_SQL"); q != "" {
		lines = append(lines, "an experiment: BENCH_SETUP_SQL ran before each part's engine started: "+q)
	}
	for _, part := range []struct {
		name  string
		named bool // runs only when BENCH_ENGINE_PARTS names it
		run   func() ([]string, error)
	}{
		{"delivery", false, func() ([]string, error) {
			var err error
			figs.delivery, figs.deliveryCPU, err = b.delivery()
			return []string{fmt.Sprintf("delivery: %.0f tx/s", figs.delivery), figs.deliveryCPU.line("delivery")}, err
		}},
		{"drain", false, func() ([]string, error) {
			var err error
			figs.drain, figs.drainCPU, _, err = b.drain(1)
			return []string{fmt.Sprintf("drain: %.1f s", figs.drain.Seconds()), figs.drainCPU.line("drain")}, err
		}},
		// The drain shared by two engines, as two processes would share
		// it (each Pool leases to its own name).
		{"drain2", true, func() ([]string, error) {
			d, cpu, shares, err := b.drain(2)
			return []string{fmt.Sprintf("drain2: %.1f s with two engines, sent %d / %d", d.Seconds(), shares[0], shares[1]),
				cpu.line("drain2")}, err
		}},
		{"latency", false, func() ([]string, error) {
			// The latency part calibrates its load from the delivery rate
			// measured in this run (first, when only latency runs).
			if figs.delivery == 0 {
				var err error
				if figs.delivery, figs.deliveryCPU, err = b.delivery(); err != nil {
					return nil, err
				}
			}
			lat, err := b.latency(figs.delivery)
			return lat.lines(), err
		}},
	} {
		if len(parts) > 0 && !slices.Contains(parts, part.name) || len(parts) == 0 && part.named {
			continue
		}
		got, err := part.run()
		if err != nil {
			return figs, nil, fmt.Errorf("%s: %w", part.name, err)
		}
		lines = append(lines, got...)
	}
	lines = append(lines, fmt.Sprintf("rss peak: %d MB", peakRSSMB()))
	if n, err := remote.int("/_bench/rss", nil); err == nil {
		b.note("the remote child's own rss peak: %d MB (not in rss peak)", n)
	}
	return figs, lines, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (b *engineBench) note(format string, args ...any) {
	fmt.Fprintf(b.out, "  engine: "+format+"\n", args...)
}

// cpuMark is the CPU spent so far by the engine (this process, which also
// runs the harness), the remote child and the database's backends.
type cpuMark struct {
	self, remote time.Duration
	db           cpuacct.Snapshot
	wal          string // the cluster's WAL position (pg_current_wal_lsn)
}

func (b *engineBench) cpuNow() cpuMark {
	return cpuMark{self: cpuacct.Self(), remote: cpuacct.Process(b.remote.cmd.Process.Pid),
		db: cpuacct.Backends(b.ctx, b.db), wal: walLSN(b.ctx, b.db)}
}

// walLSN is the cluster's current WAL position, "" when it cannot be read.
func walLSN(ctx context.Context, db *gorm.DB) string {
	var lsn string
	if err := db.WithContext(ctx).Raw("SELECT pg_current_wal_lsn()::text").Scan(&lsn).Error; err != nil {
		return ""
	}
	return lsn
}

// walSince is the WAL the cluster wrote since the position from, in bytes
// (the whole cluster: the bench runs one thing at a time on it).
func walSince(ctx context.Context, db *gorm.DB, from string) float64 {
	var n float64
	if from == "" || db.WithContext(ctx).Raw("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), ?::pg_lsn)", from).
		Scan(&n).Error != nil {
		return 0
	}
	return n
}

// cpuPer is the CPU each delivered transaction cost, in milliseconds: the
// figure that holds however busy the machine is, and what bounds the rate;
// with the WAL bytes each wrote (a durable cluster fsyncs them).
type cpuPer struct{ engine, postgres, remote, wal float64 }

func (c cpuPer) total() float64 { return c.engine + c.postgres + c.remote }

func (c cpuPer) line(what string) string {
	return fmt.Sprintf("%s cpu per transaction: %.3f ms engine, %.3f ms postgres, %.3f ms remote; wal %.0f bytes",
		what, c.engine, c.postgres, c.remote, c.wal)
}

// cpuSince is the CPU per transaction since m, for n transactions.
func (b *engineBench) cpuSince(m cpuMark, n int64) cpuPer {
	now := b.cpuNow()
	per := func(d time.Duration) float64 { return ms(d) / float64(n) }
	return cpuPer{per(now.self - m.self), per(now.db.Since(m.db)), per(now.remote - m.remote),
		walSince(b.ctx, b.db, m.wal) / float64(n)}
}

// pool is an engine configured as `unifi serve` is by default
// (worker.DefaultWorkers, worker.DefaultBatch); BENCH_WORKERS and
// BENCH_BATCH override them for tuning.
func (b *engineBench) pool(name string) *worker.Pool { return b.poolWith(name, nil) }

// poolWith is pool sending through client (nil: the engine's default).
func (b *engineBench) poolWith(name string, client *http.Client) *worker.Pool {
	workers, batch := worker.DefaultWorkers, worker.DefaultBatch
	if n, err := strconv.Atoi(os.Getenv("BENCH_WORKERS")); err == nil && n > 0 {
		workers = n
	}
	if n, err := strconv.Atoi(os.Getenv("BENCH_BATCH")); err == nil && n > 0 {
		batch = n
	}
	return worker.New(worker.Opts{Store: b.store, Logger: b.log, DatabaseURL: b.dbURL, Instance: name,
		Workers: workers, Batch: batch, Lease: 30 * time.Second, PollInterval: time.Second, HTTPClient: client})
}

// fixtures creates the process, users and one synchronous integration per
// measurement, each with its own path on the remote.
func (b *engineBench) fixtures() error {
	db := b.db.WithContext(b.ctx)
	// Its own process: a database filled by unifi gen (-history) has the
	// demo's Incident process already.
	b.proc = models.Process{Name: "BenchIncident", TicketTable: "incident", ReferenceField: "number", NumberPrefix: "INC"}
	if err := db.Create(&b.proc).Error; err != nil {
		return err
	}
	for _, u := range []*models.Actor{&b.admin, &b.actor} {
		role := models.RoleAdmin
		if u == &b.actor {
			role = models.RoleAnalyst
		}
		user := models.User{Name: "bench-" + string(role), Role: role, PasswordHash: "x", Active: true}
		if err := db.Create(&user).Error; err != nil {
			return err
		}
		*u = models.ActorOf(&user, "bench")
	}
	return nil
}

// integration creates a synchronous integration with Create and Update
// messages (attach logs on, as by default) pointing at the remote.
func (b *engineBench) integration(name string, state models.IntegrationState) (*models.Integration, int64, error) {
	return b.integrationOf(b.proc.ID, name, state)
}

// integrationOf is integration on the given process.
func (b *engineBench) integrationOf(processID int64, name string, state models.IntegrationState) (*models.Integration, int64, error) {
	db := b.db.WithContext(b.ctx)
	// Only one integration sends for ticket changes at a time: the others are Off.
	if err := db.Exec("UPDATE integrations SET state = ?", models.IntegrationOff).Error; err != nil {
		return nil, 0, err
	}
	in := models.Integration{Name: name, ProcessID: processID, State: state, Status: models.StatusAwaiting,
		SyncTimeoutS: 10, AsyncTimeoutS: 300, RetryLimit: 3, RetryDelayS: 1, AttachLogs: true}
	if err := db.Create(&in).Error; err != nil {
		return nil, 0, err
	}
	conn := models.Connection{IntegrationID: in.ID, Name: "bench", Environment: "Test",
		EndpointURL: b.url + "/" + name, AuthType: models.AuthBearer, AuthSecret: b.store.SealSecret("bench-token"), Active: true}
	if err := db.Create(&conn).Error; err != nil {
		return nil, 0, err
	}
	var updateID int64
	for _, m := range []models.Message{
		{Name: "CreateIncident", Type: models.MessageCreate, Trigger: models.TriggerCreate, Path: "create"},
		{Name: "UpdateIncident", Type: models.MessageUpdate, Trigger: models.TriggerUpdate, Path: "update"},
	} {
		m.IntegrationID, m.Direction, m.BondOwnership = in.ID, models.Outbound, models.OwnershipIgnore
		m.AllowedBondStates = models.JSON[[]models.BondState]{V: []models.BondState{}}
		if err := db.Create(&m).Error; err != nil {
			return nil, 0, err
		}
		if m.Name == "UpdateIncident" {
			updateID = m.ID
		}
		for point, src := range b.scripts {
			if _, err := designer.New(b.store, nil).SaveScript(b.ctx, b.admin, m.ID, point, 0, src); err != nil {
				return nil, 0, err
			}
		}
		for i, f := range []models.Field{
			{TicketField: "short_description", Property: "short_description"},
			{TicketField: "state", Property: "state"},
			{TicketField: "priority", Property: "priority"},
			{TicketField: "work_notes", Property: "comments"},
		} {
			f.MessageID, f.Position = m.ID, i
			f.ValueMap = models.JSON[map[string]string]{V: map[string]string{}}
			if err := db.Create(&f).Error; err != nil {
				return nil, 0, err
			}
		}
	}
	return &in, updateID, nil
}

// backlog creates one ticket per bond through the Store (their Create
// transactions queue on the paused integration) and then perBond-1 Queued
// Update transactions per bond in bulk SQL, in order, with their Stage.
func (b *engineBench) backlog(in *models.Integration, updateID int64, perBond int) ([]string, error) {
	refs := make([]string, benchBonds)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < benchBonds; i += 4 {
				t, err := b.store.CreateTicket(b.ctx, b.actor, store.TicketInput{ProcessID: in.ProcessID, ShortDescription: fmt.Sprintf("bench %d", i)})
				if err != nil {
					errs <- err
					return
				}
				refs[i] = t.Number
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	err := b.db.WithContext(b.ctx).Transaction(func(tx *gorm.DB) error {
		var base int64
		if err := tx.Raw("SELECT last_value FROM message_number_seq").Scan(&base).Error; err != nil {
			return err
		}
		n := int64(benchBonds * (perBond - 1))
		if err := tx.Exec(`INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id,
				ticket_id, direction, state, seq)
			SELECT 'TRN' || lpad((? + r)::text, 7, '0'), 'MSG' || lpad((? + r)::text, 7, '0'), ?, id, ?, ticket_id,
				'Outbound', ?, next_seq + g
			FROM (SELECT b.id, b.ticket_id, b.next_seq, g, row_number() OVER (ORDER BY b.id, g) AS r
			      FROM bonds b, generate_series(1, ?) g WHERE b.integration_id = ?) x`,
			base, base, in.ID, updateID, models.Queued, perBond-1, in.ID).Error; err != nil {
			return err
		}
		if err := tx.Exec("SELECT setval('message_number_seq', ?), setval('transaction_number_seq', ?)",
			base+n, base+n).Error; err != nil {
			return err
		}
		if err := tx.Exec("UPDATE bonds SET next_seq = next_seq + ? WHERE integration_id = ?", perBond-1, in.ID).Error; err != nil {
			return err
		}
		return tx.Exec(`INSERT INTO stages (transaction_id, data)
			SELECT t.id, jsonb_build_object('short_description', 'bench', 'state', 'In Progress', 'priority', '3',
				'comments', 'update ' || t.seq)
			FROM transaction_keys t WHERE t.integration_id = ? AND NOT EXISTS (SELECT 1 FROM stages s WHERE s.transaction_id = t.id)`,
			in.ID).Error
	})
	if err != nil {
		return nil, err
	}
	// A real backlog builds up over the pause, with autovacuum keeping up;
	// this one was written in one statement a moment ago: vacuum it as
	// autovacuum would have, so the measure does not pay for the harness's
	// shortcut.
	return refs, b.db.WithContext(b.ctx).Exec("VACUUM (ANALYZE)").Error
}

// checkRemote checks what the remote saw for refs: want messages each, in
// order, none twice.
func (b *engineBench) checkRemote(refs []string, want int) error {
	return b.remote.check(refs, want)
}

func (b *engineBench) waitApplied(target int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		n, err := b.remote.applied()
		if err != nil {
			return err
		}
		if n >= target {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d delivered after %s", n, target, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// delivery: 1,000 bonds, 30 transactions each, each bond's head Sending and
// the rest Queued behind it; the engine delivers them all in order.
func (b *engineBench) delivery() (float64, cpuPer, error) {
	in, updateID, err := b.integration("delivery", models.IntegrationPaused)
	if err != nil {
		return 0, cpuPer{}, err
	}
	refs, err := b.backlog(in, updateID, deliveryPerBond)
	if err != nil {
		return 0, cpuPer{}, err
	}
	total := int64(benchBonds * deliveryPerBond)
	// Make it a steady state: the integration Active, every bond's head Sending.
	err = b.db.WithContext(b.ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("UPDATE integrations SET state = ? WHERE id = ?", models.IntegrationActive, in.ID).Error; err != nil {
			return err
		}
		return tx.Exec(`UPDATE transactions SET state = ? WHERE id IN (
			SELECT DISTINCT ON (bond_id) id FROM transaction_keys WHERE integration_id = ? ORDER BY bond_id, seq)`,
			models.Sending, in.ID).Error
	})
	if err != nil {
		return 0, cpuPer{}, err
	}
	b.note("delivery: %d transactions on %d bonds queued", total, benchBonds)
	start0, err := b.remote.applied()
	if err != nil {
		return 0, cpuPer{}, err
	}
	if err := b.setupSQL(); err != nil {
		return 0, cpuPer{}, err
	}
	p := b.pool("bench-delivery")
	mark := b.cpuNow()
	start := time.Now()
	if err := p.Start(b.ctx); err != nil {
		return 0, cpuPer{}, err
	}
	err = b.waitApplied(start0+total, 5*time.Minute)
	elapsed := time.Since(start)
	cpu := b.cpuSince(mark, total)
	_ = p.Stop(context.Background())
	if err != nil {
		return 0, cpuPer{}, err
	}
	if err := b.checkRemote(refs, deliveryPerBond); err != nil {
		return 0, cpuPer{}, err
	}
	b.note("delivery: %d in %s; engine rounds: %s", total, elapsed.Round(time.Millisecond), roundsNote(p.Stats()))
	return float64(total) / elapsed.Seconds(), cpu, nil
}

// setupSQL runs BENCH_SETUP_SQL, when set, after a part's backlog is written
// and before its engine starts: an experiment's schema or configuration
// change, measured against the code as it is without changing it (e.g. a
// constraint dropped or a trigger disabled; bench/results/engine-children-ab.txt).
func (b *engineBench) setupSQL() error {
	q := os.Getenv("BENCH_SETUP_SQL")
	if q == "" {
		return nil
	}
	b.note("BENCH_SETUP_SQL: %s", q)
	if err := b.db.WithContext(b.ctx).Exec(q).Error; err != nil {
		return fmt.Errorf("BENCH_SETUP_SQL: %w", err)
	}
	return nil
}

// drain: 100,000 transactions queued on a paused integration; the time from
// Resume until the resume job reports 100,000 done, with engines engines
// (each a Pool of its own name, as a process is); what each engine sent.
func (b *engineBench) drain(engines int) (time.Duration, cpuPer, []int64, error) {
	name := fmt.Sprintf("drain%d", engines)
	if engines == 1 {
		name = "drain"
	}
	in, updateID, err := b.integration(name, models.IntegrationPaused)
	if err != nil {
		return 0, cpuPer{}, nil, err
	}
	refs, err := b.backlog(in, updateID, drainPerBond)
	if err != nil {
		return 0, cpuPer{}, nil, err
	}
	total := benchBonds * drainPerBond
	b.note("%s: %d transactions queued on the paused integration", name, total)
	if err := b.setupSQL(); err != nil {
		return 0, cpuPer{}, nil, err
	}
	pools := make([]*worker.Pool, engines)
	for i := range pools {
		pools[i] = b.pool(fmt.Sprintf("bench-%s-%d", name, i))
		if err := pools[i].Start(b.ctx); err != nil {
			return 0, cpuPer{}, nil, err
		}
		defer func() { _ = pools[i].Stop(context.Background()) }()
	}
	start0, err := b.remote.applied()
	if err != nil {
		return 0, cpuPer{}, nil, err
	}
	mark := b.cpuNow()
	start := time.Now()
	job, err := b.store.ResumeIntegration(b.ctx, b.admin, in.ID)
	if err != nil {
		return 0, cpuPer{}, nil, err
	}
	b.note("%s: Resume answered in %s", name, time.Since(start).Round(time.Millisecond))
	if job.Total != total {
		return 0, cpuPer{}, nil, fmt.Errorf("resume job has %d items, want %d", job.Total, total)
	}
	deadline := start.Add(10 * time.Minute)
	// Progress for the notes: what the remote has applied every half second,
	// and when it had everything (the job completes at its next count).
	var prog []string
	var lastProg time.Time
	var delivered time.Duration
	for {
		if delivered == 0 {
			n, err := b.remote.applied()
			if err != nil {
				return 0, cpuPer{}, nil, err
			}
			if n-start0 >= int64(total) {
				delivered = time.Since(start)
			}
			if time.Since(lastProg) >= 500*time.Millisecond {
				lastProg = time.Now()
				prog = append(prog, fmt.Sprintf("%.1fs:%d", time.Since(start).Seconds(), n-start0))
			}
		}
		job, err = b.store.GetBulkJob(b.ctx, job.ID)
		if err != nil {
			return 0, cpuPer{}, nil, err
		}
		if job.State != models.BulkRunning {
			break
		}
		if time.Now().After(deadline) {
			return 0, cpuPer{}, nil, fmt.Errorf("resume job at %d/%d after 10 minutes", job.Done, job.Total)
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := b.cpuSince(mark, int64(total))
	if job.State != models.BulkComplete || job.Done != total {
		return 0, cpuPer{}, nil, fmt.Errorf("resume job ended %s with %d done, %d failed", job.State, job.Done, job.Failed)
	}
	if err := b.checkRemote(refs, drainPerBond); err != nil {
		return 0, cpuPer{}, nil, err
	}
	shares := make([]int64, engines)
	for i, p := range pools {
		st := p.Stats()
		shares[i] = st.Sent()
		b.note("%s: engine %d rounds: %s", name, i, roundsNote(st))
	}
	b.note("%s: %d in %s; the remote had them all at %s", name, total, elapsed.Round(time.Millisecond),
		delivered.Round(time.Millisecond))
	b.note("%s progress (time since Resume: delivered): %s", name, strings.Join(prog, " "))
	return elapsed, cpu, shares, nil
}

// peakRSSMB is this process's peak resident set size (VmHWM).
func peakRSSMB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return int64(m.Sys >> 20)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				return kb >> 10
			}
		}
	}
	return 0
}
