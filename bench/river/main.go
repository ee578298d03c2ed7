// Command river is the River baseline of `make bench` (the "river" section):
// it inserts N jobs into a fresh database, then drains them with W workers,
// each job one POST of an envelope like the engine's to the same fake remote
// the engine bench posts to. It is its own module so that River is not a
// dependency of the product.
//
// The bench drives it over stdin and stdout, so that it can read the
// database backends' CPU around the drain alone: after inserting, this
// prints "ready" and waits for a line on stdin; then it drains, prints one
// JSON line of figures and waits for stdin to close before it disconnects.
//
//	applied_s    time from starting the client until the remote answered every job's POST
//	completed_s  time until River had recorded every job completed (its completer batches)
//	cpu_ms       this process's CPU (user + system) over the drain
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// DeliverArgs is one job: the message the engine would send for a
// transaction (a reference out of 1,000, a unique message id, four fields).
type DeliverArgs struct {
	Reference string `json:"ref"`
	MessageID string `json:"msg"`
	Seq       int    `json:"seq"`
}

func (DeliverArgs) Kind() string { return "deliver" }

// envelope is the engine's wire shape (models.Envelope in the product),
// written here so this module does not import the product.
type envelope struct {
	Message struct {
		Name            string    `json:"name"`
		TimeStamp       time.Time `json:"time_stamp"`
		SourceReference string    `json:"source_reference"`
		SourceID        string    `json:"source_id"`
	} `json:"message"`
	Data map[string]any `json:"data"`
}

type deliverWorker struct {
	river.WorkerDefaults[DeliverArgs]
	url     string
	client  *http.Client
	applied *atomic.Int64
}

func (w *deliverWorker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	var env envelope
	env.Message.Name = "UpdateIncident"
	env.Message.TimeStamp = time.Now().UTC()
	env.Message.SourceReference = job.Args.Reference
	env.Message.SourceID = job.Args.MessageID
	env.Data = map[string]any{"short_description": "bench", "state": "In Progress", "priority": "3",
		"comments": fmt.Sprintf("update %d", job.Args.Seq)}
	body, err := json.Marshal(env)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer bench-token")
	resp, err := w.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("remote answered %d", resp.StatusCode)
	}
	w.applied.Add(1)
	return nil
}

type result struct {
	Jobs       int     `json:"jobs"`
	Workers    int     `json:"workers"`
	InsertS    float64 `json:"insert_s"`
	AppliedS   float64 `json:"applied_s"`
	CompletedS float64 `json:"completed_s"`
	CPUMs      float64 `json:"cpu_ms"`
}

func main() {
	dbURL := flag.String("db", "", "database URL (a fresh database)")
	remote := flag.String("remote", "", "URL each job POSTs to")
	jobs := flag.Int("jobs", 50000, "jobs to insert and drain")
	workers := flag.Int("workers", 200, "River MaxWorkers")
	flag.Parse()
	if err := run(context.Background(), *dbURL, *remote, *jobs, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "river:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dbURL, remote string, jobs, workers int) error {
	if dbURL == "" || remote == "" {
		return errors.New("-db and -remote are required")
	}
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return err
	}
	cfg.MaxConns = 40 // the engine bench's pool size
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	driver := riverpgxv5.New(pool)
	migrator, err := rivermigrate.New(driver, nil)
	if err != nil {
		return err
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var applied atomic.Int64
	ws := river.NewWorkers()
	// One keep-alive connection per worker, as the engine's sender keeps.
	transport := &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: 0,
		DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext}
	river.AddWorker(ws, &deliverWorker{url: remote + "/river", applied: &applied,
		client: &http.Client{Timeout: 10 * time.Second, Transport: transport}})
	client, err := river.NewClient(driver, &river.Config{
		// River waits FetchCooldown (100 ms by default) between fetches of
		// jobs, so with the default it drains at most MaxWorkers jobs per
		// 100 ms: 496-498 jobs/s with 50 workers and 1,963-1,967 with 200 in
		// every run before 2026-12-07 06:40 UTC, whatever the machine. Its
		// minimum lets River run as fast as the machine allows, as a team
		// tuning it for throughput would.
		FetchCooldown: river.FetchCooldownMin,
		Queues:        map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workers}},
		Workers:       ws,
		Logger:        slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	// Insert first (River's own bulk insert), as the engine bench queues its
	// backlog before it starts the engine.
	start := time.Now()
	const batch = 1000
	for i := 0; i < jobs; i += batch {
		params := make([]river.InsertManyParams, 0, batch)
		for j := i; j < min(i+batch, jobs); j++ {
			params = append(params, river.InsertManyParams{Args: DeliverArgs{
				Reference: fmt.Sprintf("RIV%04d", j%1000), MessageID: fmt.Sprintf("MSG%07d", j+1), Seq: j / 1000}})
		}
		if _, err := client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
	}
	res := &result{Jobs: jobs, Workers: workers, InsertS: time.Since(start).Seconds()}
	if _, err := pool.Exec(ctx, "VACUUM (ANALYZE) river_job"); err != nil {
		return err
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fmt.Errorf("waiting for the go-ahead: %w", err)
	}
	cpu0 := cpuTime()
	start = time.Now()
	if err := client.Start(ctx); err != nil {
		return err
	}
	deadline := start.Add(10 * time.Minute)
	for applied.Load() < int64(jobs) {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d applied after 10 minutes", applied.Load(), jobs)
		}
		time.Sleep(2 * time.Millisecond)
	}
	res.AppliedS = time.Since(start).Seconds()
	for {
		var done int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM river_job WHERE state = 'completed'").Scan(&done); err != nil {
			return err
		}
		if done >= jobs {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d recorded completed after 10 minutes", done, jobs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.CompletedS = time.Since(start).Seconds()
	res.CPUMs = float64((cpuTime() - cpu0).Microseconds()) / 1000
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin) // the bench reads the backends' CPU before we disconnect
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := client.Stop(stopCtx); err != nil {
		return err
	}
	return nil
}

// cpuTime is this process's user + system CPU so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
