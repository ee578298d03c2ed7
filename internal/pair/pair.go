// Package pair runs an instance of the whole product (database, transport
// engine, HTTP server) whose demo integration points at another instance, so
// two of them can be bonded to each other: `unifi pair`, the two-instance
// test and the bench use it.
package pair

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"gorm.io/gorm"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/store"
	"unifi/worker"
)

// Opts configures one instance.
type Opts struct {
	Name         string       // names the instance in logs and leases ("A", "B")
	DatabaseURL  string       // its own database (migrated and seeded on start)
	Listener     net.Listener // where it serves
	PeerURL      string       // the other instance's base URL, e.g. http://127.0.0.1:8090
	Config       config.Config
	Logger       *slog.Logger
	Workers      int
	PollInterval time.Duration
	PasswordCost int // bcrypt cost of the demo users; 0 = default
	// RetryDelayS, when set, replaces the demo integration's retry delay.
	RetryDelayS int
}

// Instance is one running product instance.
type Instance struct {
	Name        string
	URL         string // base URL, http://host:port
	DB          *gorm.DB
	Store       *store.Store
	Query       *query.Reader
	Pool        *worker.Pool
	Integration *models.Integration // its demo integration, pointing at the other instance
	srv         *http.Server
	errc        chan error
}

// Start migrates and seeds the database (the demo, with its connection to
// PeerURL), starts the engine and serves HTTP on the listener.
func Start(ctx context.Context, o Opts) (*Instance, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	log := o.Logger.With(slog.String("instance", o.Name))
	db, err := pg.Open(ctx, o.DatabaseURL, o.Config.DBMaxConns)
	if err != nil {
		return nil, fmt.Errorf("instance %s: %w", o.Name, err)
	}
	closeDB := func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
	if _, err := pg.Migrate(ctx, db); err != nil {
		closeDB()
		return nil, fmt.Errorf("instance %s: %w", o.Name, err)
	}
	accounts := account.New(db, &account.Opts{PasswordCost: o.PasswordCost})
	st := store.NewStore(db, accounts, &store.StoreOpts{SecretKey: o.Config.SecretKey})
	if _, err := st.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: o.PeerURL}); err != nil {
		closeDB()
		return nil, fmt.Errorf("instance %s: %w", o.Name, err)
	}
	in, err := st.GetIntegrationByName(ctx, models.DemoIntegrationName)
	if err != nil {
		closeDB()
		return nil, fmt.Errorf("instance %s: %w", o.Name, err)
	}
	if o.RetryDelayS > 0 {
		if err := db.WithContext(ctx).Model(&models.Integration{}).Where("id = ?", in.ID).
			Update("retry_delay_s", o.RetryDelayS).Error; err != nil {
			closeDB()
			return nil, fmt.Errorf("instance %s: %w", o.Name, err)
		}
	}
	pool := worker.New(worker.Opts{Store: st, Logger: log, DatabaseURL: o.DatabaseURL, Instance: "pair-" + o.Name,
		Workers: o.Workers, PollInterval: o.PollInterval})
	if err := pool.Start(context.WithoutCancel(ctx)); err != nil {
		closeDB()
		return nil, fmt.Errorf("instance %s: %w", o.Name, err)
	}
	q := query.NewReader(db, nil)
	h := handlers.New(handlers.Opts{Store: st, Query: q, Accounts: accounts,
		Inbound: inbound.NewService(db, accounts, nil), Logger: log, Config: o.Config, Notifier: pool})
	i := &Instance{Name: o.Name, URL: "http://" + o.Listener.Addr().String(), DB: db, Store: st, Query: q, Pool: pool,
		Integration: in, srv: &http.Server{Handler: h.Echo(), ReadHeaderTimeout: 10 * time.Second},
		errc: make(chan error, 1)}
	go func() { i.errc <- i.srv.Serve(o.Listener) }()
	return i, nil
}

// Close stops serving, stops the engine (soft, then hard) and closes the database.
func (i *Instance) Close(ctx context.Context) error {
	var errs []error
	if err := i.srv.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := <-i.errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		errs = append(errs, err)
	}
	if err := i.Pool.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if sqlDB, err := i.DB.DB(); err == nil {
		_ = sqlDB.Close()
	}
	return errors.Join(errs...)
}

// Listen opens a listener on addr ("127.0.0.1:0" for any free port).
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}
