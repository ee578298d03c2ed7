package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"unifi/internal/cpuacct"
	"unifi/models/pg"
)

// The river section: our engine against River (bench/river, its own
// module) on the same durable cluster, in alternating rounds, each job or
// transaction one JSON POST to the same fake remote (the child process of
// remote.go). Figures are the medians over the rounds; each ratio is ours
// over River's from the same run, so the machine's noise cancels.
//
//	delivery  ours: 30,000 transactions on 1,000 bonds (engine section);
//	          River: 50,000 jobs pre-inserted, with 50 and with 200 workers
//	drain     ours: Resume of 100,000 on 1,000 bonds until the job is done;
//	          River: 100,000 jobs with 200 workers until all are completed

const (
	riverDeliveryJobs = 50000
	riverDrainJobs    = 100000
)

// riverRounds is how many alternating rounds (BENCH_ROUNDS overrides).
func riverRounds() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_ROUNDS")); err == nil && n > 0 {
		return n
	}
	return 3
}

// riverRun is one run of the River program.
type riverRun struct {
	Jobs       int     `json:"jobs"`
	Workers    int     `json:"workers"`
	AppliedS   float64 `json:"applied_s"`
	CompletedS float64 `json:"completed_s"`
	CPUMs      float64 `json:"cpu_ms"`
	cpu        cpuPer  // per job: River's process, its backends, the remote
	duplicates string  // what the remote's check said of duplicates ("" when none)
}

func (r riverRun) rate() float64 { return float64(r.Jobs) / r.AppliedS }

func runRiver(e *env) ([]string, error) {
	bin, err := buildRiver(e.ctx)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(filepath.Dir(bin))
	var ours []engineFigures
	var river50, river200, riverDrain []riverRun
	var notes []string
	run := func(what string, f func() (string, error)) error {
		before := loadAvg()
		start := time.Now()
		summary, err := f()
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		note := fmt.Sprintf("  %s: %s (%.0f s, load average %s -> %s)", what, summary,
			time.Since(start).Seconds(), before, loadAvg())
		fmt.Fprintln(e.out, note)
		notes = append(notes, note)
		return nil
	}
	for round := 1; round <= riverRounds(); round++ {
		err := run(fmt.Sprintf("round %d ours", round), func() (string, error) {
			fe, drop, err := freshEnv(e.ctx, e.dbURL, "river_ours", e.flags)
			if err != nil {
				return "", err
			}
			defer drop()
			figs, _, err := measureEngine(fe, []string{"delivery", "drain"})
			if err != nil {
				return "", err
			}
			ours = append(ours, figs)
			return fmt.Sprintf("delivery %.0f tx/s (%.3f ms cpu), drain %.1f s (%.3f ms cpu)", figs.delivery,
				figs.deliveryCPU.total(), figs.drain.Seconds(), figs.drainCPU.total()), nil
		})
		if err != nil {
			return nil, err
		}
		for _, c := range []struct {
			jobs, workers int
			into          *[]riverRun
		}{{riverDeliveryJobs, 50, &river50}, {riverDeliveryJobs, 200, &river200}, {riverDrainJobs, 200, &riverDrain}} {
			err := run(fmt.Sprintf("round %d River %d jobs, %d workers", round, c.jobs, c.workers), func() (string, error) {
				r, err := runRiverOnce(e, bin, c.jobs, c.workers)
				if err != nil {
					return "", err
				}
				*c.into = append(*c.into, r)
				return fmt.Sprintf("applied in %.1f s (%.0f jobs/s), completed in %.1f s, %.3f ms cpu", r.AppliedS,
					r.rate(), r.CompletedS, r.cpu.total()), nil
			})
			if err != nil {
				return nil, err
			}
		}
	}
	ourDelivery := median(ours, func(f engineFigures) float64 { return f.delivery })
	ourDrain := median(ours, func(f engineFigures) float64 { return f.drain.Seconds() })
	r50 := median(river50, riverRun.rate)
	r200 := median(river200, riverRun.rate)
	rDrain := median(riverDrain, func(r riverRun) float64 { return r.CompletedS })
	cpu := func(name string, per cpuPer) string {
		return fmt.Sprintf("%s cpu per job: %.3f ms in all (%.3f ms process, %.3f ms postgres, %.3f ms remote), wal %.0f bytes",
			name, per.total(), per.engine, per.postgres, per.remote, per.wal)
	}
	lines := []string{
		fmt.Sprintf("rounds: %d, alternating (ours, River 50, River 200, River drain), medians", riverRounds()),
		fmt.Sprintf("ours delivery: %.0f tx/s", ourDelivery),
		fmt.Sprintf("River delivery, 50 workers: %.0f jobs/s", r50),
		fmt.Sprintf("River delivery, 200 workers: %.0f jobs/s", r200),
		fmt.Sprintf("delivery ratio vs River 50: %.2fx", ourDelivery/r50),
		fmt.Sprintf("delivery ratio vs River 200: %.2fx (target >= 1.0)", ourDelivery/r200),
		fmt.Sprintf("ours drain, 100,000 on 1,000 bonds: %.1f s", ourDrain),
		fmt.Sprintf("River drain, 100,000 jobs, 200 workers: %.1f s", rDrain),
		fmt.Sprintf("drain ratio (River's time / ours): %.2fx (target >= 1.0)", rDrain/ourDrain),
		cpu("ours delivery", medianCPU(ours, func(f engineFigures) cpuPer { return f.deliveryCPU })),
		cpu("River 200 delivery", medianCPU(river200, func(r riverRun) cpuPer { return r.cpu })),
		cpu("ours drain", medianCPU(ours, func(f engineFigures) cpuPer { return f.drainCPU })),
		cpu("River drain", medianCPU(riverDrain, func(r riverRun) cpuPer { return r.cpu })),
	}
	for _, r := range append(append(river50, river200...), riverDrain...) {
		if r.duplicates != "" {
			lines = append(lines, "River remote check: "+r.duplicates)
		}
	}
	return append(lines, notes...), nil
}

