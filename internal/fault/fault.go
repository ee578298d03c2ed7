// Package fault runs real `unifi serve` processes against one database with
// the demo peer as the remote system, so tests can do to them what
// production does: kill -9, restart the database, take the peer down, flood
// them. It builds the binary once per test binary (Main), starts and kills
// servers, creates load through the Store and checks what the peer received.
package fault

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/peer"
	"unifi/internal/testdb"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/pg"
	"unifi/models/store"
	"unifi/worker"
)

// SecretKey is the SECRET_KEY (and SESSION_KEY) every server and the test's
// Store share: a secret sealed by one must open in all.
var SecretKey = bytes.Repeat([]byte{0x5e}, 32)

var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Main is TestMain for packages using fault: a cluster per test binary
// (testdb.Main) and a folder for the server binary, removed at the end.
func Main(m *testing.M) {
	dir, err := os.MkdirTemp("", "unifi-fault-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fault:", err)
		os.Exit(1)
	}
	binDir = dir
	testdb.Main(m, func() { _ = os.RemoveAll(dir) })
}

// Binary builds cmd/unifi (without -race: these are the processes under
// test, not the test) once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir == "" {
			buildErr = fmt.Errorf("fault.Main is not the package's TestMain")
			return
		}
		binPath = filepath.Join(binDir, "unifi")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "unifi/cmd/unifi")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("fault: %v", buildErr)
	}
	return binPath
}

// Opts configures a World. Zero values take the defaults in brackets.
type Opts struct {
	DatabaseURL   string        // [a fresh test database]
	Servers       int           // server processes [1]
	SyncTimeoutS  int           // the demo integration's sync timeout [2]
	RetryLimit    int           // [3]
	RetryDelayS   int           // [1]
	AsyncTimeoutS int           // [300]
	ReceiptDelay  time.Duration // the peer's wait before a receipt [20 ms]
	Env           map[string]string
}

// World is one database, the demo integration on it, the peer and the
// server processes.
type World struct {
	t           testing.TB
	DBURL       string
	DB          *gorm.DB
	Store       *store.Store
	Peer        *peer.Peer
	PeerURL     string
	Integration *models.Integration
	Analyst     models.Actor
	Servers     []*Server
}

