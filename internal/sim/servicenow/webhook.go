package servicenow

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"unifi/internal/failmode"
)

// WebhookOpts configures the outbound webhook (the business rule).
type WebhookOpts struct {
	URL      string // where changes are posted; "" posts nothing
	User     string // basic auth user for the receiver ("" with Token: bearer; both "": none)
	Password string
	Token    string        // bearer token for the receiver
	Retries  int           // further attempts after a failure [10]
	Backoff  time.Duration // wait before the first retry, doubling up to 5 s [200 ms]
	Timeout  time.Duration // per attempt [10 s]
	Client   *http.Client  // [a client with Timeout]
}

// WebhookStats are the webhook's counters.
type WebhookStats struct {
	Sent    int64 `json:"sent"`    // deliveries the receiver accepted (2xx)
	Retries int64 `json:"retries"` // attempts that failed and were tried again
	Failed  int64 `json:"failed"`  // deliveries given up (a 4xx other than 408/429, or out of retries)
	Pending int   `json:"pending"` // deliveries waiting
}

// Delivery is one webhook attempt's outcome, for the listing.
type Delivery struct {
	At      time.Time `json:"at"`
	Number  string    `json:"number"`
	ModCnt  string    `json:"sys_mod_count"`
	Attempt int       `json:"attempt"`
	Status  int       `json:"status"` // 0: no answer
	Error   string    `json:"error,omitempty"`
}

// webhook posts changes in the order they happened, one at a time: a
// failed delivery is retried before the next one goes, so the receiver
// sees every incident's changes in order.
type webhook struct {
	log *slog.Logger

	mu     sync.Mutex
	o      WebhookOpts
	queue  [][]byte
	st     WebhookStats
	recent []Delivery // the last 100 attempts
	wake   chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func newWebhook(o WebhookOpts, log *slog.Logger) (*webhook, error) {
	if o.URL != "" {
		if u, err := url.Parse(o.URL); err != nil || u.Scheme == "" || u.Host == "" {
			return nil, fmt.Errorf("webhook URL %q is not an absolute http(s) URL", o.URL)
		}
	}
	if o.Retries == 0 {
		o.Retries = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 200 * time.Millisecond
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	h := &webhook{o: o, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.run()
	return h, nil
}

func (h *webhook) close() {
	h.cancel()
	<-h.done
}

func (h *webhook) enqueue(body map[string]string) {
	b, err := json.Marshal(body)
	if err != nil {
		h.log.Error("encode webhook", slog.String("error", err.Error()))
		return
	}
	h.mu.Lock()
	if h.o.URL == "" {
		h.mu.Unlock()
		return
	}
	h.queue = append(h.queue, b)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *webhook) stats() WebhookStats {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := h.st
	s.Pending = len(h.queue)
	return s
}

func (h *webhook) deliveries() []Delivery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Delivery(nil), h.recent...)
}

func (h *webhook) run() {
	defer close(h.done)
	for {
		h.mu.Lock()
		var body []byte
		if len(h.queue) > 0 {
			body = h.queue[0]
		}
		h.mu.Unlock()
		if body == nil {
			select {
			case <-h.ctx.Done():
				return
			case <-h.wake:
				continue
			}
		}
		if !h.deliver(body) {
			return
		}
		h.mu.Lock()
		h.queue = h.queue[1:]
		h.mu.Unlock()
	}
}

// deliver posts one body until it is accepted, refused for good or out of
// retries; it reports false when the webhook is closing.
func (h *webhook) deliver(body []byte) bool {
	var head struct {
		Number string `json:"number"`
		ModCnt string `json:"sys_mod_count"`
	}
	_ = json.Unmarshal(body, &head)
	h.mu.Lock()
	o := h.o
	h.mu.Unlock()
	wait := o.Backoff
	for attempt := 1; ; attempt++ {
		status, retryAfter, err := h.post(o, body)
		d := Delivery{At: time.Now().UTC(), Number: head.Number, ModCnt: head.ModCnt, Attempt: attempt, Status: status}
		if err != nil {
			d.Error = err.Error()
		}
		retry := err != nil && (status == 0 || status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout)
		h.mu.Lock()
		h.recent = append(h.recent, d)
		if len(h.recent) > 100 {
			h.recent = h.recent[len(h.recent)-100:]
		}
		switch {
		case err == nil:
			h.st.Sent++
		case retry && attempt <= o.Retries:
			h.st.Retries++
		default:
			h.st.Failed++
			h.log.Warn("webhook given up", slog.String("number", head.Number), slog.Int("attempts", attempt),
				slog.String("error", err.Error()))
		}
		h.mu.Unlock()
		if err == nil || !retry || attempt > o.Retries {
			return true
		}
		pause := max(wait, retryAfter)
		wait = min(2*wait, 5*time.Second)
		select {
		case <-h.ctx.Done():
			return false
		case <-time.After(pause):
		}
	}
}

// post sends one attempt: the status (0 without an answer), the receiver's
// Retry-After, and an error unless it answered 2xx.
func (h *webhook) post(o WebhookOpts, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(h.ctx, http.MethodPost, o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "ServiceNow/1.0 (unifi simulator)")
	switch {
	case o.User != "":
		req.SetBasicAuth(o.User, o.Password)
	case o.Token != "":
		req.Header.Set("Authorization", "Bearer "+o.Token)
	}
	res, err := o.Client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode/100 == 2 {
		return res.StatusCode, 0, nil
	}
	var ra time.Duration
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s > 0 {
		ra = min(time.Duration(s)*time.Second, time.Minute)
	}
	return res.StatusCode, ra, fmt.Errorf("answered %d: %s", res.StatusCode, bytes.TrimSpace(b))
}

// WebhookControl is the body of POST /webhook: where and how to deliver.
type WebhookControl struct {
	URL      *string `json:"url,omitempty"`
	User     *string `json:"user,omitempty"`
	Password *string `json:"password,omitempty"`
	Token    *string `json:"token,omitempty"`
}

// webhookControl answers GET /webhook (settings without secrets, counters,
// recent deliveries) and POST /webhook (change the target).
func (s *Sim) webhookControl(w http.ResponseWriter, r *http.Request) {
	h := s.hook
	if r.Method == http.MethodPost {
		var c WebhookControl
		if !failmode.DecodeControl(w, r, &c) {
			return
		}
		if c.URL != nil && *c.URL != "" {
			if u, err := url.Parse(*c.URL); err != nil || u.Scheme == "" || u.Host == "" {
				failmode.WriteJSON(w, http.StatusUnprocessableEntity, map[string]string{"error": "url is not an absolute http(s) URL"})
				return
			}
		}
		h.mu.Lock()
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&h.o.URL, c.URL)
		set(&h.o.User, c.User)
		set(&h.o.Password, c.Password)
		set(&h.o.Token, c.Token)
		h.mu.Unlock()
	}
	h.mu.Lock()
	o := h.o
	h.mu.Unlock()
	failmode.WriteJSON(w, http.StatusOK, map[string]any{"url": o.URL, "user": o.User,
		"auth":  map[bool]string{true: "basic", false: map[bool]string{true: "bearer", false: "none"}[o.Token != ""]}[o.User != ""],
		"stats": h.stats(), "recent": h.deliveries()})
}
