package fault_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/fault"
	"unifi/internal/wait"
	"unifi/models"
)

// The two-instance fault suite (docs/reliability.md, "Faults"): A and B are
// two `unifi serve` processes of the same binary, each with its own
// database, bonded to each other with async receipts. Both sides change
// their own tickets through their tickets API at once (a burst each way,
// never the same ticket from both sides), and a fault hits in the middle of
// the burst. Once the faults have ended, within one lease plus one retry
// cycle, the shared checks (checkTwins) must hold: every transaction on both
// sides Complete (none Timed Out, Error or Queued), the tickets equal field
// by field, no message applied twice or skipped, each bond's order kept.

// twinSize is how much load a run makes and how long its faults last.
type twinSize struct {
	tickets, patches int           // per side: tickets created, PATCHes each
	down             time.Duration // how long a database is away, or the network stalls
	// drain is added to the settle budget: the time the backlog queued
	// during a long fault needs to go out one message per bond at a time,
	// and the longer retry delays a long fault leads to.
	drain time.Duration
}

var (
	twinFast = twinSize{tickets: 4, patches: 20, down: 3 * time.Second}
	twinLong = twinSize{tickets: 10, patches: 100, down: 15 * time.Second, drain: time.Minute}
)

// The suite's timeouts: a lease of 4 s (lease_expires_at is lease + sync
// timeout = 6 s after a claim), receipts awaited 6 s, sent again at most
// every 3 s (half the async timeout); a failed message retried 6 times, the
// delay doubling from 1 s, so that no fault of the suite outlasts a message's
// retries.
const (
	twinLeaseS = 4
	twinSyncS  = 2
	twinAsyncS = 6
	twinRetry  = 6
)

// twinSettleBudget is one lease (with the sync timeout it covers) plus one
// retry cycle (the async timeout: a receipt awaited, or sent again after at
// most half of it, then a message's resend) plus slack for a loaded machine.
const twinSettleBudget = (twinLeaseS+twinSyncS+twinAsyncS)*time.Second + 10*time.Second

type twinScenario struct {
	name string
	opts func(o *fault.TwinOpts)
	// fault runs while the load goes on (called once some of it is done)
	// and returns when every fault has ended; the check it returns, if any,
	// runs after the shared checks.
	fault func(t *testing.T, r *twinRun) (check func())
}

var twinScenarios = []twinScenario{
	{name: "kill-a", fault: func(t *testing.T, r *twinRun) func() {
		return r.crash(t, r.a, r.a)
	}},
	{name: "kill-b", fault: func(t *testing.T, r *twinRun) func() {
		return r.crash(t, r.b, r.b)
	}},
	{name: "kill-both", fault: func(t *testing.T, r *twinRun) func() {
		return r.crash(t, r.a, r.a, r.b)
	}},
	{name: "db-restart-a", opts: ownClusters, fault: func(t *testing.T, r *twinRun) func() {
		r.restartDatabase(t, r.a)
		return nil
	}},
	{name: "db-restart-b", opts: ownClusters, fault: func(t *testing.T, r *twinRun) func() {
		r.restartDatabase(t, r.b)
		return nil
	}},
	{name: "network-stall", opts: func(o *fault.TwinOpts) { o.Proxy = true }, fault: func(t *testing.T, r *twinRun) func() { return r.stall(t) }},
	{name: "clock-skew", opts: func(o *fault.TwinOpts) {
		o.EnvA = map[string]string{"CLOCK_OFFSET": "10m"}
		o.EnvB = map[string]string{"CLOCK_OFFSET": "-7m"}
	}, fault: func(t *testing.T, r *twinRun) func() { return r.clockStep(t) }},
}

func ownClusters(o *fault.TwinOpts) { o.OwnCluster = true }

// restartDatabase stops tw's PostgreSQL (fast shutdown: its sessions are
// ended) for the run's down time and starts it again on the same port; tw's
// server reconnects by itself.
func (r *twinRun) restartDatabase(t *testing.T, tw *fault.Twin) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, tw.Cluster.Stop(ctx))
	stopped := time.Now()
	wait.For(t, r.size.down+30*time.Second, func() (bool, error) {
		return time.Since(stopped) >= r.size.down, nil
	}, "the outage to last")
	require.NoError(t, tw.Cluster.Restart(ctx))
	r.faultEnd = time.Now()
	require.True(t, tw.Server.Running(), "%s survived its database's outage", tw)
	r.note("db_down_s", secs(r.faultEnd.Sub(stopped)))
}

