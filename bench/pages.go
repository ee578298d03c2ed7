package main

import (
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
	const transactions, users = 1000000, 50
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
	return pagebench.Section(e.ctx, getenv, users, 10*time.Second, e.out)
}
