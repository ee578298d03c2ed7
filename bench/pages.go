package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"unifi/internal/pagebench"
)

// runPages fills the section's database with a million transactions (unifi
// gen) and measures the integration page, a filtered transactions list and a
// transaction page under 50 concurrent users (target p95 ≤ 50 ms on 2 cores).
func runPages(e *env) ([]string, error) {
	const transactions = 1000000
	env := map[string]string{"DATABASE_URL": e.dbURL, "DATA_DIR": filepath.Join(os.TempDir(), "unifi-bench-data")}
	fmt.Fprintf(e.out, "generating %d transactions (unifi gen) ...\n", transactions)
	gen := exec.CommandContext(e.ctx, "go", "run", "./cmd/unifi", "gen", "--transactions", fmt.Sprint(transactions))
	gen.Stdout, gen.Stderr = e.out, e.out
	gen.Env = append(os.Environ(), "DATABASE_URL="+env["DATABASE_URL"], "DATA_DIR="+env["DATA_DIR"])
	if err := gen.Run(); err != nil {
		return nil, fmt.Errorf("unifi gen: %w", err)
	}
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}
	return pagebench.Section(e.ctx, getenv, pageOpts(e.flags), e.out)
}

// runPagesOn measures the pages against a database already filled by unifi
// gen (-pages-db), which it neither fills nor drops. DATA_DIR (the generated
// keys) must be the one gen ran with; it defaults to the bench's own.
func runPagesOn(ctx context.Context, fl flags, dbURL string) ([]string, error) {
	dataDir := cmp.Or(os.Getenv("DATA_DIR"), filepath.Join(os.TempDir(), "unifi-bench-data"))
	getenv := func(k string) string {
		switch k {
		case "DATABASE_URL":
			return dbURL
		case "DATA_DIR":
			return dataDir
		}
		return os.Getenv(k)
	}
	return pagebench.Section(ctx, getenv, pageOpts(fl), os.Stderr)
}

// pageOpts is the benchmark's shape: 50 concurrent users, 10 s per page.
func pageOpts(fl flags) pagebench.SectionOpts {
	return pagebench.SectionOpts{Users: 50, Duration: 10 * time.Second, ProfileDir: fl.profileDir}
}
