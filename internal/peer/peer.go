// Package peer is the demo remote system (`unifi peer`): it speaks the wire
// protocol of docs/domain.md, answers messages synchronously with its own ticket
// reference, sends asynchronous receipts back after a delay (Accepted, or
// Rejected for a configurable share), keeps what it received per bond in
// arrival order, counts duplicates, and can be told to fail so outages can be
// rehearsed. Tests and the bench embed it; the command serves it.
package peer

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"unifi/models"
	"unifi/models/inbound"
)

// Mode is how the peer answers messages.
type Mode string

// Modes. Only the messages endpoint is affected; /control and /stats always answer.
const (
	ModeOK      Mode = "ok"      // accept everything
	ModeFail500 Mode = "fail500" // 500 Internal Server Error
	ModeFail401 Mode = "fail401" // 401 Unauthorized (credentials "expired")
	ModeRefuse  Mode = "refuse"  // drop the connection without an answer
	ModeStall   Mode = "stall"   // answer nothing until the caller gives up
	ModeFlaky   Mode = "flaky"   // fail500 for FailShare of the messages, at random
)

// Modes lists every mode.
var Modes = []Mode{ModeOK, ModeFail500, ModeFail401, ModeRefuse, ModeStall, ModeFlaky}

// Opts configures a Peer.
type Opts struct {
	Token        string        // bearer token callers must send; "" accepts any caller
	ReceiptURL   string        // where receipts go (our inbound endpoint); "" sends none
	ReceiptToken string        // bearer token for receipts
	ReceiptDelay time.Duration // wait before sending a receipt
	RejectShare  float64       // share (0..1) of update messages answered Rejected
	RejectError  string        // the process error of a rejection
	FailShare    float64       // share of messages that fail in ModeFlaky
	Mode         Mode          // starting mode, default ModeOK
	RefPrefix    string        // prefix of the peer's ticket numbers, default PEER
	Workers      int           // receipt senders, default 8
	Seed         uint64        // random seed for ModeFlaky
	Logger       *slog.Logger
	Client       *http.Client // for receipts; default a client with a 10 s timeout
}

// Arrival is one message as the peer received it.
type Arrival struct {
	Name      string    `json:"name"`
	SourceID  string    `json:"source_id"`
	TimeStamp time.Time `json:"time_stamp"`
	Duplicate bool      `json:"duplicate"`
	Data      any       `json:"data,omitempty"`
}

// Stats are the peer's counters.
type Stats struct {
	Received        int64 `json:"received"`         // messages accepted (not duplicates)
	Duplicates      int64 `json:"duplicates"`       // messages refused as already processed
	Rejected        int64 `json:"rejected"`         // answered with process state Rejected
	Failed          int64 `json:"failed"`           // requests answered with a failure mode
	ReceiptsSent    int64 `json:"receipts_sent"`    // receipts the receiver accepted
	ReceiptsRefused int64 `json:"receipts_refused"` // receipts the receiver refused for good
	ReceiptRetries  int64 `json:"receipt_retries"`  // receipt attempts that will be tried again
	ReceiptsPending int64 `json:"receipts_pending"` // receipts not sent yet
	ReceiptsIn      int64 `json:"receipts_in"`      // receipts received (for the peer's own messages)
	OutOfOrder      int64 `json:"out_of_order"`     // messages older than the bond's previous one
	Bonds           int   `json:"bonds"`
}

// Control is the settable part of the peer (POST /control).
type Control struct {
	Mode           Mode     `json:"mode"`
	FailShare      *float64 `json:"fail_share,omitempty"`
	RejectShare    *float64 `json:"reject_share,omitempty"`
	ReceiptDelayMS *int     `json:"receipt_delay_ms,omitempty"`
	ForSeconds     float64  `json:"for_seconds,omitempty"` // go back to ok after this long (0: stay)
}

// Peer is the demo remote system.
type Peer struct {
	o      Opts
	log    *slog.Logger
	client *http.Client

	mu          sync.Mutex
	mode        Mode
	modeUntil   time.Time
	rejectShare float64
	failShare   float64
	delay       time.Duration
	rejectAcc   float64 // spreads rejections evenly
	rng         uint64
	refs        map[string]string    // sender's reference -> our reference
	bonds       map[string][]Arrival // sender's reference -> arrivals in order
	seen        map[string]*models.EnvelopeHeader
	nextRef     int64
	nextMsg     int64
	stats       Stats

	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	queue   receiptHeap
	wake    chan struct{}
	sendCh  chan *receiptJob
	stalled chan struct{} // closed on Close, releases stalled requests
}

