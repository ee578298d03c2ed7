package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/configpkg"
	"unifi/models/designer"
	"unifi/models/inbound"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/script"
	"unifi/models/store"
	"unifi/models/webhook"
	"unifi/worker"
	"unifi/worker/poll"
)

const usage = `Usage: unifi <command> [flags]

Commands:
  serve      run the web server and the transport engine (configuration from the environment)
  migrate    apply database migrations and exit
  user add   create a user: unifi user add --name NAME --role admin|manager|analyst|integration --password PW
  gen        generate test data: unifi gen --transactions 1000000 (tickets, bonds, stages, requests, history)
  dev        what 'make run' starts: a private PostgreSQL when DATABASE_URL is unset, the demo, the server
             and the demo peer beside it
  pair       two instances bonded to each other, each with its own database (what 'make pair' starts)
  package    move an integration's configuration between instances:
             unifi package export NAME > file; unifi package import [--dry-run] file
  peer       the demo remote system: answers messages, sends receipts, fails on demand (unifi peer -h)
  sim        simulators of real APIs for demos and tests: unifi sim jira|servicenow -addr HOST:PORT
`

// run dispatches a sub-command. It is main without the process: tests call it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, getenv, stdout, nil)
	case "migrate":
		return cmdMigrate(ctx, getenv, stdout)
	case "user":
		if len(args) < 2 || args[1] != "add" {
			fmt.Fprint(stderr, usage)
			return errors.New(`unknown "user" command; use "user add"`)
		}
		return cmdUserAdd(ctx, args[2:], getenv, stdout, stderr)
	case "gen":
		return cmdGen(ctx, args[1:], getenv, stdout, stderr)
	case "dev":
		return cmdDev(ctx, args[1:], getenv, stdout, stderr)
	case "peer":
		return cmdPeer(ctx, args[1:], stdout, stderr)
	case "sim":
		return cmdSim(ctx, args[1:], stdout, stderr)
	case "pair":
		return cmdPair(ctx, args[1:], getenv, stdout, stderr)
	case "package":
		return cmdPackage(ctx, args[1:], getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func newLogger(c config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// services are the operations layers on one database.
type services struct {
	store    *store.Store
	accounts *account.Accounts
	query    *query.Reader
	inbound  *inbound.Service
	packages *configpkg.Service
	webhook  *webhook.Service
	scripts  *script.Engine
}

// newServices builds the services on db.
func newServices(db *gorm.DB, c config.Config) *services {
	accounts := account.New(db, nil)
	now := time.Now
	if off := c.ClockOffset; off != 0 {
		now = func() time.Time { return time.Now().Add(off) }
	}
	scripts := script.NewEngine(script.Limits{Timeout: c.ScriptTimeout, MaxHeapGrowth: uint64(c.ScriptMemoryMiB) << 20})
	st := store.NewStore(db, accounts, &store.StoreOpts{SecretKey: c.SecretKey, NowFunc: now, Scripts: scripts})
	in := inbound.NewService(db, accounts, &inbound.Opts{NowFunc: now})
	return &services{store: st, accounts: accounts, query: query.NewReader(db, nil),
		inbound: in, packages: st.Packages(), webhook: webhook.New(db, in, scripts), scripts: scripts}
}

// openServices connects, migrates and returns the services plus a closer.
func openServices(ctx context.Context, c config.Config, log *slog.Logger) (*services, func(), error) {
	db, err := pg.Open(ctx, c.DatabaseURL, c.DBMaxConns)
	if err != nil {
		return nil, nil, err
	}
	closeDB := func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}
	n, err := pg.Migrate(ctx, db)
	if err != nil {
		closeDB()
		return nil, nil, err
	}
	if n > 0 {
		log.InfoContext(ctx, "migrations applied", slog.Int("count", n))
	}
	return newServices(db, c), closeDB, nil
}

// toolServices is openServices for the one-shot commands (user add, gen): the
// configuration from getenv, and logs discarded.
func toolServices(ctx context.Context, getenv func(string) string) (*services, func(), error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	return openServices(ctx, cfg, newLogger(cfg, io.Discard))
}

// cmdServe runs the server until ctx ends. ready, when set, is called with the
// listening address once the server accepts connections.
func cmdServe(ctx context.Context, getenv func(string) string, stdout io.Writer, ready func(addr string)) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	for _, k := range cfg.GeneratedKeys {
		log.WarnContext(ctx, "generated a key for development; set it in the environment for production", slog.String("key", k))
	}
	svc, closeDB, err := openServices(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeDB()
	defer svc.inbound.Wait() // the inbound group committer, once the server has drained

	pool := worker.New(worker.Opts{Store: svc.store, Logger: log, DatabaseURL: cfg.DatabaseURL,
		Instance: cfg.InstanceName, Workers: cfg.Workers, Batch: cfg.WorkerBatch, Lease: cfg.Lease,
		PollInterval: cfg.PollInterval, AllowLinkLocal: cfg.AllowLinkLocalEndpoints})
	// The pool's lifetime is managed by Stop below (soft, then hard), not by
	// the signal context, which ends before the HTTP server has drained.
	if err := pool.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := pool.Stop(stopCtx); err != nil {
			log.Warn("engine stop", slog.String("error", err.Error()))
		}
	}()

	// Pollers (docs/pollers.md): each runs on one server process at a time.
	pollers := poll.New(svc.store.DB(context.WithoutCancel(ctx)), svc.store, svc.inbound, poll.Opts{
		Processor: poll.Scripts(svc.scripts), Webhook: svc.webhook, Lease: cfg.Lease, Idle: cfg.PollInterval,
		AllowLinkLocal: cfg.AllowLinkLocalEndpoints, Logger: log, Owner: cfg.InstanceName + ":" + strconv.Itoa(os.Getpid())})
	if err := pollers.Start(context.WithoutCancel(ctx)); err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
		defer cancel()
		if err := pollers.Stop(stopCtx); err != nil {
			log.Warn("poll runner stop", slog.String("error", err.Error()))
		}
	}()

	// Counts by transaction state: fold the recent state changes in every few
	// seconds (migration 00031); several servers take turns.
	compactCtx, stopCompact := context.WithCancel(context.WithoutCancel(ctx))
	var compactWG sync.WaitGroup
	compactWG.Add(1)
	go func() {
		defer compactWG.Done()
		svc.query.RunCountCompactor(compactCtx, 2*time.Second, func(err error) {
			log.Warn("compact transaction counts", slog.String("error", err.Error()))
		})
	}()
	defer func() { stopCompact(); compactWG.Wait() }()

	// The session check of every request reads users from memory; every
	// server forgets a user when the database announces a change (00070).
	users := account.NewUserCache(svc.accounts, account.UserCacheOpts{DatabaseURL: cfg.DatabaseURL})
	usersCtx, stopUsers := context.WithCancel(context.WithoutCancel(ctx))
	var usersWG sync.WaitGroup
	usersWG.Add(1)
	go func() {
		defer usersWG.Done()
		users.Run(usersCtx, func(err error) {
			log.Warn("user cache: listening for user changes stopped; reading users from the database until it resumes",
				slog.String("error", err.Error()))
		})
	}()
	defer func() { stopUsers(); usersWG.Wait() }()

	// The inbound API's configuration snapshot is dropped when the database
	// notifies a configuration change (00170); the engine listens itself.
	cfgCtx, stopCfg := context.WithCancel(context.WithoutCancel(ctx))
	var cfgWG sync.WaitGroup
	cfgWG.Add(1)
	go func() {
		defer cfgWG.Done()
		designer.Watch(cfgCtx, cfg.DatabaseURL, designer.WatchOpts{OnChange: []func(context.Context){svc.inbound.ConfigChanged},
			OnError: func(ctx context.Context, err error) {
				log.WarnContext(ctx, "listen for configuration changes", slog.String("error", err.Error()))
			}})
	}()
	defer func() { stopCfg(); cfgWG.Wait() }()

	h := handlers.New(handlers.Opts{Store: svc.store, Query: svc.query, Accounts: svc.accounts, Inbound: svc.inbound,
		Webhook: svc.webhook,
		Logger:  log, Config: cfg, Notifier: pool, Users: users, EngineStats: pool.Stats})
	srv := &http.Server{Handler: h.Echo(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on ADDR %s: %w", cfg.Addr, err)
	}
	log.InfoContext(ctx, "serving", slog.String("addr", ln.Addr().String()), slog.String("instance", cfg.InstanceName))
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func cmdMigrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	db, err := pg.Open(ctx, cfg.DatabaseURL, 2)
	if err != nil {
		return err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	n, err := pg.Migrate(ctx, db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "applied %d migration(s); the database is up to date\n", n)
	return nil
}

func cmdUserAdd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "user name")
	role := fs.String("role", "", "admin, manager, analyst or integration")
	password := fs.String("password", "", "password (at least 8 characters)")
	token := fs.String("token", "", "bearer token for an integration account (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc, closeDB, err := toolServices(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	u, err := svc.accounts.CreateUser(ctx, models.Actor{Name: "cli"}, account.NewUserOpts{Name: *name,
		Role: models.Role(strings.ToLower(*role)), Password: *password, Token: *token})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "created user %s (%s)\n", u.Name, u.Role)
	return nil
}