// New sets up the world and starts the servers; everything is stopped at cleanup.
func New(t testing.TB, o Opts) *World {
	t.Helper()
	ctx := context.Background()
	bin := Binary(t)
	if o.DatabaseURL == "" {
		o.DatabaseURL = testdb.URL(t)
	}
	if o.Servers == 0 {
		o.Servers = 1
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.SyncTimeoutS, 2)
	def(&o.RetryLimit, 3)
	def(&o.RetryDelayS, 1)
	def(&o.AsyncTimeoutS, 300)
	if o.ReceiptDelay == 0 {
		o.ReceiptDelay = 20 * time.Millisecond
	}
	db, err := pg.Open(ctx, o.DatabaseURL, 10)
	if err != nil {
		t.Fatalf("fault: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	w := &World{t: t, DBURL: o.DatabaseURL, DB: db,
		Store: store.NewStore(db, account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost}),
			&store.StoreOpts{SecretKey: SecretKey})}

	addrs := make([]string, o.Servers)
	for i := range addrs {
		addrs[i] = FreeAddr(t)
	}
	w.Peer = peer.New(peer.Opts{Token: models.DemoPeerToken, ReceiptToken: models.DemoPeerToken,
		ReceiptURL:   "http://" + addrs[0] + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages",
		ReceiptDelay: o.ReceiptDelay, Workers: 16, Seed: uint64(time.Now().UnixNano())})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("fault: %v", err)
	}
	peerCtx, stopPeer := context.WithCancel(ctx)
	peerDone := make(chan error, 1)
	go func() { peerDone <- w.Peer.Serve(peerCtx, ln) }()
	t.Cleanup(func() { stopPeer(); <-peerDone })
	w.PeerURL = "http://" + ln.Addr().String()

	if _, err := w.Store.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: w.PeerURL}); err != nil {
		t.Fatalf("fault: %v", err)
	}
	if err := db.Exec(`UPDATE integrations SET sync_timeout_s = ?, retry_limit = ?, retry_delay_s = ?, async_timeout_s = ?
		WHERE name = ?`, o.SyncTimeoutS, o.RetryLimit, o.RetryDelayS, o.AsyncTimeoutS, models.DemoIntegrationName).Error; err != nil {
		t.Fatalf("fault: %v", err)
	}
	if w.Integration, err = w.Store.GetIntegrationByName(ctx, models.DemoIntegrationName); err != nil {
		t.Fatalf("fault: %v", err)
	}
	var analyst models.User
	if err := db.Where("role = ?", models.RoleAnalyst).Take(&analyst).Error; err != nil {
		t.Fatalf("fault: %v", err)
	}
	w.Analyst = models.ActorOf(&analyst, "127.0.0.1")

	key := hex.EncodeToString(SecretKey)
	for i, addr := range addrs {
		env := map[string]string{"DATABASE_URL": o.DatabaseURL, "ADDR": addr, "BASE_URL": "http://" + addr,
			"SESSION_KEY": key, "SECRET_KEY": key, "LEASE_SECONDS": "2", "POLL_INTERVAL_MS": "200",
			"LOG_FORMAT": "json", "LOG_LEVEL": "info", "DB_MAX_CONNS": "20", "WORKERS": "8", "WORKER_BATCH": "20"}
		for k, v := range o.Env {
			env[k] = v
		}
		s := &Server{Name: fmt.Sprintf("srv%d", i+1), Addr: addr, bin: bin, env: env, dataDir: t.TempDir()}
		w.Servers = append(w.Servers, s)
		t.Cleanup(func() {
			s.cleanup()
			if t.Failed() {
				t.Logf("fault: last output of %s:\n%s", s.Name, tail(s.Logs(), 4000))
			}
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, len(w.Servers))
	for i, s := range w.Servers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("fault: %v", err)
		}
	}
	return w
}

// FreeAddr returns a loopback address with a port free at the time of the
// call, for a child process to listen on later (and again after a restart).
// The port is below the kernel's ephemeral range: a port from that range
// (what listening on port 0 gives) can be taken meanwhile by any outgoing
// connection of the tests, and once was ("bind: address already in use" for
// a server started 0.3 s after its port was chosen, under make test). Below
// the range only another listener can take it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	low := ephemeralLow()
	for range 1000 {
		port := minListenPort + rand.IntN(low-minListenPort)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue // in use: another
		}
		addr := l.Addr().String()
		_ = l.Close()
		return addr
	}
	t.Fatalf("fault: no free port between %d and %d", minListenPort, low)
	return ""
}

// minListenPort is the lowest port FreeAddr gives: above the ports services
// usually listen on.
const minListenPort = 20000

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= minListenPort+1000 {
		return 32768
	}
	return low
}

// Server is one `unifi serve` process, restartable on the same address.
type Server struct {
	Name    string
	Addr    string
	bin     string
	env     map[string]string
	dataDir string

	child
	gen int // guarded by mu
}

// URL is the server's base URL.
func (s *Server) URL() string { return "http://" + s.Addr }

// Instance is the lease owner name of the current (or last) process.
func (s *Server) Instance() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%s.g%d", s.Name, s.gen)
}

// SetEnv sets an environment variable for the server's next process.
func (s *Server) SetEnv(key, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.env[key] = value
}

// Start starts a new process of the server and waits until it answers.
func (s *Server) Start(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("fault: %v", err)
	}
}

