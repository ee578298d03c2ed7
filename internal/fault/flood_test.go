package fault_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fault"
	"unifi/models"
)

// floodOpts bounds a flood in count and time.
type floodOpts struct {
	workers  int
	max      int64
	duration time.Duration
	slow     int // slow clients holding half-sent requests open
}

// floodResult counts the answers of a flood.
type floodResult struct {
	mu       sync.Mutex
	byStatus map[int]int64
	errors   map[string]int64
}

func (r *floodResult) add(status int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		msg := err.Error()
		if i := strings.LastIndex(msg, ": "); i >= 0 {
			msg = msg[i+2:]
		}
		r.errors[msg]++
		return
	}
	r.byStatus[status]++
}

func (r *floodResult) count(pred func(int) bool) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for s, c := range r.byStatus {
		if pred(s) {
			n += c
		}
	}
	return n
}

func (r *floodResult) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var keys []int
	for k := range r.byStatus {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d:%d", k, r.byStatus[k]))
	}
	return strings.Join(parts, ",")
}

// flood sends requests made by next from many goroutines on loopback until
// max requests or duration, whichever comes first.
func flood(o floodOpts, next func(i int64) *http.Request) *floodResult {
	res := &floodResult{byStatus: map[int]int64{}, errors: map[string]int64{}}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: o.workers},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	var sent atomic.Int64
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				i := sent.Add(1)
				if i > o.max {
					return
				}
				r, err := client.Do(next(i))
				if err != nil {
					res.add(0, err)
					continue
				}
				_, _ = io.Copy(io.Discard, r.Body)
				r.Body.Close()
				res.add(r.StatusCode, nil)
			}
		}()
	}
	wg.Wait()
	return res
}

// slowClients opens n connections that send half a request and then hang
// (slowloris); close releases them.
func slowClients(t *testing.T, addr string, n int) (opened int, close func()) {
	var conns []net.Conn
	for range n {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			break
		}
		_, _ = c.Write([]byte("POST /login HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\n"))
		conns = append(conns, c)
	}
	return len(conns), func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

// TestFlood floods the inbound API and the login page from a local load
// generator while slow clients hold connections open and the engine has
// work to deliver: every request is answered (429 once a client is over its
// rate), none with a 5xx, a probe keeps getting answers, and the peer keeps
// receiving our messages throughout.
func TestFlood(t *testing.T) {
	runFlood(t, floodOpts{workers: 24, max: 6000, duration: 6 * time.Second, slow: 100})
}