// New returns a running peer; Close stops it.
func New(o Opts) *Peer {
	if o.Mode == "" {
		o.Mode = ModeOK
	}
	if o.RefPrefix == "" {
		o.RefPrefix = "PEER"
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.RejectError == "" {
		o.RejectError = "The peer's business rules refused this update (demo rejection)."
	}
	p := &Peer{o: o, log: o.Logger, client: o.Client, mode: o.Mode, rejectShare: o.RejectShare,
		failShare: o.FailShare, delay: o.ReceiptDelay, rng: o.Seed | 1,
		refs: map[string]string{}, bonds: map[string][]Arrival{}, seen: map[string]*models.EnvelopeHeader{},
		wake: make(chan struct{}, 1), sendCh: make(chan *receiptJob, 1024), stalled: make(chan struct{})}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if p.client == nil {
		p.client = &http.Client{Timeout: 10 * time.Second}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.wg.Add(1 + o.Workers)
	go p.schedule()
	for range o.Workers {
		go p.sendReceipts()
	}
	return p
}

// Close stops the receipt senders (unsent receipts are dropped) and releases
// stalled requests.
func (p *Peer) Close() {
	p.mu.Lock()
	select {
	case <-p.stalled:
	default:
		close(p.stalled)
	}
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
}

// Serve answers on ln until ctx ends, then shuts the server down and closes the peer.
func (p *Peer) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		p.Close()
		return err
	case <-ctx.Done():
	}
	p.Close() // releases stalled requests first, so Shutdown does not wait for them
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

// ServeHTTP routes: POST /api/v1/integrations/{name}/messages, GET|POST
// /control, GET /stats, GET /bonds/{reference}, POST /reset, GET /healthz.
func (p *Peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(path, "/api/v1/integrations/") && strings.HasSuffix(path, "/messages"):
		p.messages(w, r)
	case path == "/control" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, p.ControlState())
	case path == "/control" && r.Method == http.MethodPost:
		var c Control
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&c); err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "Give a JSON object such as {\"mode\": \"fail500\"}"})
			return
		}
		if err := p.SetControl(c); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, p.ControlState())
	case path == "/stats" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, p.Stats())
	case strings.HasPrefix(path, "/bonds/") && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, p.Bond(strings.TrimPrefix(path, "/bonds/")))
	case path == "/reset" && r.Method == http.MethodPost:
		p.Reset()
		writeJSON(w, http.StatusOK, p.Stats())
	case path == "/healthz":
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "No such endpoint on the peer"})
	}
}

// SetControl changes the mode and shares.
func (p *Peer) SetControl(c Control) error {
	valid := c.Mode == ""
	for _, m := range Modes {
		valid = valid || c.Mode == m
	}
	if !valid {
		return fmt.Errorf("mode %q is not one of ok, fail500, fail401, refuse, stall, flaky", c.Mode)
	}
	share := func(v *float64) bool { return v == nil || *v >= 0 && *v <= 1 }
	if !share(c.FailShare) || !share(c.RejectShare) {
		return errors.New("shares are numbers from 0 to 1")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.Mode != "" {
		p.mode = c.Mode
		p.modeUntil = time.Time{}
		if c.ForSeconds > 0 {
			p.modeUntil = time.Now().Add(time.Duration(c.ForSeconds * float64(time.Second)))
		}
		p.log.Info("peer mode", slog.String("mode", string(c.Mode)), slog.Float64("for_seconds", c.ForSeconds))
	}
	if c.FailShare != nil {
		p.failShare = *c.FailShare
	}
	if c.RejectShare != nil {
		p.rejectShare = *c.RejectShare
	}
	if c.ReceiptDelayMS != nil && *c.ReceiptDelayMS >= 0 {
		p.delay = time.Duration(*c.ReceiptDelayMS) * time.Millisecond
	}
	return nil
}

// SetMode is SetControl for the mode alone.
func (p *Peer) SetMode(m Mode) error { return p.SetControl(Control{Mode: m}) }

// ControlState returns the current settings.
func (p *Peer) ControlState() Control {
	p.mu.Lock()
	defer p.mu.Unlock()
	fs, rs, d := p.failShare, p.rejectShare, int(p.delay/time.Millisecond)
	c := Control{Mode: p.currentMode(), FailShare: &fs, RejectShare: &rs, ReceiptDelayMS: &d}
	if !p.modeUntil.IsZero() {
		c.ForSeconds = time.Until(p.modeUntil).Seconds()
	}
	return c
}

func (p *Peer) currentMode() Mode {
	if !p.modeUntil.IsZero() && time.Now().After(p.modeUntil) {
		p.mode, p.modeUntil = ModeOK, time.Time{}
	}
	return p.mode
}

// Stats returns the counters.
func (p *Peer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Bonds = len(p.bonds)
	s.ReceiptsPending = int64(len(p.queue)) + int64(len(p.sendCh))
	return s
}

// Bond returns what arrived for the sender's reference, in arrival order.
func (p *Peer) Bond(senderRef string) []Arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Arrival(nil), p.bonds[senderRef]...)
}

