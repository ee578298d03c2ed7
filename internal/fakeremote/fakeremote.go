// Package fakeremote is a remote system for tests and benchmarks: an HTTP
// handler that speaks the envelope protocol, records every message it
// applies in arrival order per ticket, refuses duplicates the way the real
// inbound API does, and can be told to fail.
package fakeremote

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"unifi/models"
)

// Arrival is one message the remote applied.
type Arrival struct {
	SourceID        string
	SourceReference string
	Name            string
	At              time.Time
	Header          http.Header
	Envelope        models.Envelope
}

// Remote is the fake remote system.
type Remote struct {
	// FailFunc, when set, decides per request whether to fail it: it returns
	// a status (0 = do not fail) and optional headers. Set it before use or
	// through SetFail.
	mu       sync.Mutex
	fail     func(env *models.Envelope, n int) (int, http.Header)
	stall    chan struct{} // when non-nil, requests wait for it to close
	byRef    map[string][]Arrival
	seen     map[string]int // applied count per source id
	requests atomic.Int64
	applied  atomic.Int64
	onApply  func(a Arrival)
	lean     bool
}

// NewLean returns a remote that keeps only the source ids per reference
// (for benchmarks: no headers or envelopes kept).
func NewLean() *Remote {
	r := New()
	r.lean = true
	return r
}

// SetOnApply sets a function called for every applied message (e.g. latency probes).
func (r *Remote) SetOnApply(f func(a Arrival)) {
	r.mu.Lock()
	r.onApply = f
	r.mu.Unlock()
}

// New returns a remote that applies everything.
func New() *Remote {
	return &Remote{byRef: map[string][]Arrival{}, seen: map[string]int{}}
}

// SetFail sets the failure rule; nil applies everything.
func (r *Remote) SetFail(f func(env *models.Envelope, n int) (int, http.Header)) {
	r.mu.Lock()
	r.fail = f
	r.mu.Unlock()
}

// Stall makes every request wait until Release (or until its client gives up,
// in which case nothing is applied).
func (r *Remote) Stall() {
	r.mu.Lock()
	r.stall = make(chan struct{})
	r.mu.Unlock()
}

// Release lets stalled requests through.
func (r *Remote) Release() {
	r.mu.Lock()
	if r.stall != nil {
		close(r.stall)
		r.stall = nil
	}
	r.mu.Unlock()
}

// Requests is how many requests arrived, applied or not.
func (r *Remote) Requests() int64 { return r.requests.Load() }

// Applied is how many messages were applied.
func (r *Remote) Applied() int64 { return r.applied.Load() }

// Arrivals returns the messages applied for one ticket reference, in order.
func (r *Remote) Arrivals(ref string) []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Arrival(nil), r.byRef[ref]...)
}

// References returns every ticket reference that received something.
func (r *Remote) References() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.byRef))
	for k := range r.byRef {
		out = append(out, k)
	}
	return out
}

// Duplicates returns the source ids applied more than once.
func (r *Remote) Duplicates() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for id, n := range r.seen {
		if n > 1 {
			out = append(out, id)
		}
	}
	return out
}

// OrderViolations checks that, per reference, the numeric Message IDs
// arrived increasing (true when transactions on a bond are created in order
// and none is replayed) and describes each violation.
func (r *Remote) OrderViolations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for ref, as := range r.byRef {
		last := -1
		for _, a := range as {
			n, err := strconv.Atoi(strings.TrimLeft(strings.SplitN(a.SourceID, ".", 2)[0], "MSG"))
			if err != nil {
				out = append(out, fmt.Sprintf("%s: bad source id %q", ref, a.SourceID))
				continue
			}
			if n <= last {
				out = append(out, fmt.Sprintf("%s: %s arrived after MSG%07d", ref, a.SourceID, last))
			}
			last = n
		}
	}
	return out
}

func (r *Remote) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.requests.Add(1)
	var env models.Envelope
	if err := json.NewDecoder(req.Body).Decode(&env); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "bad json"})
		return
	}
	r.mu.Lock()
	stall, fail := r.stall, r.fail
	r.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-req.Context().Done():
			return // the client gave up: nothing applied
		}
	}
	r.mu.Lock()
	n := r.seen[env.Message.SourceID]
	r.mu.Unlock()
	if fail != nil {
		if status, h := fail(&env, n); status != 0 {
			for k, v := range h {
				w.Header()[k] = v
			}
			writeJSON(w, status, map[string]string{"error": http.StatusText(status)})
			return
		}
	}
	r.mu.Lock()
	if r.seen[env.Message.SourceID] > 0 {
		r.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]string{"error": "Message has already been processed"})
		return
	}
	r.seen[env.Message.SourceID]++
	a := Arrival{SourceID: env.Message.SourceID, SourceReference: env.Message.SourceReference,
		Name: env.Message.Name, At: time.Now()}
	if !r.lean {
		a.Header, a.Envelope = req.Header.Clone(), env
	}
	r.byRef[env.Message.SourceReference] = append(r.byRef[env.Message.SourceReference], a)
	onApply := r.onApply
	r.mu.Unlock()
	r.applied.Add(1)
	if onApply != nil {
		onApply(a)
	}
	writeJSON(w, http.StatusOK, models.Envelope{Message: models.EnvelopeHeader{Name: "Response",
		TimeStamp: time.Now().UTC(), SourceReference: "EXT-" + env.Message.SourceReference,
		TargetReference: env.Message.SourceReference, SourceID: "R" + env.Message.SourceID,
		TargetID: env.Message.SourceID}, Data: map[string]any{}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
