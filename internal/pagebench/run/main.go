// Command run is `make bench-pages`: it fills a database with a million
// transactions (unifi gen) unless it already holds them, then measures the
// integration page, a filtered transactions list and a transaction page under
// 50 concurrent users, printing the figures and writing them to bench/results/.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"unifi/internal/pagebench"
	"unifi/internal/pgcluster"
	"unifi/models"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench pages:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	n := flag.Int("transactions", 1000000, "transactions in the database")
	users := flag.Int("users", 50, "concurrent users")
	d := flag.Duration("duration", 10*time.Second, "measuring time per page")
	out := flag.String("out", "bench/results", "folder for the results file")
	flag.Parse()
	env := map[string]string{}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	if os.Getenv("DATA_DIR") == "" {
		env["DATA_DIR"] = filepath.Join(os.TempDir(), "unifi-bench-data")
	}
	if os.Getenv("DATABASE_URL") == "" {
		fmt.Println("starting a private PostgreSQL cluster (DATABASE_URL is unset)")
		cl, err := pgcluster.Start(ctx, pgcluster.Opts{Fast: true, Database: "bench"})
		if err != nil {
			return err
		}
		defer func() { _ = cl.Remove(context.WithoutCancel(ctx)) }()
		env["DATABASE_URL"] = cl.URL
	}
	db, err := models.Open(ctx, getenv("DATABASE_URL"), 2)
	if err != nil {
		return err
	}
	if _, err := models.Migrate(ctx, db); err != nil {
		return err
	}
	var have int64
	if err := db.Raw("SELECT count(*) FROM transactions").Scan(&have).Error; err != nil {
		return err
	}
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
	if missing := int64(*n) - have; missing > 0 {
		fmt.Printf("generating %d transactions (unifi gen)\n", missing)
		cmd := exec.CommandContext(ctx, "go", "run", "./cmd/unifi", "gen", "--transactions", fmt.Sprint(missing))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		cmd.Env = os.Environ()
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("unifi gen: %w", err)
		}
	}
	var buf strings.Builder
	lines, err := pagebench.Section(ctx, getenv, *users, *d, os.Stdout)
	if err != nil {
		return err
	}
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(&buf, "# page benchmark %s, %d CPUs, load average at the end: %s\n", time.Now().UTC().Format(time.RFC3339),
		runtime.NumCPU(), strings.TrimSpace(string(load)))
	for _, l := range lines {
		fmt.Fprintln(&buf, l)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	p := filepath.Join(*out, "pages-"+time.Now().UTC().Format("20060102-150405")+".txt")
	if err := os.WriteFile(p, []byte(buf.String()), 0o644); err != nil {
		return err
	}
	fmt.Println("written to", p)
	return nil
}
