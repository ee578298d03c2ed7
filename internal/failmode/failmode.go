// Package failmode is the switch that makes a demo remote system fail on
// purpose: refuse connections, answer 500, 401 or 429, stall, or fail a share
// of requests at random, for a while or until told otherwise. The demo peer
// and the API simulators (internal/sim) all answer their /control endpoint
// through it, so a failure is rehearsed the same way against each of them.
package failmode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Mode is how the guarded endpoints answer.
type Mode string

// Modes. Only the guarded endpoints are affected; control endpoints always answer.
const (
	OK      Mode = "ok"      // answer normally
	Fail500 Mode = "fail500" // 500 Internal Server Error
	Fail401 Mode = "fail401" // 401 Unauthorized (credentials "expired")
	Fail429 Mode = "fail429" // 429 Too Many Requests with Retry-After
	Refuse  Mode = "refuse"  // drop the connection without an answer
	Stall   Mode = "stall"   // answer nothing until the caller gives up
	Flaky   Mode = "flaky"   // fail500 for FailShare of the requests, at random
)

// Modes lists every mode.
var Modes = []Mode{OK, Fail500, Fail401, Fail429, Refuse, Stall, Flaky}

// List is the modes as a comma-separated list, for help texts.
func List() string {
	names := make([]string, len(Modes))
	for i, m := range Modes {
		names[i] = string(m)
	}
	return strings.Join(names, ", ")
}

// Control is the settable part of a Switch, as the /control endpoints take
// and show it (JSON).
type Control struct {
	Mode        Mode     `json:"mode"`
	FailShare   *float64 `json:"fail_share,omitempty"`    // share of requests failing in mode flaky
	RetryAfterS *int     `json:"retry_after_s,omitempty"` // Retry-After of mode fail429
	ForSeconds  float64  `json:"for_seconds,omitempty"`   // go back to ok after this long (0: stay)
}

// Opts configures a Switch.
type Opts struct {
	Mode        Mode    // starting mode [ok]
	FailShare   float64 // share of requests failing in mode flaky
	RetryAfterS int     // Retry-After of mode fail429 [1]
	Seed        uint64  // random seed for mode flaky
	Name        string  // who fails, in the error texts ["the peer"]
	// ErrorBody, when set, is the body of a failure answer (status, text);
	// by default {"error": text}. The simulators answer in their API's shape.
	ErrorBody func(status int, text string) any
	Logger    *slog.Logger
}

// Switch holds the current mode; it is safe for concurrent use.
type Switch struct {
	o   Opts
	log *slog.Logger

	mu         sync.Mutex
	mode       Mode
	until      time.Time
	failShare  float64
	retryAfter int
	rng        uint64
	failed     int64
	stalled    chan struct{} // closed on Close, releases stalled requests
}

// New returns a switch in o.Mode.
func New(o Opts) (*Switch, error) {
	if o.Name == "" {
		o.Name = "the peer"
	}
	if o.RetryAfterS <= 0 {
		o.RetryAfterS = 1
	}
	if o.ErrorBody == nil {
		o.ErrorBody = func(_ int, text string) any { return map[string]string{"error": text} }
	}
	s := &Switch{o: o, log: o.Logger, mode: OK, failShare: o.FailShare, retryAfter: o.RetryAfterS,
		rng: o.Seed | 1, stalled: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Mode != "" {
		if err := valid(o.Mode); err != nil {
			return nil, err
		}
		s.mode = o.Mode
	}
	return s, nil
}

// Close releases stalled requests (and makes later ones return at once), so
// a server's Shutdown does not wait for them.
func (s *Switch) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.stalled:
	default:
		close(s.stalled)
	}
}

func valid(m Mode) error {
	for _, v := range Modes {
		if m == v {
			return nil
		}
	}
	return fmt.Errorf("mode %q is not one of %s", m, List())
}

