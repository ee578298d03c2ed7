// Package sim is what the simulators of real APIs (sim/jira, sim/servicenow)
// share: the frame around each API (basic authentication, the failure modes
// of internal/failmode, a token-bucket rate limit answered with 429 and
// Retry-After, the control endpoints, the listing page a person watches a
// sync on) and an in-memory record store with filtered, sorted, paged reads.
// Each simulator supplies only its API's routes and record shapes.
package sim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"unifi/internal/failmode"
)

// API is one simulator: its routes and what the frame asks of it.
type API interface {
	http.Handler
	// Listing is the records as a table, for the page at /.
	Listing() Listing
	// Records is the records as JSON, for GET /records.
	Records() any
	// Seed creates records in bulk from a JSON body (POST /seed) and returns
	// what it made (for example the first and last keys).
	Seed(body []byte) (any, error)
	// Reset forgets every record.
	Reset()
}

// Listing is a table of records.
type Listing struct {
	Title   string
	Columns []string
	Rows    [][]string // the most recently changed first
	Notes   []string   // lines under the table (e.g. webhook deliveries)
}

// Opts configures a Frame.
type Opts struct {
	Name  string            // who answers, in texts: "the Jira simulator"
	Users map[string]string // user name -> password or API token accepted by basic auth
	// Unauthorized answers a request without valid credentials, in the API's shape.
	Unauthorized func(w http.ResponseWriter)
	// ErrorBody is the body of a failure-mode answer, in the API's shape.
	ErrorBody func(status int, text string) any
	Mode      failmode.Mode // starting failure mode [ok]
	RateLimit float64       // API requests per second before 429 (0: no limit)
	Burst     int           // requests allowed at once above the rate [max(1, RateLimit)]
	// Routes are the simulator's own control endpoints, served like /control
	// (no credentials, no failure modes).
	Routes map[string]http.HandlerFunc
	// OnClose runs on Close (the simulator stops its own goroutines).
	OnClose func()
	Logger  *slog.Logger
}

// Control is what POST /control of a simulator takes: the failure mode and
// the rate limit, in one JSON object.
type Control struct {
	failmode.Control
	RateLimit *float64 `json:"rate_limit_per_s,omitempty"` // 0 turns the limit off
	Burst     *int     `json:"burst,omitempty"`
}

// Stats are the frame's counters (GET /stats).
type Stats struct {
	Requests     int64 `json:"requests"`      // API requests received
	Unauthorized int64 `json:"unauthorized"`  // refused for their credentials
	RateLimited  int64 `json:"rate_limited"`  // answered 429 by the rate limit
	FailureModes int64 `json:"failure_modes"` // answered by a failure mode
}

// Frame serves an API behind authentication, failure modes and a rate
// limit, and serves the control endpoints beside it.
type Frame struct {
	o    Opts
	api  API
	fail *failmode.Switch
	log  *slog.Logger

	mu      sync.Mutex
	limiter *rate.Limiter // nil: no limit
	limit   float64
	burst   int
	stats   Stats

	closeOnce sync.Once
}

// NewFrame returns the frame around api.
func NewFrame(api API, o Opts) (*Frame, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fail, err := failmode.New(failmode.Opts{Mode: o.Mode, Name: o.Name, ErrorBody: o.ErrorBody, Logger: o.Logger,
		Seed: uint64(time.Now().UnixNano())})
	if err != nil {
		return nil, err
	}
	f := &Frame{o: o, api: api, fail: fail, log: o.Logger}
	if err := f.setLimit(o.RateLimit, o.Burst); err != nil {
		return nil, err
	}
	return f, nil
}

// Fail is the frame's failure-mode switch.
func (f *Frame) Fail() *failmode.Switch { return f.fail }

// SetControl changes the failure mode and the rate limit.
func (f *Frame) SetControl(c Control) error {
	if c.RateLimit != nil || c.Burst != nil {
		f.mu.Lock()
		limit, burst := f.limit, f.burst
		f.mu.Unlock()
		if c.RateLimit != nil {
			limit, burst = *c.RateLimit, 0
		}
		if c.Burst != nil {
			burst = *c.Burst
		}
		if err := f.setLimit(limit, burst); err != nil {
			return err
		}
	}
	return f.fail.Set(c.Control)
}

// ControlState returns the current settings.
func (f *Frame) ControlState() Control {
	f.mu.Lock()
	defer f.mu.Unlock()
	limit, burst := f.limit, f.burst
	return Control{Control: f.fail.State(), RateLimit: &limit, Burst: &burst}
}

func (f *Frame) setLimit(limit float64, burst int) error {
	if limit < 0 || burst < 0 || math.IsNaN(limit) || math.IsInf(limit, 0) {
		return errors.New("rate_limit_per_s and burst are numbers, 0 or more")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.limit, f.burst, f.limiter = limit, burst, nil
	if limit > 0 {
		if f.burst == 0 {
			f.burst = max(1, int(limit))
		}
		f.limiter = rate.NewLimiter(rate.Limit(limit), f.burst)
	}
	return nil
}

// Stats returns the counters.
func (f *Frame) Stats() Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.stats
	s.FailureModes = f.fail.Failed()
	return s
}

