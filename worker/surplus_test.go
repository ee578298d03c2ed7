package worker_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/worker"
)

// surplusPool is one claiming worker with batches of five: it chains four of
// what each recording releases, and the fifth goes to the surplus.
func (b *testBundle) surplusPool(t *testing.T, name string, lease time.Duration) *worker.Pool {
	t.Helper()
	p := worker.New(worker.Opts{Store: b.store, DatabaseURL: b.dbURL, Instance: name, Workers: 1, Batch: 5,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError})),
		Lease:  lease, PollInterval: 20 * time.Millisecond, SoftStopTimeout: 5 * time.Second})
	require.NoError(t, p.Start(b.ctx))
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}

// Five bonds of six transactions, written before the engine starts, and a
// worker with batches of five: one claim finds the five heads; after it,
// each recording releases five, chains four to the worker and leases the
// fifth to the process's surplus, and each round's claim (a fifth of a
// batch) finds nothing due and is filled from the surplus. So nothing is
// claimed twice: 5 claimed, 25 chained, in six rounds. When the release
// left the fifth unleased, a later claim found it: 10 claimed, 20 chained.
func TestSurplusSentWithoutClaim(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tickets := b.ticketsUpdated(t, "surplus", 5, 5)
	p := b.surplusPool(t, "surplus", 5*time.Second)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 30})
	b.checkDelivery(t, tickets)
	st := p.Stats()
	require.Equal(t, worker.Stats{Rounds: 6, Claimed: 5, Chained: 25}, worker.Stats{Rounds: st.Rounds,
		Claimed: st.Claimed, Chained: st.Chained}, "how the transactions came to the worker")
}

// Surplus leased more than half the lease ago is given back, not sent: with
// a lease of a nanosecond every surplus entry is stale when a worker takes
// it, so each one is given back and a later claim finds it. Everything still
// arrives once and in order, and no lease is left behind.
func TestStaleSurplusGivenBack(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tickets := b.ticketsUpdated(t, "stale", 5, 5)
	p := b.surplusPool(t, "stale", time.Nanosecond)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 30})
	b.checkDelivery(t, tickets)
	st := p.Stats()
	require.Greater(t, st.Claimed, int64(5), "surplus given back is claimed again: %+v", st)
	require.EqualValues(t, 30, st.Sent(), "each sent once: %+v", st)
	var leased int64
	require.NoError(t, b.db.Model(&models.Transaction{}).Where("lease_owner IS NOT NULL").Count(&leased).Error)
	require.Zero(t, leased)
}

// A soft stop gives the surplus back. Ten bonds of two, batches of five:
// the first round sends five heads and its recording leases the five next,
// four chained and one to the surplus; the second round's claim takes a
// sixth head and fills the batch, so the surplus stays, and its recording
// waits for the sixth bond, which the test holds locked. The engine stops
// meanwhile: nothing more is sent, and the surplus lease is given back (the
// lease is an hour), so a second engine delivers the rest at once.
func TestSoftStopGivesBackSurplus(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tickets := b.ticketsUpdated(t, "stop surplus", 10, 1)
	hold := b.db.Begin()
	require.NoError(t, hold.Error)
	defer hold.Rollback()
	require.NoError(t, hold.Exec("SELECT id FROM bonds WHERE ticket_id = ? FOR UPDATE", tickets[5].ID).Error)

	first := b.surplusPool(t, "first", time.Hour)
	b.stopWhileRecordWaits(t, first, hold, 10)
	b.pool(t, "second", 1)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 20})
	b.checkDelivery(t, tickets)
}

// Neither the surplus nor the claims wait behind the other: ten bonds of
// twenty and one worker with batches of five, which holds five bonds at a
// time. The worker chains four, the fifth bond goes to the surplus, and
// the heads of the other five are due in the database. Taking the surplus
// first in every round, no claim would find those heads until the first
// five bonds were done; claiming first in every round, the surplus would
// wait until nothing was due. Alternating, the last head goes out before
// the first bond is done, and the fifth bond's second transaction before
// the last head.
func TestSurplusAndClaimsTakeTurns(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tickets := b.ticketsUpdated(t, "turns", 10, 19)
	b.surplusPool(t, "turns", 5*time.Second)
	b.waitStates(t, 20*time.Second, map[models.TransportState]int64{models.Complete: 200})
	b.checkDelivery(t, tickets)
	first, fifth, last := b.remote.Arrivals(tickets[0].Number), b.remote.Arrivals(tickets[4].Number),
		b.remote.Arrivals(tickets[9].Number)
	require.True(t, last[0].At.Before(first[len(first)-1].At), "the last bond's head (%s) went out before the first bond was done (%s)",
		last[0].At.Format(time.StampMicro), first[len(first)-1].At.Format(time.StampMicro))
	require.True(t, fifth[1].At.Before(last[0].At), "the surplus (%s) went out before the last head (%s)",
		fifth[1].At.Format(time.StampMicro), last[0].At.Format(time.StampMicro))
}
