package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/fakeremote"
	"unifi/internal/testdb"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/modelstest"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/store"
	"unifi/worker"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// testBundle is one test's world: a database, a clock, a fake remote and an
// integration pointing at it.
type testBundle struct {
	ctx    context.Context
	dbURL  string
	db     *gorm.DB
	clock  *modelstest.Clock
	store  *store.Store
	remote *fakeremote.Remote
	url    string
	fx     *modelstest.Fixture
}

func setup(t *testing.T, o *modelstest.IntegrationOpts) *testBundle {
	t.Helper()
	ctx := context.Background()
	url := testdb.URL(t)
	db, err := pg.Open(ctx, url, 20)
	require.NoError(t, err)
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	remote := fakeremote.New()
	srv := httptest.NewServer(remote)
	t.Cleanup(srv.Close)
	if o == nil {
		o = &modelstest.IntegrationOpts{}
	}
	if o.EndpointURL == "" {
		o.EndpointURL = srv.URL + "/in"
	}
	clock := &modelstest.Clock{}
	b := &testBundle{ctx: ctx, dbURL: url, db: db, clock: clock, store: store.NewStore(db, account.New(db, nil),
		&store.StoreOpts{NowFunc: clock.Now}),
		remote: remote, url: srv.URL}
	b.fx = modelstest.Integration(ctx, t, db, o)
	return b
}

// pool starts an engine on the bundle's database; it is stopped at cleanup.
func (b *testBundle) pool(t *testing.T, name string, workers int) *worker.Pool {
	t.Helper()
	return b.poolPolling(t, name, workers, 20*time.Millisecond)
}

// poolPolling is pool with idle workers polling every poll.
func (b *testBundle) poolPolling(t *testing.T, name string, workers int, poll time.Duration) *worker.Pool {
	t.Helper()
	p := worker.New(worker.Opts{Store: b.store, DatabaseURL: b.dbURL, Instance: name, Workers: workers, Batch: 20,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelError})),
		Lease:  5 * time.Second, PollInterval: poll, SoftStopTimeout: 5 * time.Second})
	require.NoError(t, p.Start(b.ctx))
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	return p
}

// passTime lets d pass on the database's clock, for every engine alike: the
// engine compares leases and due times with the database's now(), so the
// test moves every lease expiry and due time d into the past instead.
func (b *testBundle) passTime(t *testing.T, d time.Duration) {
	t.Helper()
	secs := d.Seconds()
	for _, q := range []string{
		`UPDATE transactions SET next_attempt_at = next_attempt_at - make_interval(secs => ?::float8),
			lease_expires_at = lease_expires_at - make_interval(secs => ?::float8),
			receipt_due_at = receipt_due_at - make_interval(secs => ?::float8)`,
		`UPDATE http_requests SET send_after = send_after - make_interval(secs => ?::float8) WHERE send_after IS NOT NULL`,
		`UPDATE bulk_jobs SET lease_expires_at = lease_expires_at - make_interval(secs => ?::float8) WHERE lease_expires_at IS NOT NULL`,
	} {
		args := []any{secs}
		if strings.Count(q, "?") == 3 {
			args = []any{secs, secs, secs}
		}
		require.NoError(t, b.db.Exec(q, args...).Error)
	}
}

func (b *testBundle) createTicket(t *testing.T, short string) *models.Ticket {
	t.Helper()
	tk, err := b.store.CreateTicket(b.ctx, b.fx.Analyst, store.TicketInput{ShortDescription: short})
	require.NoError(t, err)
	return tk
}

func (b *testBundle) updateTicket(t *testing.T, tk *models.Ticket, notes string) *models.Ticket {
	t.Helper()
	in := store.TicketInputOf(tk)
	in.WorkNotes = notes
	out, err := b.store.UpdateTicket(b.ctx, b.fx.Analyst, tk.ID, tk.Version, in)
	require.NoError(t, err)
	return out
}

// ticketsUpdated creates n tickets named prefix 0..n-1, each then updated
// updates times (1 + updates transactions per ticket), and returns them as
// last updated.
func (b *testBundle) ticketsUpdated(t *testing.T, prefix string, n, updates int) []*models.Ticket {
	t.Helper()
	tickets := make([]*models.Ticket, 0, n)
	for i := range n {
		tk := b.createTicket(t, fmt.Sprintf("%s %d", prefix, i))
		for u := range updates {
			tk = b.updateTicket(t, tk, fmt.Sprintf("update %d", u))
		}
		tickets = append(tickets, tk)
	}
	return tickets
}

// states counts the integration's transactions by state.
func (b *testBundle) states(t *testing.T) map[models.TransportState]int64 {
	t.Helper()
	cs, err := query.NewReader(b.db, nil).CountTransactionsByState(b.ctx, b.fx.Integration.ID)
	require.NoError(t, err)
	out := map[models.TransportState]int64{}
	for _, c := range cs {
		if c.Count > 0 {
			out[c.State] = c.Count
		}
	}
	return out
}

// waitStates waits until the integration's transactions are in exactly want.
func (b *testBundle) waitStates(t *testing.T, timeout time.Duration, want map[models.TransportState]int64) {
	t.Helper()
	wait.For(t, timeout, func() (bool, error) {
		got := b.states(t)
		return fmt.Sprint(got) == fmt.Sprint(want), fmt.Errorf("states %v", got)
	}, "transaction states %v", want)
}

func (b *testBundle) tx(t *testing.T, id int64) *models.Transaction {
	t.Helper()
	tr, err := b.store.GetTransaction(b.ctx, id)
	require.NoError(t, err)
	return tr
}

// bondTransactions returns a ticket's transactions on the fixture's bond in queue order.
func (b *testBundle) bondTransactions(t *testing.T, ticketID int64) []models.Transaction {
	t.Helper()
	var out []models.Transaction
	require.NoError(t, b.db.Where("ticket_id = ? AND integration_id = ?", ticketID, b.fx.Integration.ID).
		Order("seq, id").Find(&out).Error)
	return out
}

func (b *testBundle) requests(t *testing.T, transactionID int64) []models.HTTPRequest {
	t.Helper()
	var out []models.HTTPRequest
	require.NoError(t, b.db.Where("transaction_id = ?", transactionID).Order("id").Find(&out).Error)
	return out
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
