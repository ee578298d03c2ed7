package worker_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// A ticket change's NOTIFY wakes an idle worker at once: this engine's idle
// workers poll only every hour, so each ticket reaches the remote within the
// wait only when its notification woke one. The tickets are created as by
// a process that runs no engine (a Store of its own): the engine's own
// process hands its changes over instead (TestHandedOverAtCommit).
func TestNotifyWakesIdleWorker(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.poolPolling(t, "a", 2, time.Hour)
	web := store.NewStore(b.db, account.New(b.db, nil), nil)
	for i := range 5 {
		tk, err := web.CreateTicket(b.ctx, b.fx.Analyst, store.TicketInput{ShortDescription: "wake " + strconv.Itoa(i)})
		require.NoError(t, err)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: int64(i + 1)})
		require.Len(t, b.remote.Arrivals(tk.Number), 1)
	}
}
