package browsertest

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/internal/fakeremote"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/store"
	"unifi/worker"
)

// App is the whole product for a browser test: the web app, the transport
// engine and a fake remote system, on a fresh database.
type App struct {
	URL    string
	Store  *store.Store
	Remote *fakeremote.Remote
	Demo   *models.Integration
}

// AppOpts configures StartApp.
type AppOpts struct {
	// Synchronous makes the demo messages synchronous, so a delivered
	// transaction is Complete at once (the fake remote sends no receipts).
	Synchronous bool
}

// StartApp starts the engine (two workers, fast polling), the web app and a
// fake remote the demo integration points at. Everything stops when t ends.
func StartApp(t testing.TB, o AppOpts) *App {
	t.Helper()
	ctx := context.Background()
	remote := fakeremote.New()
	rsrv := httptest.NewServer(remote)
	t.Cleanup(rsrv.Close)

	dbURL := testdb.URL(t)
	db, err := pg.Open(ctx, dbURL, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	accounts := account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost})
	st := store.NewStore(db, accounts, nil)
	if _, err := st.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: rsrv.URL}); err != nil {
		t.Fatal(err)
	}
	in, err := st.GetIntegrationByName(ctx, models.DemoIntegrationName)
	if err != nil {
		t.Fatal(err)
	}
	if o.Synchronous {
		if err := db.Exec("UPDATE messages SET async = false, receipt_message_id = NULL WHERE integration_id = ?", in.ID).Error; err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pool := worker.New(worker.Opts{Store: st, Logger: log, DatabaseURL: dbURL, Instance: "browsertest",
		Workers: 2, Batch: 20, Lease: 10 * time.Second, PollInterval: 200 * time.Millisecond,
		SoftStopTimeout: 2 * time.Second})
	if err := pool.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	key := hex.EncodeToString(bytes.Repeat([]byte{9}, 32))
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"DATABASE_URL": dbURL, "SESSION_KEY": key, "SECRET_KEY": key, "DATA_DIR": t.TempDir()}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	h := handlers.New(handlers.Opts{Store: st, Query: query.NewReader(db, nil), Accounts: accounts,
		Inbound: inbound.NewService(db, accounts, nil), Logger: log, Config: cfg, Notifier: pool})
	srv := httptest.NewServer(h.Echo())
	t.Cleanup(func() {
		srv.Close()
		stopCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = pool.Stop(stopCtx)
	})
	return &App{URL: srv.URL, Store: st, Remote: remote, Demo: in}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