// stall stalls the network between A and B both ways: for the down time
// the proxies forward requests but hold the answers (each side acts on what
// the other sent, the sender hears nothing and its sync timeout runs out),
// then every connection is cut and new ones are closed for a second, then
// traffic passes again.
func (r *twinRun) stall(t *testing.T) func() {
	t.Helper()
	proxies := []*fault.Proxy{r.a.Proxy, r.b.Proxy}
	setAll := func(m fault.ProxyMode) {
		for _, p := range proxies {
			p.SetMode(m)
		}
	}
	setAll(fault.ProxyHold)
	holdStart := time.Now()
	wait.For(t, r.size.down+30*time.Second, func() (bool, error) {
		return time.Since(holdStart) >= r.size.down, nil
	}, "the stall to last")
	setAll(fault.ProxyDrop)
	dropStart := time.Now()
	wait.For(t, 30*time.Second, func() (bool, error) { return time.Since(dropStart) >= time.Second, nil }, "the cut to last")
	setAll(fault.ProxyPass)
	r.faultEnd = time.Now()
	var held, dropped int
	for _, p := range proxies {
		_, d, h := p.Stats()
		held, dropped = held+h, dropped+d
	}
	r.note("answers_held", held, "connections_dropped", dropped)
	return func() {
		require.Positive(t, held, "no answer was held")
		require.Positive(t, dropped, "no connection was cut")
	}
}

// clockStep runs A's application clock 10 minutes ahead and B's 7 minutes
// behind (a skew of 17 minutes between the processes); mid-burst A is
// stopped and started again with its clock stepped 5 more minutes forward.
// Once A's burst is done, A is stopped and started again with its clock
// stepped BACK 15 minutes (to the true time, as NTP does to a host whose
// clock ran ahead), and every one of A's tickets is changed twice more: B has
// applied A's messages stamped up to 15 minutes ahead, and A's messages after
// the step must still be applied (the shared checks: none "Accepted, not
// applied", the tickets equal), so A's stamps on a bond must not go back with
// its clock (docs/domain.md, "The message's time stamp").
// Leases and due times are each side's database clock, which a process's
// clock does not move (docs/engine.md, "Whose clock"); the app clock stamps
// the messages and the fields.
func (r *twinRun) clockStep(t *testing.T) func() {
	t.Helper()
	r.a.Server.Stop(t)
	r.a.Server.SetEnv("CLOCK_OFFSET", "15m")
	r.a.Server.Start(t)
	// The back step comes after A's burst, so that it never races the load
	// (on an idle machine the burst may be over in a second): what A sent
	// before it is stamped up to 15 minutes ahead, what A sends after it is
	// not, unless the stamps are kept from going back.
	l := r.load[r.a]
	wait.For(t, 3*time.Minute, func() (bool, error) { // the load's own deadline
		return l.done.Load() == int64(r.size.tickets*r.size.patches), fmt.Errorf("A's PATCHes done: %d", l.done.Load())
	}, "A's burst to be done")
	r.a.Server.Stop(t)
	r.a.Server.SetEnv("CLOCK_OFFSET", "0s")
	r.a.Server.Start(t)
	var lastBefore int64
	require.NoError(t, r.a.DB.Raw(`SELECT coalesce(max(id), 0) FROM transactions WHERE integration_id = ? AND direction = ?`,
		r.a.Integration.ID, models.Outbound).Scan(&lastBefore).Error)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const after = 2
	for i, n := range l.numbers {
		for u := range after {
			require.NoError(t, l.api.call(ctx, http.MethodPatch, "/api/v1/tickets/"+n, map[string]any{
				"description": fmt.Sprintf("A ticket %d after the clock stepped back %d", i, u+1),
				"work_notes":  fmt.Sprintf("back %d", u+1)}, nil))
		}
	}
	r.faultEnd = time.Now()
	var sentAfter int64
	require.NoError(t, r.a.DB.Raw(`SELECT count(*) FROM transactions WHERE integration_id = ? AND direction = ? AND id > ?`,
		r.a.Integration.ID, models.Outbound, lastBefore).Scan(&sentAfter).Error)
	r.note("messages_after_back_step", sentAfter)
	return func() {
		require.EqualValues(t, after*len(l.numbers), sentAfter, "A's messages after its clock stepped back")
	}
}

