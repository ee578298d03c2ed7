package worker_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
)

// A ticket change's NOTIFY wakes an idle worker at once: this engine's idle
// workers poll only every hour, so each ticket reaches the remote within the
// wait only when its notification woke one.
func TestNotifyWakesIdleWorker(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.poolPolling(t, "a", 2, time.Hour)
	for i := range 5 {
		tk := b.createTicket(t, "wake "+strconv.Itoa(i))
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: int64(i + 1)})
		require.Len(t, b.remote.Arrivals(tk.Number), 1)
	}
}
