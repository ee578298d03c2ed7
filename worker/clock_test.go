package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/modelstest"
	"unifi/models/store"
	"unifi/worker"
)

// TestTwoClocks runs two engines on one database whose application clocks
// differ by three times a whole lease (lease plus sync timeout), while a
// slow remote keeps every lease live for a while: leases, due times and
// expiries are the database's (docs/engine.md, "Whose clock"), so neither
// engine rescues the other's live work, every message arrives exactly once,
// and per bond in order. With RescueLeases comparing with the application
// clock, the engine whose clock runs ahead rescues the other's live leases
// at once and sends their messages a second time.
func TestTwoClocks(t *testing.T) {
	t.Parallel()
	const (
		lease   = 2 * time.Second
		syncS   = 1
		tickets = 60
		updates = 2
		hold    = 300 * time.Millisecond // the remote holds each request: leases are live while rescuers run
	)
	ahead := 3 * (lease + syncS*time.Second)
	b := setup(t, &modelstest.IntegrationOpts{SyncTimeoutS: modelstest.Ptr(syncS), RetryLimit: modelstest.Ptr(100)})

	// Count every request per message id, before the remote's duplicate
	// check (which would answer a second one "already processed").
	var mu sync.Mutex
	got := map[string]int{}
	b.remote.SetFail(func(env *models.Envelope, _ int) (int, http.Header) {
		mu.Lock()
		got[env.Message.SourceID]++
		mu.Unlock()
		select { // a slow remote, not a wait of the test's
		case <-time.After(hold):
		case <-b.ctx.Done():
		}
		return 0, nil
	})

	var rescued atomic.Int64
	start := func(name string, offset time.Duration) {
		clock := &modelstest.Clock{}
		clock.Advance(offset)
		st := store.NewStore(b.db, account.New(b.db, nil), &store.StoreOpts{NowFunc: clock.Now})
		log := slog.New(&rescueCounter{Handler: slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}),
			n: &rescued})
		p := worker.New(worker.Opts{Store: st, DatabaseURL: b.dbURL, Instance: name, Workers: 2, Batch: 20, Logger: log,
			Lease: lease, PollInterval: 20 * time.Millisecond, SoftStopTimeout: 5 * time.Second})
		require.NoError(t, p.Start(b.ctx))
		t.Cleanup(func() { _ = p.Stop(context.Background()) })
	}
	start("clock-real", 0)
	start("clock-ahead", ahead)

	all := b.ticketsUpdated(t, "two clocks", tickets, updates)
	total := int64(tickets * (1 + updates))
	b.waitStates(t, 60*time.Second, map[models.TransportState]int64{models.Complete: total})

	mu.Lock()
	var twice []string
	for id, n := range got {
		if n > 1 {
			twice = append(twice, fmt.Sprintf("%s x%d", id, n))
		}
	}
	sent := len(got)
	mu.Unlock()
	require.Empty(t, twice, "no message sent twice")
	require.Equal(t, int(total), sent, "every message sent")
	require.Zero(t, rescued.Load(), "no live lease rescued")
	b.checkDelivery(t, all)
	var requests int64
	require.NoError(t, b.db.Raw(`SELECT count(*) FROM http_requests WHERE direction = 'Outbound'`).Scan(&requests).Error)
	require.Equal(t, total, requests, "one request per transaction")
}

// rescueCounter counts the pool's "rescued expired leases" warnings: one
// per RescueLeases that freed anything.
type rescueCounter struct {
	slog.Handler
	n *atomic.Int64
}

func (h *rescueCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "rescued expired leases" {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h *rescueCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return &rescueCounter{Handler: h.Handler.WithAttrs(as), n: h.n}
}

func (h *rescueCounter) WithGroup(name string) slog.Handler {
	return &rescueCounter{Handler: h.Handler.WithGroup(name), n: h.n}
}
