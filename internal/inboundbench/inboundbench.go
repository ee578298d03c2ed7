// Package inboundbench measures the inbound API (`make bench`, section
// "inbound"): accepted inbound messages per second through the real Echo app
// over real HTTP on a real database, with the duplicate check on.
package inboundbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/internal/cpuacct"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/query"
	"unifi/models/store"
)

// Opts sizes a run.
type Opts struct {
	Bonds       int     // remote tickets created first (one Create each)
	Updates     int     // updates sent after, spread over the bonds
	Clients     int     // concurrent HTTP clients
	DuplicateOf float64 // share of updates sent a second time (must be refused)
	Progress    io.Writer
}

// Result is what a run measured.
type Result struct {
	CreatesPerSec   float64
	UpdatesPerSec   float64 // accepted update messages per second (the headline)
	P50, P99        time.Duration
	Accepted        int64
	DuplicatesSent  int64
	DuplicatesFound int64 // refused with "Message has already been processed"
	Transactions    int64 // inbound transactions stored
	// CPU per accepted update: this process (app and bench client) and the
	// database's backends, measured whatever else the machine is doing; 0
	// when /proc cannot be read.
	AppCPU, DBCPU time.Duration
}

// Lines formats the result for bench/results.
func (r Result) Lines() []string {
	return []string{
		fmt.Sprintf("inbound accepted: %.0f msg/s", r.UpdatesPerSec),
		fmt.Sprintf("inbound creates: %.0f msg/s", r.CreatesPerSec),
		fmt.Sprintf("inbound latency p50: %.1f ms", float64(r.P50.Microseconds())/1000),
		fmt.Sprintf("inbound latency p99: %.1f ms", float64(r.P99.Microseconds())/1000),
		fmt.Sprintf("inbound duplicates refused: %d of %d", r.DuplicatesFound, r.DuplicatesSent),
		fmt.Sprintf("inbound cpu per message: %.2f ms app+client, %.2f ms postgres", ms(r.AppCPU), ms(r.DBCPU)),
		fmt.Sprintf("inbound cpu-bound rate on %d cores: %.0f msg/s", runtime.NumCPU(), r.CPUBound()),
	}
}

