package worker_test

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/queue"
	"unifi/worker"
)

// A ticket change made in the engine's own process is handed over at
// commit: written leased to the engine (due again only when that lease
// expires) and sent without a claim. This engine has no LISTEN connection,
// polls hourly and leases for an hour, so no claim or rescue can send the
// changes within the wait: only the handover does.
func TestHandedOverAtCommit(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := deaf(t, b, "own")
	tk := b.createTicket(t, "handed")
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
	for i := range 3 {
		tk = b.updateTicket(t, tk, "handed "+strconv.Itoa(i))
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: int64(i + 2)})
	}
	require.Len(t, b.remote.Arrivals(tk.Number), 4)
	var leased int64
	require.NoError(t, b.db.Model(&models.Transaction{}).Where("lease_owner IS NOT NULL").Count(&leased).Error)
	require.Zero(t, leased, "each lease ends with the attempt's record")
	st := p.Stats()
	require.Equal(t, worker.Stats{Rounds: 4, Handed: 4, Claims: st.Claims, EmptyClaims: st.Claims, GaveWay: st.GaveWay}, st,
		"four rounds of one handed-over transaction each; every claim found nothing")
	require.NotZero(t, st.Claims, "a round that sent handed-over work is followed by a claim")
}

// A stopped engine takes nothing more: the Store stops handing it changes,
// and what reaches it after its stop (a change that read the engine before
// the stop and committed after) is given back at once for any engine's
// claim, not left leased until the lease expires.
func TestStoppedEngineGivesBackHanded(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := deaf(t, b, "gone")
	require.NoError(t, p.Stop(context.Background()))
	tk := b.createTicket(t, "after the stop")
	require.Nil(t, b.bondTransactions(t, tk.ID)[0].LeaseOwner, "the Store no longer hands over to a stopped engine")

	late := &lateChange{owner: "gone"}
	b.store.HandTo(late) // stands for a change that read the engine before its stop
	tk = b.createTicket(t, "committed after the stop")
	b.store.StopHandingTo(late)
	require.Len(t, late.handed, 1)
	leased := b.tx(t, late.handed[0].Transaction.ID)
	require.NotNil(t, leased.LeaseOwner)
	p.Take(late.handed)
	given := b.tx(t, leased.ID)
	require.Nil(t, given.LeaseOwner, "given back")
	require.Equal(t, models.Sending, given.State)
	var due bool
	require.NoError(t, b.db.Raw("SELECT next_attempt_at <= now() FROM transactions WHERE id = ?", leased.ID).Scan(&due).Error)
	require.True(t, due, "due now, for any engine's claim")
	require.Equal(t, tk.ID, given.TicketID)
}

// deaf starts an engine named name that neither listens for NOTIFY nor polls
// within a test, and leases for an hour: only what is handed over to it is
// sent. It is stopped at cleanup.
func deaf(t *testing.T, b *testBundle, name string) *worker.Pool {
	t.Helper()
	p := worker.New(worker.Opts{Store: b.store, Instance: name, Workers: 2, Batch: 20, Lease: time.Hour,
		PollInterval: time.Hour, SoftStopTimeout: 5 * time.Second})
	require.NoError(t, p.Start(b.ctx))
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}

// lateChange stands for the engine as a change saw it before the engine
// stopped: it keeps what it is handed.
type lateChange struct {
	owner  string
	handed []queue.Handed
}

func (l *lateChange) Lease() (string, float64)   { return l.owner, time.Hour.Seconds() }
func (l *lateChange) Take(handed []queue.Handed) { l.handed = append(l.handed, handed...) }
func (l *lateChange) Editing() (done func())     { return func() {} }

// A ticket change's message does not wait for the claiming workers: with
// the only one stuck in a send (its remote holds the request), the hand
// worker sends what the change handed over.
func TestHandedWhileWorkersBusy(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	busy := b.createTicket(t, "busy") // before the engine starts: claimed, not handed over
	held, hold := make(chan struct{}), make(chan struct{})
	var released sync.Once
	release := func() { released.Do(func() { close(hold) }) }
	b.remote.SetFail(func(env *models.Envelope, _ int) (int, http.Header) {
		if env.Message.SourceReference == busy.Number {
			close(held)
			<-hold
		}
		return 0, nil
	})
	p := b.pool(t, "one", 1)
	t.Cleanup(release) // before the engine's stop (cleanups run last first): a failed test does not hang
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the claiming worker did not send the busy ticket's message")
	}
	quick := b.createTicket(t, "quick")
	// Well within the held send's sync timeout (10 s): the claiming worker
	// is not freed by that meanwhile.
	deadline := time.Now().Add(3 * time.Second)
	for len(b.remote.Arrivals(quick.Number)) == 0 {
		require.True(t, time.Now().Before(deadline), "the handed-over message waited for the busy worker")
		time.Sleep(5 * time.Millisecond)
	}
	require.Empty(t, b.remote.Arrivals(busy.Number), "still held")
	release()
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 2})
	require.EqualValues(t, 1, p.Stats().Handed)
}