// TestTwinFaults runs every scenario with the fast load.
func TestTwinFaults(t *testing.T) {
	for _, sc := range twinScenarios {
		t.Run(sc.name, func(t *testing.T) { runTwinFault(t, sc, twinFast) })
	}
}

// twinRun is one scenario's two instances and load.
type twinRun struct {
	size     twinSize
	a, b     *fault.Twin
	load     map[*fault.Twin]*twinLoad
	faultEnd time.Time
	figures  []any // the scenario's own figures for the report
}

// twinLoad is the burst made on one side.
type twinLoad struct {
	api     *ticketAPI
	numbers []string
	done    atomic.Int64
}

func (r *twinRun) other(tw *fault.Twin) *fault.Twin {
	if tw == r.a {
		return r.b
	}
	return r.a
}

func (r *twinRun) note(figures ...any) { r.figures = append(r.figures, figures...) }

func runTwinFault(t *testing.T, sc twinScenario, size twinSize) {
	start := time.Now()
	o := fault.TwinOpts{SyncTimeoutS: twinSyncS, RetryLimit: twinRetry, RetryDelayS: 1, AsyncTimeoutS: twinAsyncS,
		Env: map[string]string{"LEASE_SECONDS": fmt.Sprint(twinLeaseS), "API_RATE": "0"}}
	if sc.opts != nil {
		sc.opts(&o)
	}
	a, b := fault.NewTwins(t, o)
	r := &twinRun{size: size, a: a, b: b, load: map[*fault.Twin]*twinLoad{}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// Each side creates its tickets, then PATCHes them, one writer per ticket.
	var wg sync.WaitGroup
	errs := make(chan error, 2*size.tickets)
	for _, tw := range []*fault.Twin{a, b} {
		l := &twinLoad{api: &ticketAPI{base: tw.Server.URL(), client: &http.Client{Timeout: 5 * time.Second}}}
		r.load[tw] = l
		for i := range size.tickets {
			var out struct{ Number string }
			require.NoError(t, l.api.call(ctx, http.MethodPost, "/api/v1/tickets",
				map[string]any{"short_description": fmt.Sprintf("%s ticket %d", tw.Name, i)}, &out))
			l.numbers = append(l.numbers, out.Number)
		}
	}
	for _, tw := range []*fault.Twin{a, b} {
		l := r.load[tw]
		for i, n := range l.numbers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for u := range size.patches {
					body := map[string]any{"description": fmt.Sprintf("%s ticket %d update %d", tw.Name, i, u+1),
						"priority": 1 + (i+u)%5, "urgency": 1 + u%3, "assignment_group": fmt.Sprintf("group %d", u%4),
						"work_notes": fmt.Sprintf("note %d", u+1)}
					if err := l.api.call(ctx, http.MethodPatch, "/api/v1/tickets/"+n, body, nil); err != nil {
						errs <- fmt.Errorf("%s: %w", tw, err)
						return
					}
					l.done.Add(1)
				}
			}()
		}
	}
	// The fault comes once a fifth of the burst is done on both sides.
	wait.For(t, 60*time.Second, func() (bool, error) {
		da, db := r.load[a].done.Load(), r.load[b].done.Load()
		min := int64(size.tickets * size.patches / 5)
		return da >= min && db >= min, fmt.Errorf("PATCHes done: A %d, B %d", da, db)
	}, "the burst to be under way")
	faultStart := time.Now()
	check := sc.fault(t, r)
	if r.faultEnd.IsZero() {
		r.faultEnd = time.Now()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	loadEnd := time.Now()

	settled := r.waitSettled(t)
	checkTwins(t, r)
	if check != nil {
		check()
	}
	figures := append([]any{"patches", r.load[a].done.Load() + r.load[b].done.Load(),
		"fault_s", secs(r.faultEnd.Sub(faultStart)),
		"settled_after_fault_end_s", secs(settled.Sub(r.faultEnd)),
		"settled_after_load_s", secs(settled.Sub(loadEnd)),
		"duplicates_refused_by_A", len(duplicatesRefused(t, a)), "duplicates_refused_by_B", len(duplicatesRefused(t, b))},
		r.figures...)
	figures = append(figures, "run_s", secs(time.Since(start)))
	fault.Report(t, "twin-"+sc.name, figures...)
}

