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

	"unifi/internal/failmode"
	"unifi/models"
	"unifi/models/inbound"
)

// Mode is how the peer answers messages: a failmode.Mode. Only the messages
// endpoint is affected; /control and /stats always answer.
type Mode = failmode.Mode

// The modes under the names the peer's callers know.
const (
	ModeOK      = failmode.OK
	ModeFail500 = failmode.Fail500
	ModeFail401 = failmode.Fail401
	ModeFail429 = failmode.Fail429
	ModeRefuse  = failmode.Refuse
	ModeStall   = failmode.Stall
	ModeFlaky   = failmode.Flaky
)

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

// Control is the settable part of the peer (POST /control): the failure
// mode plus the peer's own settings, in one JSON object.
type Control struct {
	failmode.Control
	RejectShare    *float64 `json:"reject_share,omitempty"`
	ReceiptDelayMS *int     `json:"receipt_delay_ms,omitempty"`
}

// Peer is the demo remote system.
type Peer struct {
	o      Opts
	log    *slog.Logger
	client *http.Client

	fail *failmode.Switch

	mu          sync.Mutex
	rejectShare float64
	delay       time.Duration
	rejectAcc   float64              // spreads rejections evenly
	refs        map[string]string    // sender's reference -> our reference
	bonds       map[string][]Arrival // sender's reference -> arrivals in order
	seen        map[string]*models.EnvelopeHeader
	nextRef     int64
	nextMsg     int64
	stats       Stats

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	queue  receiptHeap
	wake   chan struct{}
	sendCh chan *receiptJob
}

// New returns a running peer; Close stops it. An unknown o.Mode counts as ok
// (SetMode reports it).
func New(o Opts) *Peer {
	if o.RefPrefix == "" {
		o.RefPrefix = "PEER"
	}
	if o.Workers <= 0 {
		o.Workers = 8
	}
	if o.RejectError == "" {
		o.RejectError = "The peer's business rules refused this update (demo rejection)."
	}
	p := &Peer{o: o, log: o.Logger, client: o.Client, rejectShare: o.RejectShare, delay: o.ReceiptDelay,
		refs: map[string]string{}, bonds: map[string][]Arrival{}, seen: map[string]*models.EnvelopeHeader{},
		wake: make(chan struct{}, 1), sendCh: make(chan *receiptJob, 1024)}
	if p.log == nil {
		p.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	fo := failmode.Opts{Mode: o.Mode, FailShare: o.FailShare, Seed: o.Seed, Logger: p.log}
	fail, err := failmode.New(fo)
	if err != nil {
		fo.Mode = ""
		fail, _ = failmode.New(fo) // cannot fail without a mode
	}
	p.fail = fail
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
	p.fail.Close()
	p.cancel()
	p.wg.Wait()
}

// Serve answers on ln until ctx ends, then shuts the server down and closes the peer.
func (p *Peer) Serve(ctx context.Context, ln net.Listener) error {
	return failmode.Serve(ctx, ln, p, p.Close)
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
		if !failmode.DecodeControl(w, r, &c) {
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
	if c.RejectShare != nil && (*c.RejectShare < 0 || *c.RejectShare > 1) {
		return errors.New("shares are numbers from 0 to 1")
	}
	if err := p.fail.Set(c.Control); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c.RejectShare != nil {
		p.rejectShare = *c.RejectShare
	}
	if c.ReceiptDelayMS != nil && *c.ReceiptDelayMS >= 0 {
		p.delay = time.Duration(*c.ReceiptDelayMS) * time.Millisecond
	}
	return nil
}

// SetMode is SetControl for the mode alone.
func (p *Peer) SetMode(m Mode) error { return p.fail.Set(failmode.Control{Mode: m}) }

// ControlState returns the current settings.
func (p *Peer) ControlState() Control {
	p.mu.Lock()
	defer p.mu.Unlock()
	rs, d := p.rejectShare, int(p.delay/time.Millisecond)
	return Control{Control: p.fail.State(), RejectShare: &rs, ReceiptDelayMS: &d}
}

// Stats returns the counters.
func (p *Peer) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Failed = p.fail.Failed()
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
	p.fail.ResetCount()
}

// messages is the protocol endpoint.
func (p *Peer) messages(w http.ResponseWriter, r *http.Request) {
	if p.fail.Intercept(w, r) {
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

func writeJSON(w http.ResponseWriter, status int, v any) { failmode.WriteJSON(w, status, v) }

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
