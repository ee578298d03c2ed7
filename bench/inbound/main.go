// Command inbound is the inbound section of `make bench`: accepted inbound
// messages per second through the real app over real HTTP, with the duplicate
// check on (internal/inboundbench). It starts a private PostgreSQL cluster
// (durability off) unless DATABASE_URL is set, prints its figures and writes
// them to bench/results/inbound.txt.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"unifi/internal/inboundbench"
	"unifi/internal/pgcluster"
	"unifi/models"
)

func main() {
	o := inboundbench.Opts{Progress: os.Stderr}
	flag.IntVar(&o.Bonds, "bonds", 1000, "remote tickets created first")
	flag.IntVar(&o.Updates, "updates", 30000, "update messages sent after")
	flag.IntVar(&o.Clients, "clients", 16, "concurrent HTTP clients")
	flag.Float64Var(&o.DuplicateOf, "duplicates", 0.05, "share of updates sent twice (each must be refused)")
	results := flag.String("results", "bench/results", "folder for the result file")
	flag.Parse()
	if err := run(context.Background(), o, *results); err != nil {
		fmt.Fprintln(os.Stderr, "bench inbound:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o inboundbench.Opts, results string) error {
	base := os.Getenv("DATABASE_URL")
	if base == "" {
		fmt.Fprintln(os.Stderr, "starting a private PostgreSQL cluster (durability off) ...")
		cl, err := pgcluster.Start(ctx, pgcluster.Opts{Fast: true, Database: "postgres"})
		if err != nil {
			return err
		}
		defer func() { _ = cl.Remove(context.Background()) }()
		base = cl.URL
	}
	admin, err := models.Open(ctx, base, 2)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("bench_inbound_%d", os.Getpid())
	if err := admin.Exec("CREATE DATABASE " + name).Error; err != nil {
		return err
	}
	defer func() {
		admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	u.Path = "/" + name
	db, err := models.Open(ctx, u.String(), 40)
	if err != nil {
		return err
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if _, err := models.Migrate(ctx, db); err != nil {
		return err
	}
	load := loadAverage()
	res, err := inboundbench.Run(ctx, db, o)
	if err != nil {
		return err
	}
	lines := res.Lines()
	body := strings.Join(lines, "\n") + "\n"
	fmt.Print(body)
	header := fmt.Sprintf("# inbound, %s, %d CPUs, %s/%s, Go %s\n# %d bonds, %d updates, %d clients, %.0f%% duplicates; load average before the run: %s\n",
		time.Now().UTC().Format(time.RFC3339), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(),
		o.Bonds, o.Updates, o.Clients, 100*o.DuplicateOf, load)
	if err := os.MkdirAll(results, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(results, "inbound.txt"), []byte(header+body), 0o644)
}

// loadAverage reads the one-minute load average (the machine may be shared).
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "unknown"
	}
	return f[0]
}