// CPUBound is the rate the measured CPU per message allows on this machine's
// cores when nothing else runs.
func (r Result) CPUBound() float64 {
	per := r.AppCPU + r.DBCPU
	if per <= 0 {
		return 0
	}
	return float64(runtime.NumCPU()) / per.Seconds()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Run seeds the demo on db (a fresh migrated database), serves the real app
// and sends Bonds creates, then Updates updates with DuplicateOf of them sent
// twice. It fails when a message is lost, applied twice or answered 5xx.
func Run(ctx context.Context, db *gorm.DB, o Opts) (Result, error) {
	var res Result
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	accounts := account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost})
	st := store.NewStore(db, accounts, nil)
	if _, err := st.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:9"}); err != nil {
		return res, err
	}
	cfg := config.Config{InboundMaxBytes: 1 << 20, SessionKey: bytes.Repeat([]byte{7}, 32), BaseURL: "http://localhost"}
	h := handlers.New(handlers.Opts{Store: st, Query: query.NewReader(db, nil), Accounts: accounts,
		Inbound: inbound.NewService(db, accounts, nil), Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(h.Echo())
	defer srv.Close()
	url := srv.URL + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: o.Clients * 2,
		MaxIdleConnsPerHost: o.Clients * 2}}
	defer client.CloseIdleConnections()

	t0 := time.Now().Add(-time.Hour)
	refs := make([]string, o.Bonds)
	creates := make(chan int)
	var lat latencies
	start := time.Now()
	err := fanOut(ctx, o.Clients, func(ctx context.Context) error {
		for i := range creates {
			env := envelope("CreateIncident", fmt.Sprintf("C-%d", i), fmt.Sprintf("EXT%07d", i), "", t0,
				map[string]any{"short_description": fmt.Sprintf("bench ticket %d", i), "priority": "High"})
			a, _, err := post(ctx, client, url, env)
			if err != nil {
				return err
			}
			if a.status != http.StatusOK {
				return fmt.Errorf("create %d answered %d: %s", i, a.status, a.body)
			}
			refs[i] = a.SourceReference
		}
		return nil
	}, func() {
		for i := range o.Bonds {
			creates <- i
		}
		close(creates)
	})
	if err != nil {
		return res, err
	}
	res.CreatesPerSec = float64(o.Bonds) / time.Since(start).Seconds()
	fmt.Fprintf(o.Progress, "inbound: %d creates at %.0f msg/s\n", o.Bonds, res.CreatesPerSec)

	// Updates: each client owns a slice of the bonds, so one bond's updates go
	// out in order; some are sent twice right away (a sender's retry).
	type job struct {
		bond, n int
		dup     bool
	}
	jobs := make(chan job, o.Clients*4)
	var accepted, dupSent, dupFound atomic.Int64
	perBond := o.Updates / o.Bonds
	appBefore, dbBefore := cpuacct.Self(), cpuacct.Backends(ctx, db)
	start = time.Now()
	err = fanOut(ctx, o.Clients, func(ctx context.Context) error {
		for j := range jobs {
			env := envelope("UpdateIncident", fmt.Sprintf("U-%d-%d", j.bond, j.n), fmt.Sprintf("EXT%07d", j.bond),
				refs[j.bond], t0.Add(time.Duration(j.n+1)*time.Millisecond),
				map[string]any{"short_description": fmt.Sprintf("bench ticket %d v%d", j.bond, j.n),
					"priority": "Moderate", "state": "in_progress", "comments": "working on it"})
			a, d, err := post(ctx, client, url, env)
			if err != nil {
				return err
			}
			if a.status != http.StatusOK {
				return fmt.Errorf("update answered %d: %s", a.status, a.body)
			}
			lat.add(d)
			accepted.Add(1)
			if j.dup {
				dupSent.Add(1)
				a, _, err := post(ctx, client, url, env)
				if err != nil {
					return err
				}
				if a.status != http.StatusConflict || a.Error != inbound.TextDuplicate {
					return fmt.Errorf("a duplicate answered %d: %s", a.status, a.body)
				}
				dupFound.Add(1)
			}
		}
		return nil
	}, func() {
		every := 0
		if o.DuplicateOf > 0 {
			every = int(1 / o.DuplicateOf)
		}
		k := 0
		for n := range perBond {
			for b := range o.Bonds {
				k++
				jobs <- job{bond: b, n: n, dup: every > 0 && k%every == 0}
			}
		}
		close(jobs)
	})
	if err != nil {
		return res, err
	}
	elapsed := time.Since(start)
	res.Accepted, res.DuplicatesSent, res.DuplicatesFound = accepted.Load(), dupSent.Load(), dupFound.Load()
	if after := cpuacct.Backends(ctx, db); len(after) > 0 && res.Accepted > 0 {
		n := time.Duration(res.Accepted)
		res.AppCPU = (cpuacct.Self() - appBefore) / n
		res.DBCPU = after.Since(dbBefore) / n
	}
	res.UpdatesPerSec = float64(res.Accepted) / elapsed.Seconds()
	res.P50, res.P99 = lat.quantile(0.50), lat.quantile(0.99)
	if err := db.WithContext(ctx).Model(&models.Transaction{}).Where("direction = ?", models.Inbound).
		Count(&res.Transactions).Error; err != nil {
		return res, err
	}
	if want := int64(o.Bonds) + res.Accepted; res.Transactions != want {
		return res, fmt.Errorf("%d inbound transactions stored, want %d (one per accepted message)", res.Transactions, want)
	}
	fmt.Fprintf(o.Progress, "inbound: %d updates at %.0f msg/s (p50 %v, p99 %v), %d duplicates refused\n",
		res.Accepted, res.UpdatesPerSec, res.P50, res.P99, res.DuplicatesFound)
	return res, nil
}

// fanOut runs n workers and a feeder; the first error cancels the rest.
func fanOut(ctx context.Context, n int, work func(ctx context.Context) error, feed func()) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := work(ctx); err != nil {
				cancel(err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { feed(); close(done) }()
	<-done
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

func envelope(name, sourceID, sourceRef, targetRef string, ts time.Time, data map[string]any) models.Envelope {
	return models.Envelope{Message: models.EnvelopeHeader{Name: name, TimeStamp: ts, SourceReference: sourceRef,
		TargetReference: targetRef, SourceID: sourceID}, Data: data}
}

type answer struct {
	status          int
	body            string
	Error           string `json:"error"`
	SourceReference string
}

func post(ctx context.Context, client *http.Client, url string, env models.Envelope) (answer, time.Duration, error) {
	body, err := json.Marshal(env)
	if err != nil {
		return answer{}, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{}, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
	start := time.Now()
	res, err := client.Do(req)
	if err != nil {
		return answer{}, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	d := time.Since(start)
	if err != nil {
		return answer{}, 0, err
	}
	a := answer{status: res.StatusCode, body: string(b)}
	var got struct {
		Error   string `json:"error"`
		Message struct {
			SourceReference string `json:"source_reference"`
		} `json:"message"`
	}
	_ = json.Unmarshal(b, &got)
	a.Error, a.SourceReference = got.Error, got.Message.SourceReference
	return a, d, nil
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) quantile(q float64) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return 0
	}
	sort.Slice(l.d, func(i, j int) bool { return l.d[i] < l.d[j] })
	return l.d[min(len(l.d)-1, int(q*float64(len(l.d))))]
}