// waitSettled waits until every transaction of the demo integration on both
// sides is Complete and each side received all the other sent, within the
// budget after the later of the fault's end and the load's.
func (r *twinRun) waitSettled(t *testing.T) time.Time {
	t.Helper()
	want := int64(r.size.tickets * (r.size.patches + 1))
	wait.For(t, twinSettleBudget+r.size.drain, func() (bool, error) {
		ao, ai := r.a.States(t, models.Outbound), r.a.States(t, models.Inbound)
		bo, bi := r.b.States(t, models.Outbound), r.b.States(t, models.Inbound)
		ok := true
		for _, s := range []map[models.TransportState]int64{ao, ai, bo, bi} {
			ok = ok && fault.Count(s, models.Complete) == fault.Total(s)
		}
		ok = ok && fault.Total(ao) == fault.Total(bi) && fault.Total(bo) == fault.Total(ai) &&
			fault.Total(ao) >= want && fault.Total(bo) >= want
		return ok, fmt.Errorf("A outbound %v, inbound %v; B outbound %v, inbound %v", ao, ai, bo, bi)
	}, "both sides settled within a lease and a retry cycle")
	return time.Now()
}

// checkTwins is the suite's shared check, once both sides have settled.
func checkTwins(t *testing.T, r *twinRun) {
	t.Helper()
	for _, pair := range [][2]*fault.Twin{{r.a, r.b}, {r.b, r.a}} {
		from, to := pair[0], pair[1]
		// Nothing applied twice, nothing accepted without being applied.
		var twice []string
		require.NoError(t, to.DB.Raw(`SELECT external_message_id FROM transactions WHERE integration_id = ? AND direction = ?
			GROUP BY external_message_id HAVING count(*) > 1`, to.Integration.ID, models.Inbound).Scan(&twice).Error)
		require.Empty(t, twice, "messages of %s applied twice on %s", from, to)
		var rejected, notApplied int64
		require.NoError(t, to.DB.Raw(`SELECT count(*) FROM transactions WHERE integration_id = ? AND direction = ?
			AND process_state = ?`, to.Integration.ID, models.Inbound, models.ProcessRejected).Scan(&rejected).Error)
		require.Zero(t, rejected, "messages of %s rejected by %s", from, to)
		require.NoError(t, to.DB.Raw(`SELECT count(*) FROM transaction_logs WHERE line LIKE '%Accepted, not applied%'`).
			Scan(&notApplied).Error)
		require.Zero(t, notApplied, "messages of %s accepted by %s but not applied", from, to)

		// Per bond: the sender's messages in queue order are the receiver's
		// in arrival order, and the two tickets are equal.
		var bonds []models.Bond
		require.NoError(t, from.DB.Where("integration_id = ?", from.Integration.ID).Order("id").Find(&bonds).Error)
		require.Len(t, bonds, 2*r.size.tickets, "bonds on %s", from)
		for _, fb := range bonds {
			var tb models.Bond
			require.NoError(t, to.DB.Where("integration_id = ? AND internal_reference = ?", to.Integration.ID,
				fb.ExternalReference).Take(&tb).Error, "%s's bond of its %s", to, fb.ExternalReference)
			require.Equal(t, fb.InternalReference, tb.ExternalReference)
			var sent, arrived []string
			require.NoError(t, from.DB.Raw(`SELECT message_ident FROM transactions WHERE bond_id = ? AND direction = ?
				AND state <> ? ORDER BY seq, id`, fb.ID, models.Outbound, models.Ignored).Scan(&sent).Error)
			require.NoError(t, to.DB.Raw(`SELECT external_message_id FROM transactions WHERE bond_id = ? AND direction = ?
				ORDER BY id`, tb.ID, models.Inbound).Scan(&arrived).Error)
			require.Equal(t, sent, arrived, "bond of %s's %s: %s applied the messages in another order",
				from, fb.InternalReference, to)
			var fk, tk models.Ticket
			require.NoError(t, from.DB.Take(&fk, fb.TicketID).Error)
			require.NoError(t, to.DB.Take(&tk, tb.TicketID).Error)
			require.Equal(t, ticketFields(fk), ticketFields(tk), "ticket %s on %s and %s on %s differ",
				fk.Number, from, tk.Number, to)
		}
	}
}

