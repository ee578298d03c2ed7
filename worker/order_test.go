package worker_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/modelstest"
	"unifi/models/store"
	"unifi/worker"
	"unifi/worker/enginedb"
)

// checkDelivery asserts what the remote saw: every message once, and per
// bond exactly the bond's transactions in queue order (Ignored excluded).
func (b *testBundle) checkDelivery(t *testing.T, tickets []*models.Ticket) {
	t.Helper()
	require.Empty(t, b.remote.Duplicates(), "no message applied twice")
	require.Empty(t, b.remote.OrderViolations())
	for _, tk := range tickets {
		var want []string
		for _, tr := range b.bondTransactions(t, tk.ID) {
			if tr.State != models.Ignored {
				want = append(want, tr.MessageIdent)
			}
		}
		var got []string
		for _, a := range b.remote.Arrivals(tk.Number) {
			got = append(got, a.SourceID)
		}
		require.Equal(t, want, got, "arrivals of %s", tk.Number)
	}
}

// TestOrder updates hundreds of tickets concurrently while two engines on
// one database, with several workers each, deliver to a remote that fails
// at random: per bond everything arrives once and in creation order.
func TestOrder(t *testing.T) {
	t.Parallel()
	const tickets, updates, writers = 300, 5, 6
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(100)})
	b.remote.SetFail(func(*models.Envelope, int) (int, http.Header) {
		if rand.IntN(5) == 0 {
			return http.StatusInternalServerError, nil
		}
		return 0, nil
	})
	b.pool(t, "engine-1", 3)
	b.pool(t, "engine-2", 3)

	all := make([]*models.Ticket, tickets)
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*models.Ticket
			for i := w; i < tickets; i += writers {
				tk, err := b.store.CreateTicket(b.ctx, b.fx.Analyst, store.TicketInput{ShortDescription: fmt.Sprintf("ticket %d", i)})
				if err != nil {
					errs <- err
					return
				}
				all[i] = tk
				mine = append(mine, tk)
			}
			for u := range updates {
				for j, tk := range mine {
					in := store.TicketInputOf(tk)
					in.WorkNotes = fmt.Sprintf("update %d", u)
					tk, err := b.store.UpdateTicket(b.ctx, b.fx.Analyst, tk.ID, tk.Version, in)
					if err != nil {
						errs <- err
						return
					}
					mine[j] = tk
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	total := int64(tickets * (1 + updates))
	b.waitStates(t, 90*time.Second, map[models.TransportState]int64{models.Complete: total})
	require.Equal(t, total, b.remote.Applied())
	b.checkDelivery(t, all)

	var owners []string
	require.NoError(t, b.db.Raw(`SELECT DISTINCT lease_owner FROM transactions WHERE lease_owner IS NOT NULL`).
		Scan(&owners).Error)
	require.Empty(t, owners, "no lease left behind")
}

// TestKill stops an engine in the middle of sending: nothing is recorded for
// the cut attempts, and a second engine delivers everything once the leases
// expire.
func TestKill(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"CancelContext", "StopWithoutWaiting"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			b.remote.Stall()
			ctx, cancel := context.WithCancel(b.ctx)

			var tickets []*models.Ticket
			for i := range 15 {
				tk := b.createTicket(t, fmt.Sprintf("kill %d", i))
				tickets = append(tickets, tk)
				b.updateTicket(t, tk, "second")
			}
			a := worker.New(worker.Opts{Store: b.store, DatabaseURL: b.dbURL, Instance: "doomed", Workers: 2,
				Batch: 10, Lease: 5 * time.Second, PollInterval: 20 * time.Millisecond})
			require.NoError(t, a.Start(ctx))
			wait.For(t, 10*time.Second, func() (bool, error) { return b.remote.Requests() >= 15, nil }, "the doomed engine is sending")
			if how == "CancelContext" {
				cancel()
				require.NoError(t, a.Stop(context.Background()))
			} else {
				stopCtx, stop := context.WithCancel(b.ctx)
				stop()
				require.Error(t, a.Stop(stopCtx))
				cancel()
			}
			b.remote.Release()
			require.Zero(t, b.remote.Applied(), "cut requests were not applied")
			var leased int64
			require.NoError(t, b.db.Model(&models.Transaction{}).Where("lease_owner = 'doomed'").Count(&leased).Error)
			require.Equal(t, int64(15), leased, "the dead engine's leases are still held")
			require.Equal(t, map[models.TransportState]int64{models.Sending: 15, models.Queued: 15}, b.states(t))

			b.passTime(t, time.Minute) // past lease expiry
			p := b.pool(t, "survivor", 2)
			p.Notify(b.ctx)
			b.waitStates(t, 20*time.Second, map[models.TransportState]int64{models.Complete: 30})
			b.checkDelivery(t, tickets)
		})
	}
}

