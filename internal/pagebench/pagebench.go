// Package pagebench measures how fast the admin pages answer under many
// concurrent users: p50/p95/p99 of the integration page, a filtered
// transactions list and a transaction page. `make bench` runs it (bench/pages.go)
// against a database filled by `unifi gen`.
package pagebench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Opts configures Run.
type Opts struct {
	BaseURL  string        // a running server
	User     string        // login name (an admin)
	Password string        // its password
	Users    int           // concurrent users
	Duration time.Duration // per page
	Pages    []Page
	// Meter, when set, is read right before and right after each page's
	// timed run; the difference becomes the result's cost per request.
	Meter func(ctx context.Context) (Usage, error)
	// Profile, when set, is called as each page's timed run starts; the
	// function it returns is called when the run ends (a CPU profile).
	Profile func(page string) (stop func())
}

// Usage is a cumulative reading of what serving the pages costs.
type Usage struct {
	ProcessCPU time.Duration // this process: the in-process server and the bench's own client
	DBCPU      time.Duration // the PostgreSQL backends connected to the database (-1: not readable)
	Statements int64         // SQL statements the app sent
	RoundTrips int64         // trips to the database: a statement on its own, or a batch of them
}

// Page is one page to measure; Path is called per request so ids can vary.
type Page struct {
	Name string
	Path func(r *rand.Rand) string
}

// Result is one page's figures.
type Result struct {
	Name          string
	Requests      int
	Errors        int
	P50, P95, P99 time.Duration
	RPS           float64
	// Cost is Usage per request over the timed run (when Opts.Meter is set).
	Cost *Cost
}

// Cost is what one request cost on average.
type Cost struct {
	ProcessCPU time.Duration // Go process (server and bench client)
	DBCPU      time.Duration // PostgreSQL backends; negative when not readable
	Statements float64
	RoundTrips float64
}

// String is the line printed and written to bench/results.
func (r Result) String() string {
	s := fmt.Sprintf("page %s: p95 %.1f ms (p50 %.1f ms, p99 %.1f ms, %d requests, %.0f req/s, %d errors)",
		r.Name, ms(r.P95), ms(r.P50), ms(r.P99), r.Requests, r.RPS, r.Errors)
	if c := r.Cost; c != nil {
		db := "PostgreSQL CPU not readable"
		if c.DBCPU >= 0 {
			db = fmt.Sprintf("PostgreSQL %.2f ms", ms(c.DBCPU))
		}
		s += fmt.Sprintf("; per request: CPU Go process %.2f ms (server + bench client), %s; %.1f statements in %.1f round trips",
			ms(c.ProcessCPU), db, c.Statements, c.RoundTrips)
	}
	return s
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)

// Login returns a client holding an admin session on the server.
func Login(ctx context.Context, base, user, password string) (*http.Client, error) {
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/login", nil)
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	m := csrfRe.FindSubmatch(body)
	if m == nil {
		return nil, fmt.Errorf("no CSRF token on the login page")
	}
	form := url.Values{"name": {user}, "password": {password}, "_csrf": {string(m[1])}}
	req, _ = http.NewRequestWithContext(ctx, http.MethodPost, base+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = c.Do(req)
	if err != nil {
		return nil, err
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		return nil, fmt.Errorf("log in as %s: status %d", user, res.StatusCode)
	}
	return c, nil
}

// Run measures each page in turn with o.Users concurrent users for o.Duration.
func Run(ctx context.Context, o Opts) ([]Result, error) {
	client, err := Login(ctx, o.BaseURL, o.User, o.Password)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, p := range o.Pages {
		// Warm up: one request per user, not counted.
		if _, err := measure(ctx, client, o.BaseURL, p, o.Users, 0, 1); err != nil {
			return nil, err
		}
		var before Usage
		if o.Meter != nil {
			if before, err = o.Meter(ctx); err != nil {
				return nil, err
			}
		}
		stop := func() {}
		if o.Profile != nil {
			stop = o.Profile(p.Name)
		}
		r, err := measure(ctx, client, o.BaseURL, p, o.Users, o.Duration, 0)
		stop()
		if err != nil {
			return nil, err
		}
		if o.Meter != nil {
			after, err := o.Meter(ctx)
			if err != nil {
				return nil, err
			}
			n := time.Duration(r.Requests + r.Errors)
			r.Cost = &Cost{ProcessCPU: (after.ProcessCPU - before.ProcessCPU) / n, DBCPU: -1,
				Statements: float64(after.Statements-before.Statements) / float64(n),
				RoundTrips: float64(after.RoundTrips-before.RoundTrips) / float64(n)}
			if before.DBCPU >= 0 && after.DBCPU >= 0 {
				r.Cost.DBCPU = (after.DBCPU - before.DBCPU) / n
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func measure(ctx context.Context, c *http.Client, base string, p Page, users int, d time.Duration, perUser int) (Result, error) {
	var mu sync.Mutex
	var lat []time.Duration
	var errs int
	var firstErr error
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	for u := range users {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(u), uint64(start.UnixNano())))
			for i := 0; ctx.Err() == nil; i++ {
				if perUser > 0 && i >= perUser || perUser == 0 && time.Now().After(deadline) {
					return
				}
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+p.Path(rng), nil)
				res, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = fmt.Errorf("%s: status %d", req.URL.Path, res.StatusCode)
					}
				}
				el := time.Since(t0)
				mu.Lock()
				if err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, el)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	total := time.Since(start)
	if len(lat) == 0 {
		return Result{}, fmt.Errorf("page %s: no successful request: %v", p.Name, firstErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(f float64) time.Duration { return lat[min(len(lat)-1, int(f*float64(len(lat))))] }
	return Result{Name: p.Name, Requests: len(lat), Errors: errs, P50: q(.50), P95: q(.95), P99: q(.99),
		RPS: float64(len(lat)) / total.Seconds()}, nil
}