// buildRiver builds bench/river (its own module) into a temporary folder.
func buildRiver(ctx context.Context) (string, error) {
	dir, err := os.MkdirTemp("", "riverbench")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "river")
	cmd := exec.CommandContext(ctx, "go", "-C", riverModuleDir(), "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building bench/river: %w\n%s", err, out)
	}
	return bin, nil
}

// riverModuleDir is bench/river beside this package's sources (the bench is
// run from the module root: `go run ./bench`).
func riverModuleDir() string {
	if wd, err := os.Getwd(); err == nil {
		if _, err := os.Stat(filepath.Join(wd, "bench", "river", "go.mod")); err == nil {
			return filepath.Join(wd, "bench", "river")
		}
	}
	return filepath.Join("bench", "river")
}

// runRiverOnce runs the River program on a fresh database against a fresh
// remote child, reading the CPU of River's database backends and of the
// remote around the drain alone (the program waits for our go-ahead after
// inserting, and for stdin to close before it disconnects).
func runRiverOnce(e *env, bin string, jobs, workers int) (riverRun, error) {
	var r riverRun
	dbURL, drop, err := freshDB(e.ctx, e.dbURL, "river_river")
	if err != nil {
		return r, err
	}
	defer drop()
	db, err := pg.Open(e.ctx, dbURL, 2)
	if err != nil {
		return r, err
	}
	defer closeDB(db)
	remote, err := startChildRemote(e.ctx)
	if err != nil {
		return r, err
	}
	defer remote.close()
	cmd := exec.CommandContext(e.ctx, bin, "-db", dbURL, "-remote", remote.url, "-jobs", strconv.Itoa(jobs),
		"-workers", strconv.Itoa(workers))
	cmd.Stderr = e.out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return r, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return r, err
	}
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || strings.TrimSpace(line) != "ready" {
		return r, fmt.Errorf("river program: %q, %v", line, err)
	}
	db0, remote0, wal0 := cpuacct.Backends(e.ctx, db), cpuacct.Process(remote.cmd.Process.Pid), walLSN(e.ctx, db)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		return r, err
	}
	line, err := out.ReadString('\n')
	if err != nil {
		return r, fmt.Errorf("river program ended without figures: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		return r, fmt.Errorf("river program: %q: %w", line, err)
	}
	dbCPU, remoteCPU := cpuacct.Backends(e.ctx, db).Since(db0), cpuacct.Process(remote.cmd.Process.Pid)-remote0
	n := float64(r.Jobs)
	r.cpu = cpuPer{engine: r.CPUMs / n, postgres: ms(dbCPU) / n, remote: ms(remoteCPU) / n, wal: walSince(e.ctx, db, wal0) / n}
	if r.Jobs != jobs {
		return r, errors.New("river program drained a different number of jobs")
	}
	// River has no per-key order, so only duplicates are checked.
	if d := remote.duplicates(); d != "" {
		r.duplicates = d
	}
	return r, nil
}

func median[T any](xs []T, f func(T) float64) float64 {
	v := make([]float64, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	sort.Float64s(v)
	if len(v) == 0 {
		return 0
	}
	return v[len(v)/2]
}

// medianCPU is the CPU split of the run with the median total.
func medianCPU[T any](xs []T, f func(T) cpuPer) cpuPer {
	v := make([]cpuPer, len(xs))
	for i, x := range xs {
		v[i] = f(x)
	}
	sort.Slice(v, func(i, j int) bool { return v[i].total() < v[j].total() })
	if len(v) == 0 {
		return cpuPer{}
	}
	return v[len(v)/2]
}