func (s *Server) start() error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return fmt.Errorf("start %s: already running", s.Name)
	}
	s.gen++
	env := os.Environ()
	for k, v := range s.env {
		env = append(env, k+"="+v)
	}
	env = append(env, "DATA_DIR="+s.dataDir, fmt.Sprintf("INSTANCE_NAME=%s.g%d", s.Name, s.gen))
	cmd := exec.Command(s.bin, "serve")
	cmd.Env = env
	exited, err := s.launchLocked(s.Name, cmd)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return waitHealthy(s.Name, s.URL()+"/healthz", exited, &s.logs)
}

// Kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (s *Server) Kill(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGKILL)
}

// Stop sends SIGTERM (a graceful stop) and waits for the process to end.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.signal(t, syscall.SIGTERM)
}

func (s *Server) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.child.signal(t, s.Name, sig)
}

// Running reports whether the process is alive.
func (s *Server) Running() bool { return s.running() }

func (s *Server) cleanup() { s.kill() }

// CreateLoad creates tickets, each followed by updates, from several
// writers at once, and returns the tickets in their final version. Every
// change makes one outbound transaction on the demo integration. It may run
// in its own goroutine while the test kills things; when ctx ends it stops
// and returns the tickets made so far without an error.
func (w *World) CreateLoad(ctx context.Context, tickets, updates, writers int) ([]*models.Ticket, error) {
	all := make([]*models.Ticket, tickets)
	var mu sync.Mutex
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for wr := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []int
			for i := wr; i < tickets; i += writers {
				tk, err := w.Store.CreateTicket(ctx, w.Analyst, store.TicketInput{ShortDescription: fmt.Sprintf("fault ticket %d", i)})
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				all[i] = tk
				mu.Unlock()
				mine = append(mine, i)
			}
			for u := range updates {
				for _, i := range mine {
					mu.Lock()
					cur := all[i]
					mu.Unlock()
					in := store.TicketInputOf(cur)
					in.WorkNotes = fmt.Sprintf("update %d", u+1)
					tk, err := w.Store.UpdateTicket(ctx, w.Analyst, cur.ID, cur.Version, in)
					if err != nil {
						errc <- err
						return
					}
					mu.Lock()
					all[i] = tk
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if ctx.Err() == nil {
			return nil, fmt.Errorf("create load: %w", err)
		}
	}
	out := all[:0]
	for _, tk := range all {
		if tk != nil {
			out = append(out, tk)
		}
	}
	return out, nil
}

// States counts the demo integration's outbound transactions by state.
func (w *World) States(t testing.TB) map[models.TransportState]int64 {
	t.Helper()
	var rows []struct {
		State models.TransportState
		N     int64
	}
	if err := w.DB.Raw(`SELECT state, count(*) AS n FROM transactions WHERE integration_id = ? AND direction = ?
		GROUP BY state`, w.Integration.ID, models.Outbound).Scan(&rows).Error; err != nil {
		t.Fatalf("fault: count states: %v", err)
	}
	out := map[models.TransportState]int64{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out
}

// Count is the number of transactions in state s in a States result.
func Count(m map[models.TransportState]int64, s models.TransportState) int64 { return m[s] }

// Total is the number of transactions in a States result.
func Total(m map[models.TransportState]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}

// WaitAll waits until every outbound transaction is in state s and returns
// when that happened; it fails the test with the counts otherwise.
func (w *World) WaitAll(t testing.TB, s models.TransportState, want int64, timeout time.Duration) time.Time {
	t.Helper()
	wait.For(t, timeout, func() (bool, error) {
		got := w.States(t)
		return Count(got, s) == want && Total(got) == want, fmt.Errorf("states %v; peer %+v", got, w.Peer.Stats())
	}, "%d transactions %s", want, s)
	return time.Now()
}

// LastFinished is when the last outbound transaction finished.
func (w *World) LastFinished(t testing.TB) time.Time {
	t.Helper()
	var last *time.Time
	if err := w.DB.Raw(`SELECT max(finished_at) FROM transactions WHERE integration_id = ? AND direction = ?`,
		w.Integration.ID, models.Outbound).Scan(&last).Error; err != nil || last == nil {
		t.Fatalf("fault: last finished: %v", err)
	}
	return *last
}

// Attempts describes the HTTP Requests stored for message id, in order: when
// each was sent, its state, status and error (a failure message's evidence);
// timedOut says whether one got no answer within the sync timeout
// (worker.IsSyncTimeoutError).
func (w *World) Attempts(t testing.TB, id string) (desc string, timedOut bool) {
	t.Helper()
	var rows []struct {
		CreatedAt      time.Time
		State          int
		ResponseStatus *int
		Error          string
	}
	if err := w.DB.Raw(`SELECT h.created_at, h.state, h.response_status, h.error FROM http_requests h
		JOIN transactions t ON t.id = h.transaction_id WHERE t.message_ident = ? ORDER BY h.id`, id).Scan(&rows).Error; err != nil {
		t.Fatalf("fault: attempts: %v", err)
	}
	parts := make([]string, len(rows))
	for i, r := range rows {
		status := "none"
		if r.ResponseStatus != nil {
			status = strconv.Itoa(*r.ResponseStatus)
		} else if worker.IsSyncTimeoutError(r.Error) {
			timedOut = true
		}
		parts[i] = fmt.Sprintf("%s state %d status %s error %q", r.CreatedAt.UTC().Format("15:04:05.000"), r.State, status, r.Error)
	}
	return strings.Join(parts, "; "), timedOut
}

// Leased returns the message ids of the transactions leased by owner (the
// ones a process had in flight).
func (w *World) Leased(t testing.TB, owner string) map[string]bool {
	t.Helper()
	var ids []string
	if err := w.DB.Raw(`SELECT message_ident FROM transactions WHERE lease_owner = ?`, owner).Scan(&ids).Error; err != nil {
		t.Fatalf("fault: leased: %v", err)
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out
}

// Delivery is what the peer received compared with what we sent.
type Delivery struct {
	Bonds        int      // bonds checked
	Delivered    int      // messages applied once by the peer
	Duplicates   []string // message ids the peer refused as already processed
	OrderBroken  []string // bonds whose arrivals differ from the bond's transactions in order
	NotDelivered []string // transactions (not Ignored) the peer never applied
}

// CheckDelivery compares, for every ticket, the bond's outbound
// transactions (Ignored excluded) in queue order with the messages the peer
// applied for it, in arrival order.
func (w *World) CheckDelivery(t testing.TB, tickets []*models.Ticket) Delivery {
	t.Helper()
	var rows []struct {
		TicketID     int64
		MessageIdent string
	}
	if err := w.DB.Raw(`SELECT ticket_id, message_ident FROM transactions WHERE integration_id = ? AND direction = ?
		AND state <> ? ORDER BY ticket_id, seq, id`, w.Integration.ID, models.Outbound, models.Ignored).
		Scan(&rows).Error; err != nil {
		t.Fatalf("fault: %v", err)
	}
	want := map[int64][]string{}
	for _, r := range rows {
		want[r.TicketID] = append(want[r.TicketID], r.MessageIdent)
	}
	arrivals := w.Peer.Bonds()
	var d Delivery
	for _, tk := range tickets {
		d.Bonds++
		var got []string
		for _, a := range arrivals[tk.Number] {
			if a.Duplicate {
				d.Duplicates = append(d.Duplicates, a.SourceID)
				continue
			}
			got = append(got, a.SourceID)
		}
		d.Delivered += len(got)
		if strings.Join(got, ",") != strings.Join(want[tk.ID], ",") {
			d.OrderBroken = append(d.OrderBroken, fmt.Sprintf("%s: sent %v, peer applied %v", tk.Number, want[tk.ID], got))
		}
		seen := map[string]bool{}
		for _, id := range got {
			seen[id] = true
		}
		for _, id := range want[tk.ID] {
			if !seen[id] {
				d.NotDelivered = append(d.NotDelivered, id)
			}
		}
	}
	sort.Strings(d.Duplicates)
	return d
}

// Report logs figures and, when FAULT_RESULTS names a file, appends them to
// it (make soak writes bench/results/soak.txt this way).
func Report(t testing.TB, name string, figures ...any) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", time.Now().UTC().Format(time.RFC3339), name)
	for i := 0; i+1 < len(figures); i += 2 {
		fmt.Fprintf(&b, " %v=%v", figures[i], figures[i+1])
	}
	line := b.String()
	t.Log(line)
	if path := os.Getenv("FAULT_RESULTS"); path != "" {
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("fault: write results: %v", err)
			return
		}
		defer f.Close()
		fmt.Fprintln(f, line)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// UIClient is a browser-like client of one server: cookies, no redirects
// followed, the CSRF token taken from the last page.
type UIClient struct {
	t    testing.TB
	base string
	HTTP *http.Client
}

var csrfRe = regexp.MustCompile(`name="_csrf" value="([^"]+)"|name="csrf-token" content="([^"]+)"`)

// Login logs in to s as name and returns the client.
func (s *Server) Login(t testing.TB, name, password string) *UIClient {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &UIClient{t: t, base: s.URL(), HTTP: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	status, _ := c.PostForm("/login", "/login", url.Values{"name": {name}, "password": {password}})
	if status != http.StatusSeeOther {
		t.Fatalf("fault: log in as %s: status %d", name, status)
	}
	return c
}

// Get fetches path and returns the status and body.
func (c *UIClient) Get(path string) (int, string) {
	c.t.Helper()
	res, err := c.HTTP.Get(c.base + path)
	if err != nil {
		c.t.Fatalf("fault: GET %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// PostForm posts form to path with the CSRF token of the page at from.
func (c *UIClient) PostForm(from, path string, form url.Values) (int, string) {
	c.t.Helper()
	_, page := c.Get(from)
	m := csrfRe.FindStringSubmatch(page)
	if m == nil {
		c.t.Fatalf("fault: no CSRF token on %s", from)
	}
	form.Set("_csrf", m[1]+m[2])
	res, err := c.HTTP.PostForm(c.base+path, form)
	if err != nil {
		c.t.Fatalf("fault: POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// SecretLeaks counts the places where the demo connection's token (or the
// peer account's password) shows in clear: stored HTTP Requests (headers and
// bodies, both directions) and every server's log.
func (w *World) SecretLeaks(t testing.TB) int {
	t.Helper()
	secrets := []string{models.DemoPeerToken, models.DemoPeerAccount.Password}
	n := 0
	for _, sec := range secrets {
		var c int64
		if err := w.DB.Raw(`SELECT count(*) FROM http_requests WHERE strpos(request_headers::text, ?) > 0
			OR strpos(response_headers::text, ?) > 0 OR strpos(request_body, ?) > 0 OR strpos(response_body, ?) > 0`,
			sec, sec, sec, sec).Scan(&c).Error; err != nil {
			t.Fatalf("fault: %v", err)
		}
		n += int(c)
		for _, s := range w.Servers {
			n += strings.Count(s.Logs(), sec)
		}
	}
	return n
}

// StoredRequests is the number of HTTP Request records.
func (w *World) StoredRequests(t testing.TB) int64 {
	t.Helper()
	var n int64
	if err := w.DB.Raw(`SELECT count(*) FROM http_requests`).Scan(&n).Error; err != nil {
		t.Fatalf("fault: %v", err)
	}
	return n
}

// Tickets returns every ticket with a transaction on the demo integration:
// after a load was cut short, a change may have committed though its caller
// saw the cancellation.
func (w *World) Tickets(t testing.TB) []*models.Ticket {
	t.Helper()
	var out []*models.Ticket
	if err := w.DB.Where("id IN (SELECT ticket_id FROM transactions WHERE integration_id = ?)", w.Integration.ID).
		Order("id").Find(&out).Error; err != nil {
		t.Fatalf("fault: tickets: %v", err)
	}
	return out
}