// TestClaimAgainAfterRescue: a claimed transaction is not claimed again
// while its lease holds; once the lease expires by the database's clock and
// the rescuer clears it, it is.
func TestClaimAgainAfterRescue(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tk := b.createTicket(t, "claimed by a probe")
	eng := enginedb.New(b.store)
	opts := enginedb.ClaimOpts{Owner: "probe", Limit: 10, Lease: 30 * time.Second}
	w, err := eng.ClaimWork(b.ctx, opts)
	require.NoError(t, err)
	require.Len(t, w, 1)
	tr := b.tx(t, w[0].Transaction.ID)
	require.Equal(t, tk.ID, tr.TicketID)
	require.Equal(t, "probe", *tr.LeaseOwner)
	require.NotNil(t, tr.LeaseExpiresAt)
	require.Greater(t, time.Until(*tr.LeaseExpiresAt), 20*time.Second, "database time is real time here")

	w, err = eng.ClaimWork(b.ctx, opts)
	require.NoError(t, err)
	require.Empty(t, w, "a leased transaction is not claimed twice")

	b.passTime(t, time.Minute) // past the lease and the integration's sync timeout
	n, err := eng.RescueLeases(b.ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	w, err = eng.ClaimWork(b.ctx, opts)
	require.NoError(t, err)
	require.Len(t, w, 1, "due again once the lease expired")
}

// TestSoftStopLeavesNoLease stops an engine softly at the moment it holds
// chained work: recording a sent batch leases the next transaction of each
// of its bonds to the same worker, to be sent next without a claim. The
// test holds that record (a SHARE lock on http_requests blocks its insert),
// begins the stop, then lets the record finish: the worker comes back with
// chained work and a stop in progress, and must give the leases back. The
// lease is an hour and database time is never moved, so no lease can
// expire during the test: only the give-back lets a second engine deliver
// the rest.
func TestSoftStopLeavesNoLease(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tickets := b.ticketsUpdated(t, "stop", 40, 4) // 40 bonds of 5 transactions
	hold := b.db.Begin()
	require.NoError(t, hold.Error)
	defer hold.Rollback()
	require.NoError(t, hold.Exec("LOCK TABLE http_requests IN SHARE MODE").Error)

	first := worker.New(worker.Opts{Store: b.store, DatabaseURL: b.dbURL, Instance: "first", Workers: 1, Batch: 20,
		Lease: time.Hour, PollInterval: 20 * time.Millisecond, SoftStopTimeout: 10 * time.Second})
	require.NoError(t, first.Start(b.ctx))
	b.stopWhileRecordWaits(t, first, hold, 20)
	b.pool(t, "second", 2)
	b.waitStates(t, 20*time.Second, map[models.TransportState]int64{models.Complete: 200})
	b.checkDelivery(t, tickets)
}

// stopWhileRecordWaits waits until p has sent applied transactions and a
// recording of its waits for a lock hold has, begins a soft stop of p, then
// lets the recording finish (it comes back to a stopping worker, whatever it
// leased). p must send nothing more and leave no lease behind.
func (b *testBundle) stopWhileRecordWaits(t *testing.T, p *worker.Pool, hold *gorm.DB, applied int64) {
	t.Helper()
	wait.For(t, 10*time.Second, func() (bool, error) {
		var waiting int64
		err := b.db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock'`).Scan(&waiting).Error
		return b.remote.Applied() == applied && waiting == 1, fmt.Errorf("applied %d, waiting on a lock %d (%v)",
			b.remote.Applied(), waiting, err)
	}, "the rounds sent and a record waiting")
	stopped := make(chan error, 1)
	go func() { stopped <- p.Stop(context.Background()) }()
	wait.For(t, 10*time.Second, func() (bool, error) { return p.Stopping(), nil }, "the stop to begin")
	require.NoError(t, hold.Rollback().Error) // the record goes on
	require.NoError(t, <-stopped)

	require.Equal(t, applied, b.remote.Applied(), "the stopping engine sent nothing more")
	var leased int64
	require.NoError(t, b.db.Model(&models.Transaction{}).Where("lease_owner IS NOT NULL").Count(&leased).Error)
	require.Zero(t, leased, "a soft stop gives its leases back")
}

// TestPauseResume queues 1,000 transactions on a paused integration; Resume
// sends them in order and the bulk job's stored progress reaches 1000/1000.
func TestPauseResume(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.pool(t, "a", 3)
	in, err := b.store.PauseIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	require.NoError(t, err)
	require.Equal(t, models.IntegrationPaused, in.State)
	require.NotNil(t, in.PausedAt)

	tickets := b.ticketsUpdated(t, "paused", 100, 9)
	require.Equal(t, map[models.TransportState]int64{models.Queued: 1000}, b.states(t))
	w, err := enginedb.New(b.store).ClaimWork(b.ctx, enginedb.ClaimOpts{Owner: "probe", Limit: 10, Lease: time.Second})
	require.NoError(t, err)
	require.Empty(t, w, "a paused integration has nothing to send")
	require.Zero(t, b.remote.Requests())

	_, err = b.store.PauseIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	var ce *models.ConflictError
	require.ErrorAs(t, err, &ce, "pausing twice is a conflict")

	b.remote.Stall() // the job's items settle on delivery: it cannot finish before Release
	job, err := b.store.ResumeIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	require.NoError(t, err)
	require.Equal(t, 1000, job.Total)
	require.Equal(t, models.BulkResume, job.Kind)
	running, err := b.store.RunningBulkJob(b.ctx, b.fx.Integration.ID)
	require.NoError(t, err)
	require.Equal(t, job.ID, running.ID)
	b.remote.Release()
	wait.For(t, 60*time.Second, func() (bool, error) {
		job, err = b.store.GetBulkJob(b.ctx, job.ID)
		require.NoError(t, err)
		return job.State == models.BulkComplete, fmt.Errorf("job %+v", job)
	}, "the resume job complete")
	require.Equal(t, 1000, job.Done)
	require.Zero(t, job.Failed)
	require.Equal(t, map[models.TransportState]int64{models.Complete: 1000}, b.states(t))
	b.checkDelivery(t, tickets)
	_, err = b.store.RunningBulkJob(b.ctx, b.fx.Integration.ID)
	require.ErrorIs(t, err, models.ErrNotFound)

	acts, err := b.store.ListActivity(b.ctx, store.ActivityFilter{RecordType: "integration"})
	require.NoError(t, err)
	var names []string
	for _, a := range acts {
		names = append(names, a.Action)
	}
	require.Contains(t, names, "pause integration")
	require.Contains(t, names, "resume integration")
}

// TestResumeContinuesAfterRestart: a resume job held by an engine that dies
// is taken over by another engine once its lease expires.
func TestResumeContinuesAfterRestart(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	_, err := b.store.PauseIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	require.NoError(t, err)
	var tickets []*models.Ticket
	for i := range 20 {
		tk := b.createTicket(t, fmt.Sprintf("restart %d", i))
		tickets = append(tickets, b.updateTicket(t, tk, "x"))
	}
	job, err := b.store.ResumeIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	require.NoError(t, err)
	// A process claimed the job and died before stepping it.
	_, err = b.store.ClaimBulkJob(b.ctx, "dead-process", 30*time.Second)
	require.NoError(t, err)

	b.passTime(t, time.Minute) // past the dead process's lease
	p := b.pool(t, "b", 2)
	p.Notify(b.ctx)
	wait.For(t, 30*time.Second, func() (bool, error) {
		job, err = b.store.GetBulkJob(b.ctx, job.ID)
		require.NoError(t, err)
		return job.State == models.BulkComplete, nil
	}, "the resume job complete on the second engine")
	require.Equal(t, 40, job.Done)
	b.checkDelivery(t, tickets)
}