// Close releases stalled requests and stops the simulator's goroutines.
func (f *Frame) Close() {
	f.fail.Close()
	f.closeOnce.Do(func() {
		if f.o.OnClose != nil {
			f.o.OnClose()
		}
	})
}

// Serve answers on ln until ctx ends, then shuts the server down.
func (f *Frame) Serve(ctx context.Context, ln net.Listener) error {
	return failmode.Serve(ctx, ln, f, f.Close)
}

// ServeHTTP serves the control endpoints (/, /records, /control, /stats,
// /seed, /reset, /healthz: no credentials, no failure modes) and passes
// every other request through the failure mode, the credentials check and
// the rate limit to the API.
func (f *Frame) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		if r.Method == http.MethodGet {
			f.page(w)
			return
		}
	case "/records":
		failmode.WriteJSON(w, http.StatusOK, f.api.Records())
		return
	case "/control":
		f.control(w, r)
		return
	case "/stats":
		failmode.WriteJSON(w, http.StatusOK, f.Stats())
		return
	case "/seed":
		if r.Method == http.MethodPost {
			f.seed(w, r)
			return
		}
	case "/reset":
		if r.Method == http.MethodPost {
			f.api.Reset()
			f.mu.Lock()
			f.stats = Stats{}
			f.mu.Unlock()
			f.fail.ResetCount()
			failmode.WriteJSON(w, http.StatusOK, map[string]string{"status": "reset"})
			return
		}
	case "/healthz":
		failmode.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		return
	}
	if h, ok := f.o.Routes[r.URL.Path]; ok {
		h(w, r)
		return
	}
	f.mu.Lock()
	f.stats.Requests++
	f.mu.Unlock()
	if f.fail.Intercept(w, r) {
		return
	}
	if !f.authorized(r) {
		f.mu.Lock()
		f.stats.Unauthorized++
		f.mu.Unlock()
		f.o.Unauthorized(w)
		return
	}
	if wait, limited := f.take(); limited {
		w.Header().Set("Retry-After", strconv.Itoa(wait))
		failmode.WriteJSON(w, http.StatusTooManyRequests,
			f.o.ErrorBody(http.StatusTooManyRequests, "Rate limit exceeded. Try again after the Retry-After seconds."))
		return
	}
	f.api.ServeHTTP(w, r)
}

func (f *Frame) authorized(r *http.Request) bool {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	want, known := f.o.Users[user]
	return known && subtle.ConstantTimeCompare([]byte(pass), []byte(want)) == 1
}

// take spends one token of the rate limit; when none is left it reports the
// whole seconds until one will be (the Retry-After) and true.
func (f *Frame) take() (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.limiter == nil {
		return 0, false
	}
	now := time.Now()
	res := f.limiter.ReserveN(now, 1)
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		f.stats.RateLimited++
		return int(math.Ceil(d.Seconds())), true
	}
	return 0, false
}

func (f *Frame) control(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var c Control
		if !failmode.DecodeControl(w, r, &c) {
			return
		}
		if err := f.SetControl(c); err != nil {
			failmode.WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
	}
	failmode.WriteJSON(w, http.StatusOK, f.ControlState())
}

func (f *Frame) seed(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		failmode.WriteJSON(w, http.StatusBadRequest, map[string]string{"error": "read the body: " + err.Error()})
		return
	}
	out, err := f.api.Seed(body)
	if err != nil {
		failmode.WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
		return
	}
	failmode.WriteJSON(w, http.StatusOK, out)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>{{.L.Title}}</title>
<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}td{white-space:pre-wrap}</style>
</head><body><h1>{{.L.Title}}</h1>
<p>Mode: <b data-testid="sim-mode">{{.C.Mode}}</b> · rate limit: {{.Limit}} · {{len .L.Rows}} records (the 500 changed last shown, newest first) · this page reloads every 2 s · JSON: <a href="/records">/records</a>, <a href="/stats">/stats</a>, <a href="/control">/control</a></p>
<table data-testid="sim-records"><tr>{{range .L.Columns}}<th>{{.}}</th>{{end}}</tr>
{{range .Shown}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>{{end}}</table>
{{range .L.Notes}}<p>{{.}}</p>{{end}}
</body></html>`))

func (f *Frame) page(w http.ResponseWriter) {
	l := f.api.Listing()
	c := f.ControlState()
	shown := l.Rows
	if len(shown) > 500 {
		shown = shown[:500]
	}
	limit := "off"
	if *c.RateLimit > 0 {
		limit = fmt.Sprintf("%g/s (burst %d)", *c.RateLimit, *c.Burst)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTmpl.Execute(w, map[string]any{"L": l, "C": c, "Limit": limit, "Shown": shown}); err != nil {
		f.log.Error("render the listing", slog.String("error", err.Error()))
	}
}

// DecodeJSON reads a JSON request body (at most 4 MiB) into v.
func DecodeJSON(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read the body: %w", err)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("the body is not valid JSON: %w", err)
	}
	return nil
}

// WriteJSON writes v as a JSON answer.
func WriteJSON(w http.ResponseWriter, status int, v any) { failmode.WriteJSON(w, status, v) }