// Set changes the mode and its settings; zero fields leave them as they are.
func (s *Switch) Set(c Control) error {
	if c.Mode != "" {
		if err := valid(c.Mode); err != nil {
			return err
		}
	}
	if c.FailShare != nil && (*c.FailShare < 0 || *c.FailShare > 1) {
		return errors.New("shares are numbers from 0 to 1")
	}
	if c.RetryAfterS != nil && *c.RetryAfterS < 0 {
		return errors.New("retry_after_s is a number of seconds, 0 or more")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Mode != "" {
		s.mode, s.until = c.Mode, time.Time{}
		if c.ForSeconds > 0 {
			s.until = time.Now().Add(time.Duration(c.ForSeconds * float64(time.Second)))
		}
		s.log.Info("failure mode", slog.String("mode", string(c.Mode)), slog.Float64("for_seconds", c.ForSeconds))
	}
	if c.FailShare != nil {
		s.failShare = *c.FailShare
	}
	if c.RetryAfterS != nil {
		s.retryAfter = *c.RetryAfterS
	}
	return nil
}

// State returns the current settings.
func (s *Switch) State() Control {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs, ra := s.failShare, s.retryAfter
	c := Control{Mode: s.current(), FailShare: &fs, RetryAfterS: &ra}
	if !s.until.IsZero() {
		c.ForSeconds = time.Until(s.until).Seconds()
	}
	return c
}

// Failed is how many requests a failure mode answered.
func (s *Switch) Failed() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failed
}

// ResetCount sets the failure counter back to zero.
func (s *Switch) ResetCount() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failed = 0
}

func (s *Switch) current() Mode { // with mu held
	if !s.until.IsZero() && time.Now().After(s.until) {
		s.mode, s.until = OK, time.Time{}
	}
	return s.mode
}

func (s *Switch) random() float64 { // xorshift; with mu held
	s.rng ^= s.rng << 13
	s.rng ^= s.rng >> 7
	s.rng ^= s.rng << 17
	return float64(s.rng>>11) / float64(1<<53)
}

// Intercept answers r the way the current mode says and reports true, or
// reports false in mode ok (and for the lucky requests of mode flaky): the
// caller then answers normally.
func (s *Switch) Intercept(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	mode := s.current()
	if mode == Flaky {
		mode = OK
		if s.random() < s.failShare {
			mode = Fail500
		}
	}
	if mode != OK {
		s.failed++
	}
	retryAfter, stalled := s.retryAfter, s.stalled
	s.mu.Unlock()
	name := s.o.Name
	switch mode {
	case OK:
		return false
	case Fail500:
		s.write(w, http.StatusInternalServerError, fmt.Sprintf("%s is failing on purpose (mode fail500)", upper(name)))
	case Fail401:
		s.write(w, http.StatusUnauthorized, fmt.Sprintf("%s refuses the credentials (mode fail401)", upper(name)))
	case Fail429:
		w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
		s.write(w, http.StatusTooManyRequests, fmt.Sprintf("%s says: too many requests (mode fail429)", upper(name)))
	case Refuse:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, like a refused connection
				}
				_ = conn.Close()
				return true
			}
		}
		s.write(w, http.StatusServiceUnavailable, fmt.Sprintf("%s refuses connections (mode refuse)", upper(name)))
	case Stall:
		select {
		case <-r.Context().Done():
		case <-stalled:
		}
	}
	return true
}

func (s *Switch) write(w http.ResponseWriter, status int, text string) {
	WriteJSON(w, status, s.o.ErrorBody(status, text))
}

// ServeControl answers GET (the settings) and POST (change them, then the
// settings) of a /control endpoint whose body is just a Control.
func (s *Switch) ServeControl(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPost {
		var c Control
		if !DecodeControl(w, r, &c) {
			return
		}
		if err := s.Set(c); err != nil {
			WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
	}
	WriteJSON(w, http.StatusOK, s.State())
}

// DecodeControl reads a control body into v, answering 400 and reporting
// false when it is not a JSON object.
func DecodeControl(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(v); err != nil {
		WriteJSON(w, http.StatusBadRequest, map[string]string{"error": `Give a JSON object such as {"mode": "fail500"}`})
		return false
	}
	return true
}

// WriteJSON writes v as a JSON answer.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func upper(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// Serve answers on ln with h until ctx ends, then runs release (which must
// release stalled requests: Switch.Close) and shuts the server down; release
// also runs when the server fails on its own. Demo servers share it because
// a stalled request would otherwise hold Shutdown for its whole timeout.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, release func()) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		release()
		return err
	case <-ctx.Done():
	}
	release()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