func runFlood(t *testing.T, o floodOpts) {
	ctx := context.Background()
	// API_RATE is lowered so the flood from one address goes over it.
	w := fault.New(t, fault.Opts{ReceiptDelay: 100 * time.Millisecond, Env: map[string]string{"API_RATE": "50"}})
	srv := w.Servers[0]
	// Tickets change during the flood, so the engine has work to deliver.
	type loadResult struct {
		tickets []*models.Ticket
		err     error
	}
	loaded := make(chan loadResult, 1)

	opened, closeSlow := slowClients(t, srv.Addr, o.slow)
	defer closeSlow()
	require.Equal(t, o.slow, opened)

	// A probe: a person opening the login page during the flood.
	probeStop := make(chan struct{})
	var probeMu sync.Mutex
	var probeLat []time.Duration
	probeBad := 0
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		for {
			select {
			case <-probeStop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			start := time.Now()
			st := status(srv.URL() + "/login")
			probeMu.Lock()
			probeLat = append(probeLat, time.Since(start))
			if st != http.StatusOK {
				probeBad++
			}
			probeMu.Unlock()
		}
	}()

	receivedBefore := w.Peer.Stats().Received
	inboundURL := srv.URL() + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"
	bodies := []string{
		`{"message":{"name":"CreateIncident","source_id":"FLOOD-DUP","source_reference":"EXT-FLOOD"},"data":{"short_description":"flood"}}`,
		`{not json`,
		`{"message":{"name":"NoSuchMessage","source_id":"x"}}`,
		`{"message":{"name":"Receipt","target_id":"MSG-NOT-OURS"},"status":{"process_state":"Accepted"}}`,
	}
	// The login flooder first takes a session and its CSRF token, as a script would.
	cookie, token := loginSession(t, srv.URL())
	var apiRes, loginRes *floodResult
	var wg sync.WaitGroup
	floodStart := time.Now()
	go func() {
		tk, err := w.CreateLoad(ctx, 150, 3, 2)
		loaded <- loadResult{tk, err}
	}()
	wg.Add(2)
	go func() {
		defer wg.Done()
		apiRes = flood(o, func(i int64) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, inboundURL, strings.NewReader(bodies[i%int64(len(bodies))]))
			r.Header.Set("Content-Type", "application/json")
			switch i % 5 {
			case 0: // no credentials
			case 1:
				r.SetBasicAuth(models.DemoPeerAccount.Name, "wrong-password") // bcrypt on every try
			default:
				r.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
			}
			return r
		})
	}()
	go func() {
		defer wg.Done()
		lo := o
		lo.workers = max(2, o.workers/3)
		loginRes = flood(lo, func(i int64) *http.Request {
			if i%2 == 0 {
				r, _ := http.NewRequest(http.MethodGet, srv.URL()+"/login", nil)
				return r
			}
			form := url.Values{"name": {"admin"}, "password": {fmt.Sprintf("guess-%d", i)}, "_csrf": {token}}
			r, _ := http.NewRequest(http.MethodPost, srv.URL()+"/login", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.AddCookie(cookie)
			return r
		})
	}()
	wg.Wait()
	floodDur := time.Since(floodStart)
	receivedDuring := w.Peer.Stats().Received - receivedBefore
	close(probeStop)
	<-probeDone
	closeSlow()

	for name, r := range map[string]*floodResult{"inbound": apiRes, "login": loginRes} {
		require.Empty(t, r.errors, "%s flood: every request answered", name)
		require.Zero(t, r.count(func(s int) bool { return s >= 500 }), "%s flood: no 5xx (%s)", name, r)
		require.Positive(t, r.count(func(s int) bool { return s == http.StatusTooManyRequests }), "%s flood: 429 over the rate (%s)", name, r)
	}
	require.Positive(t, receivedDuring, "the engine kept delivering during the flood")
	probeMu.Lock()
	sort.Slice(probeLat, func(i, j int) bool { return probeLat[i] < probeLat[j] })
	require.NotEmpty(t, probeLat)
	require.Zero(t, probeBad, "the login page kept answering 200")
	p50, pmax := probeLat[len(probeLat)/2], probeLat[len(probeLat)-1]
	probeMu.Unlock()

	lr := <-loaded
	require.NoError(t, lr.err)
	tickets := lr.tickets
	total := int64(len(tickets) * 4)
	w.WaitAll(t, models.Complete, total, 2*time.Minute)
	d := w.CheckDelivery(t, tickets)
	require.Empty(t, d.OrderBroken)
	require.Empty(t, d.NotDelivered)
	noServerErrors(t, w)
	// The flood's passwords never reach the log.
	require.NotContains(t, srv.Logs(), "guess-")
	require.NotContains(t, srv.Logs(), "wrong-password")
	require.Zero(t, w.SecretLeaks(t), "the connection's token is in no stored HTTP Request and no log")

	fault.Report(t, "flood",
		"duration_s", secs(floodDur), "inbound_requests", apiRes.count(func(int) bool { return true }), "inbound_status", apiRes,
		"login_requests", loginRes.count(func(int) bool { return true }), "login_status", loginRes,
		"refused_4xx", apiRes.count(func(s int) bool { return s >= 400 && s < 500 })+loginRes.count(func(s int) bool { return s >= 400 && s < 500 }),
		"5xx", 0, "slow_clients", opened, "probe_p50_ms", p50.Milliseconds(), "probe_max_ms", pmax.Milliseconds(),
		"delivered_during_flood", receivedDuring, "transactions", total, "lost", len(d.NotDelivered))
}

// loginSession fetches the login page and returns its session cookie and CSRF token.
func loginSession(t *testing.T, base string) (*http.Cookie, string) {
	t.Helper()
	res, err := http.Get(base + "/login")
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	m := regexp.MustCompile(`name="csrf-token" content="([^"]+)"`).FindStringSubmatch(string(b))
	require.NotNil(t, m)
	for _, c := range res.Cookies() {
		if c.Name == "unifi_session" {
			return c, m[1]
		}
	}
	t.Fatal("no session cookie")
	return nil, ""
}
