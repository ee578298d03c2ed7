// Package pair runs an instance of the whole product (database, transport
// engine, HTTP server) whose demo integration points at another instance, so
// two of them can be bonded to each other: `unifi pair`, the two-instance
// test and the bench use it. It starts from an empty database: the users are
// created as `unifi user add` does, and the integration through the "New
// integration from a template" form over HTTP, logged in as the admin.
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
	DatabaseURL  string       // its own database: empty, or left by an earlier run (migrated on start)
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

// Start migrates the database, adds the demo's users when they are missing,
// starts the engine, serves HTTP on the listener and, when the database has
// no integration yet, creates it through the template form over HTTP as the
// admin, pointing at PeerURL with its connection active.
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
	if err := addUsers(ctx, accounts); err != nil {
		closeDB()
		return nil, fmt.Errorf("instance %s: %w", o.Name, err)
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
		srv: &http.Server{Handler: h.Echo(), ReadHeaderTimeout: 10 * time.Second}, errc: make(chan error, 1)}
	go func() { i.errc <- i.srv.Serve(o.Listener) }()
	if i.Integration, err = i.ensureIntegration(ctx, o); err != nil {
		return nil, errors.Join(fmt.Errorf("instance %s: %w", o.Name, err), i.Close(context.WithoutCancel(ctx)))
	}
	return i, nil
}

// addUsers creates the demo's people and the peer's integration account,
// as `unifi user add` would; existing ones (an earlier run) are kept.
func addUsers(ctx context.Context, accounts *account.Accounts) error {
	for _, l := range append(models.DemoLogins, models.DemoPeerAccount) {
		tok := ""
		if l == models.DemoPeerAccount {
			tok = models.DemoPeerToken
		}
		_, err := accounts.CreateUser(ctx, models.Actor{Name: "pair"}, account.NewUserOpts{Name: l.Name, Role: l.Role,
			Password: l.Password, Token: tok})
		var ve *models.ValidationError
		if err != nil && !errors.As(err, &ve) {
			return err
		}
	}
	return nil
}

// ensureIntegration creates the integration pointing at the other instance
// through the template form, as the admin, unless an earlier run did. Both
// instances issue the same demo token to the same account name, so each
// side's outbound token is the other's inbound one.
func (i *Instance) ensureIntegration(ctx context.Context, o Opts) (*models.Integration, error) {
	in, err := i.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	if err == nil {
		return i.withRetryDelay(ctx, in, o.RetryDelayS)
	}
	if !errors.Is(err, models.ErrNotFound) {
		return nil, err
	}
	admin := models.DemoLogins[0]
	c, err := login(ctx, i.URL, admin.Name, admin.Password)
	if err != nil {
		return nil, err
	}
	if _, err := c.createFromTemplate(ctx, TemplateForm{Template: store.DemoTemplate, Name: models.DemoIntegrationName,
		Environment: "Development", EndpointURL: o.PeerURL + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages",
		Token: models.DemoPeerToken, InboundLogin: models.DemoPeerAccount.Name}); err != nil {
		return nil, fmt.Errorf("create the integration through the template form: %w", err)
	}
	if in, err = i.Store.GetIntegrationByName(ctx, models.DemoIntegrationName); err != nil {
		return nil, err
	}
	return i.withRetryDelay(ctx, in, o.RetryDelayS)
}

// withRetryDelay sets the integration's retry delay when the caller asks
// (tests shorten it).
func (i *Instance) withRetryDelay(ctx context.Context, in *models.Integration, delayS int) (*models.Integration, error) {
	if delayS <= 0 {
		return in, nil
	}
	if err := i.DB.WithContext(ctx).Model(&models.Integration{}).Where("id = ?", in.ID).
		Update("retry_delay_s", delayS).Error; err != nil {
		return nil, err
	}
	in.RetryDelayS = delayS
	return in, nil
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
