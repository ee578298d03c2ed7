package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"unifi/internal/config"
	"unifi/internal/pagebench"
)

// The engine section with -history N: does a large history slow the engine
// or the pages? It measures delivery on an empty database, then fills a
// second one with N finished transactions (unifi gen: tickets, bonds,
// transactions with their Stage, HTTP Requests, logs, state history and
// counts, written with INSERT … SELECT over generate_series and vacuumed as
// autovacuum would have), measures the pages on it (50 users, as the pages
// section) and delivery on it, then delivery on an empty database again, so
// the ratio is taken against the mean of two empty runs around it.
//
//	go run ./bench -only engine -history 10000000
//
// Targets (issue 15): delivery with the history >= 0.9x delivery on empty
// tables; the pages' p95 < 50 ms at 50 concurrent users.

func runHistory(e *env, rows int) ([]string, error) {
	var notes []string
	note := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		fmt.Fprintln(e.out, "  history: "+line)
		notes = append(notes, "  "+line)
	}
	deliveryOn := func(what string, fe *env) (engineFigures, error) {
		before := loadAvg()
		figs, _, err := measureEngine(fe, []string{"delivery"})
		if err != nil {
			return figs, fmt.Errorf("delivery %s: %w", what, err)
		}
		note("delivery %s: %.0f tx/s, %s (load average %s -> %s)", what, figs.delivery,
			figs.deliveryCPU.line("delivery"), before, loadAvg())
		return figs, nil
	}
	emptyRun := func(what string) (engineFigures, error) {
		fe, drop, err := freshEnv(e.ctx, e.base, "history_empty", e.flags)
		if err != nil {
			return engineFigures{}, err
		}
		defer drop()
		return deliveryOn(what, fe)
	}
	empty1, err := emptyRun("on empty tables (before)")
	if err != nil {
		return nil, err
	}

	full, drop, err := freshEnv(e.ctx, e.base, "history_full", e.flags)
	if err != nil {
		return nil, err
	}
	defer drop()
	dataDir := filepath.Join(os.TempDir(), "unifi-bench-history-data")
	start := time.Now()
	fmt.Fprintf(e.out, "generating %d finished transactions (unifi gen) ...\n", rows)
	gen := exec.CommandContext(e.ctx, "go", "run", "./cmd/unifi", "gen", "--transactions", fmt.Sprint(rows))
	gen.Stdout, gen.Stderr = e.out, e.out
	gen.Env = append(os.Environ(), "DATABASE_URL="+full.dbURL, "DATA_DIR="+dataDir)
	if err := gen.Run(); err != nil {
		return nil, fmt.Errorf("unifi gen: %w", err)
	}
	var size string
	if err := full.db.WithContext(e.ctx).Raw("SELECT pg_size_pretty(pg_database_size(current_database()))").
		Scan(&size).Error; err != nil {
		return nil, err
	}
	note("filled with %d transactions in %.0f s (unifi gen, then VACUUM ANALYZE); database %s", rows,
		time.Since(start).Seconds(), size)

	// The pages first, on the database as the generator left it.
	getenv := func(k string) string {
		switch k {
		case "DATABASE_URL":
			return full.dbURL
		case "DATA_DIR":
			return dataDir
		}
		return os.Getenv(k)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	full.secretKey = cfg.SecretKey
	pagesBefore := loadAvg()
	pages, err := pagebench.Section(e.ctx, getenv, pageOpts(e.flags), e.out)
	if err != nil {
		return nil, fmt.Errorf("pages on %d transactions: %w", rows, err)
	}
	note("pages measured with load average %s -> %s", pagesBefore, loadAvg())

	withHistory, err := deliveryOn(fmt.Sprintf("with %d transactions in the tables", rows), full)
	if err != nil {
		return nil, err
	}
	empty2, err := emptyRun("on empty tables (after)")
	if err != nil {
		return nil, err
	}
	emptyMean := (empty1.delivery + empty2.delivery) / 2
	lines := []string{
		fmt.Sprintf("history: %d transactions (unifi gen)", rows),
		fmt.Sprintf("delivery on empty tables: %.0f and %.0f tx/s (before and after)", empty1.delivery, empty2.delivery),
		fmt.Sprintf("delivery with the history: %.0f tx/s", withHistory.delivery),
		fmt.Sprintf("delivery ratio, history / empty: %.2fx (target >= 0.9)", withHistory.delivery/emptyMean),
		fmt.Sprintf("cpu per transaction ratio, history / empty: %.2fx (the steadier figure on a busy machine)",
			withHistory.deliveryCPU.total()/((empty1.deliveryCPU.total()+empty2.deliveryCPU.total())/2)),
		empty1.deliveryCPU.line("empty (before)"),
		withHistory.deliveryCPU.line("with the history"),
		empty2.deliveryCPU.line("empty (after)"),
	}
	for _, p := range pages {
		lines = append(lines, "pages with the history, "+p)
	}
	return append(lines, notes...), nil
}
