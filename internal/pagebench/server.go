package pagebench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"time"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/store"
)

// SectionOpts configures Section.
type SectionOpts struct {
	Users    int           // concurrent users
	Duration time.Duration // per page
	// ProfileDir, when set, receives a CPU profile of each page's timed run
	// (pages-<page>.pprof): the in-process server and the bench client.
	ProfileDir string
}

// Section runs the page benchmark against the database in DATABASE_URL (fill
// it first with `unifi gen --transactions 1000000`): the real app is started
// in-process, the demo admin logs in, and each page is loaded by o.Users
// concurrent users for o.Duration. It prints one line per page to w and
// returns them.
func Section(ctx context.Context, getenv func(string) string, o SectionOpts, w io.Writer) ([]string, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	m, err := newMeter(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer m.close()
	db, err := pg.OpenWith(ctx, cfg.DatabaseURL, cfg.DBMaxConns, pg.OpenOpts{Tracer: m})
	if err != nil {
		return nil, err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if _, err := pg.Migrate(ctx, db); err != nil {
		return nil, err
	}
	accounts := account.New(db, nil)
	st := store.NewStore(db, accounts, &store.StoreOpts{SecretKey: cfg.SecretKey})
	if _, err := st.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:8081"}); err != nil {
		return nil, err
	}
	in, err := st.GetIntegrationByName(ctx, models.DemoIntegrationName)
	if err != nil {
		return nil, err
	}
	// As `unifi serve` does every 2 s: a database an engine run left behind
	// can hold its last state changes uncompacted, and the transaction page
	// scans them (12,119 on the 10 million bench's kept database: 0.4 ms of
	// PostgreSQL a request, p95 61.4 against 43.5 ms at 1 million).
	if _, err := query.NewReader(db, nil).CompactTransactionCounts(ctx); err != nil {
		return nil, err
	}
	var total int64
	if err := db.WithContext(ctx).Raw("SELECT count(*) FROM transaction_keys WHERE integration_id = ?", in.ID).Scan(&total).Error; err != nil {
		return nil, err
	}
	var ids []int64
	if err := db.WithContext(ctx).Raw("SELECT id FROM transactions TABLESAMPLE SYSTEM (1) LIMIT 2000").Scan(&ids).Error; err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		if err := db.WithContext(ctx).Raw("SELECT id FROM transactions ORDER BY id DESC LIMIT 2000").Scan(&ids).Error; err != nil {
			return nil, err
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no transactions: run `unifi gen --transactions 1000000` first")
	}
	// As `unifi serve` does: the session check reads users from memory,
	// following changes the database announces.
	users := account.NewUserCache(accounts, account.UserCacheOpts{DatabaseURL: cfg.DatabaseURL})
	usersCtx, stopUsers := context.WithCancel(ctx)
	usersDone := make(chan struct{})
	go func() { defer close(usersDone); users.Run(usersCtx, nil) }()
	defer func() { stopUsers(); <-usersDone }()
	waitCtx, cancelWait := context.WithTimeout(ctx, 10*time.Second)
	err = users.WaitListening(waitCtx)
	cancelWait()
	if err != nil {
		return nil, fmt.Errorf("user cache: %w", err)
	}
	h := handlers.New(handlers.Opts{Store: st, Query: query.NewReader(db, nil), Accounts: accounts,
		Inbound: inbound.NewService(db, accounts, nil), Config: cfg, Users: users,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	srv := httptest.NewServer(h.Echo())
	defer srv.Close()
	admin := models.DemoLogins[0]
	pages := []Page{
		{Name: "integration", Path: func(*rand.Rand) string { return fmt.Sprintf("/integrations/%d", in.ID) }},
		{Name: "transactions filtered (integration + Error)", Path: func(*rand.Rand) string {
			return fmt.Sprintf("/transactions?integration=%d&state=8", in.ID)
		}},
		{Name: "transaction", Path: func(r *rand.Rand) string { return fmt.Sprintf("/transactions/%d", ids[r.IntN(len(ids))]) }},
	}
	fmt.Fprintf(w, "pages: %d transactions on integration %s, %d concurrent users, %s per page, DB_MAX_CONNS %d\n",
		total, in.Name, o.Users, o.Duration, cfg.DBMaxConns)
	ro := Opts{BaseURL: srv.URL, User: admin.Name, Password: admin.Password, Users: o.Users, Duration: o.Duration,
		Pages: pages, Meter: m.read}
	if o.ProfileDir != "" {
		ro.Profile = cpuProfiler(o.ProfileDir, w)
	}
	res, err := Run(ctx, ro)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, r := range res {
		lines = append(lines, r.String())
		fmt.Fprintln(w, r.String())
	}
	return lines, nil
}