// duplicatesRefused lists the message ids tw refused as already processed.
func duplicatesRefused(t *testing.T, tw *fault.Twin) []string {
	t.Helper()
	var ids []string
	require.NoError(t, tw.DB.Raw(`SELECT request_body::jsonb -> 'message' ->> 'source_id' FROM http_requests
		WHERE direction = 'Inbound' AND response_status = 409 AND response_body LIKE '%already been processed%'`).
		Scan(&ids).Error)
	return ids
}

// crash kill -9s the victims at a moment when a message of sender is in
// flight: sender cannot record its attempts (the test holds a SHARE lock on
// its http_requests, which every RecordAttempts inserts into) while the
// other side still accepts them. Once the other side has accepted a message
// the sender has not recorded, the victims are killed, the lock released
// (the killed process's blocked transactions roll back) and the victims
// restarted at once. The check it returns asserts the crash happened as
// claimed: every such message was sent again and refused as a duplicate, and
// only messages leased by a killed process were sent twice.
func (r *twinRun) crash(t *testing.T, sender *fault.Twin, victims ...*fault.Twin) func() {
	t.Helper()
	receiver := r.other(sender)
	// The lock also stops the sender taking receipts (its inbound API
	// records them in http_requests), so when nothing happens to be on the
	// wire as it is taken, nothing ever will be: then it is released for
	// a moment and taken again, a few times.
	var lock *gorm.DB
	var inFlight []string
	var err error
	for try := 1; ; try++ {
		lock = sender.DB.Begin()
		require.NoError(t, lock.Error)
		require.NoError(t, lock.Exec(`LOCK TABLE http_requests IN SHARE MODE`).Error)
		err = wait.Until(5*time.Second, func() (bool, error) {
			var accepted []string
			if err := receiver.DB.Raw(`SELECT external_message_id FROM transactions WHERE integration_id = ? AND direction = ?`,
				receiver.Integration.ID, models.Inbound).Scan(&accepted).Error; err != nil {
				return false, err
			}
			inFlight = nil
			if err := sender.DB.Raw(`SELECT message_ident FROM transactions WHERE integration_id = ? AND direction = ?
				AND state = ? AND message_ident IN (?) ORDER BY id`, sender.Integration.ID, models.Outbound, models.Sending,
				append(accepted, "")).Scan(&inFlight).Error; err != nil {
				return false, err
			}
			return len(inFlight) > 0, fmt.Errorf("%s accepted %d messages, none unrecorded on %s", receiver, len(accepted), sender)
		})
		if err == nil || try == 5 {
			break
		}
		require.NoError(t, lock.Rollback().Error)
		before := fault.Count(sender.States(t, models.Outbound), models.Complete)
		wait.For(t, 30*time.Second, func() (bool, error) {
			return fault.Count(sender.States(t, models.Outbound), models.Complete) > before, nil
		}, "%s's queue to move on after lock %d", sender, try)
	}
	lockHeld := true
	defer func() {
		if lockHeld {
			lock.Rollback()
		}
	}()
	require.NoError(t, err, "%s to accept a message of %s that %s has not recorded", receiver, sender, sender)
	leased := map[*fault.Twin][]string{}
	for _, v := range victims {
		v.Server.Kill(t)
	}
	for _, v := range victims {
		leased[v] = leasedMessages(t, v.DB)
	}
	require.NoError(t, lock.Rollback().Error)
	lockHeld = false
	var wg sync.WaitGroup
	for _, v := range victims {
		wg.Add(1)
		go func() { defer wg.Done(); v.Server.Start(t) }()
	}
	wg.Wait()
	r.faultEnd = time.Now()
	r.note("in_flight_at_kill", len(inFlight), "leased_at_kill", len(leased[sender]))
	return func() {
		dups := duplicatesRefused(t, receiver)
		require.NotEmpty(t, inFlight, "no message in flight at the kill")
		require.Subset(t, dups, inFlight, "messages in flight at the kill that were not sent again and refused")
		require.Subset(t, leased[sender], dups, "only messages in flight in the killed process were sent twice")
	}
}

// leasedMessages lists the messages leased by a process (read right after it
// was killed: the ones it had in flight).
func leasedMessages(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	var ids []string
	require.NoError(t, db.Raw(`SELECT message_ident FROM transactions WHERE lease_owner IS NOT NULL ORDER BY id`).
		Scan(&ids).Error)
	return ids
}