// Bonds returns every sender reference the peer has seen.
func (p *Peer) Bonds() map[string][]Arrival {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]Arrival, len(p.bonds))
	for k, v := range p.bonds {
		out[k] = append([]Arrival(nil), v...)
	}
	return out
}

// Reference returns the peer's ticket number for the sender's reference.
func (p *Peer) Reference(senderRef string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.refs[senderRef]
}

// Reset forgets every message and counter (the settings stay).
func (p *Peer) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refs, p.bonds, p.seen = map[string]string{}, map[string][]Arrival{}, map[string]*models.EnvelopeHeader{}
	p.stats = Stats{}
}

func (p *Peer) random() float64 { // xorshift; called with mu held
	p.rng ^= p.rng << 13
	p.rng ^= p.rng >> 7
	p.rng ^= p.rng << 17
	return float64(p.rng>>11) / float64(1<<53)
}

// messages is the protocol endpoint.
func (p *Peer) messages(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	mode := p.currentMode()
	if mode == ModeFlaky {
		mode = ModeOK
		if p.random() < p.failShare {
			mode = ModeFail500
		}
	}
	if mode != ModeOK {
		p.stats.Failed++
	}
	p.mu.Unlock()
	switch mode {
	case ModeFail500:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "The peer is failing on purpose (mode fail500)"})
		return
	case ModeFail401:
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The peer refuses the credentials (mode fail401)"})
		return
	case ModeRefuse:
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				if tc, ok := conn.(*net.TCPConn); ok {
					_ = tc.SetLinger(0) // a reset, like a refused connection
				}
				_ = conn.Close()
				return
			}
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "The peer refuses connections (mode refuse)"})
		return
	case ModeStall:
		select {
		case <-r.Context().Done():
		case <-p.stalled:
		}
		return
	}
	if p.o.Token != "" {
		scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		if !strings.EqualFold(scheme, "Bearer") || tok != p.o.Token {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "The credentials are not valid"})
			return
		}
	}
	var env models.Envelope
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err == nil {
		err = json.Unmarshal(body, &env)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "The request body is not a valid message envelope"})
		return
	}
	h := env.Message
	if h.Name == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": inbound.TextNoMessageName})
		return
	}
	if h.Name == "Receipt" || h.Name == "Response" {
		p.mu.Lock()
		p.stats.ReceiptsIn++
		p.mu.Unlock()
		writeJSON(w, http.StatusOK, models.Envelope{Message: models.EnvelopeHeader{Name: "Response",
			TimeStamp: time.Now().UTC(), TargetID: h.SourceID}, Data: map[string]any{},
			Status: &models.EnvelopeStatus{ProcessState: "Accepted"}})
		return
	}
	if h.SourceID == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "message.source_id is required"})
		return
	}
	bondKey := h.SourceReference
	if bondKey == "" {
		bondKey = "target:" + h.TargetReference
	}

	p.mu.Lock()
	if orig, dup := p.seen[h.SourceID]; dup {
		p.stats.Duplicates++
		p.bonds[bondKey] = append(p.bonds[bondKey], Arrival{Name: h.Name, SourceID: h.SourceID, TimeStamp: h.TimeStamp, Duplicate: true})
		p.mu.Unlock()
		writeJSON(w, http.StatusConflict, map[string]any{"error": inbound.TextDuplicate, "message": orig})
		return
	}
	ref, ok := p.refs[bondKey]
	if !ok {
		p.nextRef++
		ref = fmt.Sprintf("%s%07d", p.o.RefPrefix, p.nextRef)
		p.refs[bondKey] = ref
	}
	arrivals := p.bonds[bondKey]
	if n := len(arrivals); n > 0 && h.TimeStamp.Before(arrivals[n-1].TimeStamp) {
		p.stats.OutOfOrder++
	}
	p.bonds[bondKey] = append(arrivals, Arrival{Name: h.Name, SourceID: h.SourceID, TimeStamp: h.TimeStamp, Data: env.Data})
	p.stats.Received++
	state, perr := "Accepted", ""
	if ok { // only updates are rejected: a rejected create would leave no ticket to bond
		p.rejectAcc += p.rejectShare
		if p.rejectAcc >= 1 {
			p.rejectAcc--
			state, perr = "Rejected", p.o.RejectError
			p.stats.Rejected++
		}
	}
	p.nextMsg++
	answer := models.EnvelopeHeader{Name: "Response", TimeStamp: time.Now().UTC(), SourceReference: ref,
		TargetReference: h.SourceReference, SourceID: fmt.Sprintf("%sMSG%07d", p.o.RefPrefix, p.nextMsg), TargetID: h.SourceID}
	p.seen[h.SourceID] = &answer
	var job *receiptJob
	if p.o.ReceiptURL != "" {
		p.nextMsg++
		job = &receiptJob{due: time.Now().Add(p.delay), env: models.Envelope{
			Message: models.EnvelopeHeader{Name: "Receipt", SourceReference: ref, TargetReference: h.SourceReference,
				SourceID: fmt.Sprintf("%sMSG%07d", p.o.RefPrefix, p.nextMsg), TargetID: h.SourceID},
			Data: map[string]any{}, Status: &models.EnvelopeStatus{ProcessState: state, Error: perr}}}
		heap.Push(&p.queue, job)
	}
	p.mu.Unlock()
	if job != nil {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
	writeJSON(w, http.StatusOK, models.Envelope{Message: answer, Data: map[string]any{},
		Status: &models.EnvelopeStatus{ProcessState: state, Error: perr}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// receiptJob is one receipt waiting to be sent.
type receiptJob struct {
	due      time.Time
	env      models.Envelope
	attempts int
}

type receiptHeap []*receiptJob

func (h receiptHeap) Len() int           { return len(h) }
func (h receiptHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h receiptHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *receiptHeap) Push(x any)        { *h = append(*h, x.(*receiptJob)) }
func (h *receiptHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// schedule hands receipts to the senders when they are due.
func (p *Peer) schedule() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var next time.Duration = time.Hour
		var due []*receiptJob
		now := time.Now()
		for len(p.queue) > 0 {
			if d := p.queue[0].due.Sub(now); d > 0 {
				next = d
				break
			}
			due = append(due, heap.Pop(&p.queue).(*receiptJob))
		}
		p.mu.Unlock()
		for _, j := range due {
			select {
			case p.sendCh <- j:
			case <-p.ctx.Done():
				return
			}
		}
		if len(due) > 0 {
			continue
		}
		timer.Reset(next)
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-timer.C:
		}
	}
}

// sendReceipts posts receipts; a failed one is tried again with a growing delay.
func (p *Peer) sendReceipts() {
	defer p.wg.Done()
	for {
		select {
		case <-p.ctx.Done():
			return
		case j := <-p.sendCh:
			retry, err := p.sendReceipt(j)
			p.mu.Lock()
			switch {
			case err == nil:
				p.stats.ReceiptsSent++
			case retry && j.attempts < 30:
				p.stats.ReceiptRetries++
				j.attempts++
				j.due = time.Now().Add(min(time.Duration(j.attempts)*100*time.Millisecond, 3*time.Second))
				heap.Push(&p.queue, j)
			default:
				p.stats.ReceiptsRefused++
				p.log.Warn("receipt refused", slog.String("target_id", j.env.Message.TargetID), slog.String("error", err.Error()))
			}
			p.mu.Unlock()
			if err != nil && retry {
				select {
				case p.wake <- struct{}{}:
				default:
				}
			}
		}
	}
}

// sendReceipt posts one receipt. It reports whether a failure is worth
// another try (transport errors, 5xx, 409 "still being sent", 429).
func (p *Peer) sendReceipt(j *receiptJob) (bool, error) {
	j.env.Message.TimeStamp = time.Now().UTC()
	body, err := json.Marshal(j.env)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(p.ctx, http.MethodPost, p.o.ReceiptURL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.o.ReceiptToken != "" {
		req.Header.Set("Authorization", "Bearer "+p.o.ReceiptToken)
	}
	res, err := p.client.Do(req)
	if err != nil {
		return true, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<16))
	if res.StatusCode/100 == 2 {
		return false, nil
	}
	var e struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	err = fmt.Errorf("receipt answered %d: %s", res.StatusCode, e.Error)
	retry := res.StatusCode >= 500 || res.StatusCode == http.StatusTooManyRequests ||
		(res.StatusCode == http.StatusConflict && e.Error != inbound.TextProcessedAlready)
	return retry, err
}
