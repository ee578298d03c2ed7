package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"path/filepath"
	"time"

	"unifi/internal/config"
	"unifi/internal/pair"
	"unifi/internal/pgcluster"
	"unifi/models"
	"unifi/models/pg"
)

// cmdPair is `make pair`: two instances of the product, each with its own
// database, engine and server, their demo integrations bonded to each other.
// Create or edit a ticket on one and watch it arrive on the other.
func cmdPair(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pair", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", ".data-pair", "folder for the private PostgreSQL cluster and generated keys")
	addrA := fs.String("a", "127.0.0.1:8080", "address of instance A")
	addrB := fs.String("b", "127.0.0.1:8090", "address of instance B")
	if err := fs.Parse(args); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Starting a private PostgreSQL cluster in %s ...\n", filepath.Join(*dataDir, "pg"))
	cl, err := pgcluster.Start(ctx, pgcluster.Opts{Dir: filepath.Join(*dataDir, "pg"), Database: "pair_a"})
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "Stopping PostgreSQL ...")
		if err := cl.Stop(context.WithoutCancel(ctx)); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}()
	urlB, err := createDatabase(ctx, cl.URL, "pair_b")
	if err != nil {
		return err
	}
	env := map[string]string{"DATA_DIR": *dataDir, "DATABASE_URL": cl.URL}
	cfg, err := config.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return getenv(k)
	})
	if err != nil {
		return err
	}
	log := newLogger(cfg, stdout)
	lnA, err := pair.Listen(*addrA)
	if err != nil {
		return err
	}
	lnB, err := pair.Listen(*addrB)
	if err != nil {
		_ = lnA.Close()
		return err
	}
	// Different host names keep the two instances' session cookies apart in one browser.
	baseA, baseB := "http://"+lnA.Addr().String(), "http://"+localhostURL(lnB.Addr().String())
	opts := func(name, dbURL, peer string) pair.Opts {
		return pair.Opts{Name: name, DatabaseURL: dbURL, PeerURL: peer, Config: cfg, Logger: log,
			Workers: cfg.Workers, PollInterval: cfg.PollInterval}
	}
	oa, ob := opts("A", cl.URL, baseB), opts("B", urlB, baseA)
	oa.Listener, ob.Listener = lnA, lnB
	a, err := pair.Start(ctx, oa)
	if err != nil {
		_ = lnA.Close()
		_ = lnB.Close()
		return err
	}
	b, err := pair.Start(ctx, ob)
	if err != nil {
		_ = lnB.Close()
		return errors.Join(err, a.Close(context.WithoutCancel(ctx)))
	}
	fmt.Fprintf(stdout, "\nTwo instances bonded to each other (integration %q on both):\n  A  %s\n  B  %s\n\nLog in to either as:\n",
		models.DemoIntegrationName, baseA, baseB)
	for _, l := range models.DemoLogins {
		fmt.Fprintf(stdout, "  %-8s  password %-16s (%s)\n", l.Name, l.Password, l.Role.Title())
	}
	fmt.Fprintln(stdout, "\nCreate a ticket on A and open B's tickets; pause A's integration and watch B keep working.")
	fmt.Fprintln(stdout, "Press Ctrl-C to stop both instances and the database.")
	<-ctx.Done()
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	return errors.Join(a.Close(stopCtx), b.Close(stopCtx))
}

// createDatabase creates database name on the cluster of clusterURL when it is
// missing and returns its URL.
func createDatabase(ctx context.Context, clusterURL, name string) (string, error) {
	db, err := pg.Open(ctx, clusterURL, 1)
	if err != nil {
		return "", err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	var exists bool
	if err := db.WithContext(ctx).Raw("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = ?)", name).
		Scan(&exists).Error; err != nil {
		return "", fmt.Errorf("look for database %s: %w", name, err)
	}
	if !exists {
		if err := db.WithContext(ctx).Exec("CREATE DATABASE " + name).Error; err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	u, err := url.Parse(clusterURL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

// localhostURL names a 127.0.0.1 address "localhost", so a browser keeps its
// cookies apart from the other instance's.
func localhostURL(addr string) string {
	if len(addr) > 10 && addr[:10] == "127.0.0.1:" {
		return "localhost:" + addr[10:]
	}
	return addr
}
