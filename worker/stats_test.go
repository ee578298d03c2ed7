package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/worker"
)

// The engine's counts say how each transaction came to a worker. Five
// bonds with four transactions each are written before the engine starts
// (nothing is handed over): one claim finds the five heads, and the
// recording of each round leases the next on every bond to the same worker,
// which sends them without a claim: four rounds, 5 claimed and 15 chained.
func TestEngineCounts(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tickets := b.ticketsUpdated(t, "counted", 5, 3)
	p := b.pool(t, "counting", 1)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 20})
	b.checkDelivery(t, tickets)
	st := p.Stats()
	require.Equal(t, worker.Stats{Rounds: 4, Claimed: 5, Chained: 15, Claims: st.Claims, EmptyClaims: st.Claims - 1}, st)
	require.EqualValues(t, 20, st.Sent())
	require.Equal(t, worker.Stats{Chained: 15, Claims: 1}, st.Since(worker.Stats{Rounds: 4, Claimed: 5, Claims: st.Claims - 1,
		EmptyClaims: st.EmptyClaims}), "Since subtracts each count")
}

// An engine with slack gives way to a ticket change of its own process in
// flight, but only up to its bound: with a change held open all along (the
// Taker's Editing, ended at the test's end), a change made beside it is
// still delivered, and the worker counted that it waited.
func TestEngineGivesWayToEdits(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	p := b.pool(t, "polite", 1)
	done := p.Editing()
	defer done()
	tk := b.createTicket(t, "beside a long edit")
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
	require.Len(t, b.remote.Arrivals(tk.Number), 1, "delivered while the other change still runs")
	wait.For(t, 10*time.Second, func() (bool, error) { return p.Stats().GaveWay > 0, nil }, "the worker gave way")
}
