package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
