package fault

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"unifi/internal/failmode"
	"unifi/internal/sim"
	"unifi/internal/sim/servicenow"
)

// The simulators StartSim runs (`unifi sim KIND`).
const (
	SimJira       = "jira"
	SimServiceNow = "servicenow"
)

// SimOpts configures a simulator process.
type SimOpts struct {
	Addr string   // where it listens [a free loopback address]
	Args []string // further flags of `unifi sim KIND`, e.g. "-rate-limit", "5" or "-webhook-url", URL
}

// SimProcess is one `unifi sim jira|servicenow` process, restartable on the
// same address (its records live in memory: a restart forgets them).
type SimProcess struct {
	Kind string
	Addr string
	// User and Secret are the API's credentials (basic auth): for jira the
	// e-mail address and API token, for servicenow the integration user
	// and password (its changes do not fire the webhook).
	User, Secret string
	// AgentUser and AgentSecret: a person's account (servicenow: an agent,
	// whose changes fire the webhook; jira: its comments show its name).
	AgentUser, AgentSecret string

	bin  string
	args []string
	child
}

// StartSim starts `unifi sim kind` (the binary Binary builds, so the
// package's TestMain must be fault.Main) with made-up credentials and waits
// until it answers; it is killed at cleanup.
func StartSim(t testing.TB, kind string, o SimOpts) *SimProcess {
	t.Helper()
	if kind != SimJira && kind != SimServiceNow {
		t.Fatalf("fault: no simulator %q (use fault.SimJira or fault.SimServiceNow)", kind)
	}
	if o.Addr == "" {
		o.Addr = FreeAddr(t)
	}
	s := &SimProcess{Kind: kind, Addr: o.Addr, bin: Binary(t), Secret: secret(), AgentSecret: secret()}
	args := []string{"sim", kind, "-addr", o.Addr}
	switch kind {
	case SimJira:
		s.User, s.AgentUser = "sim@example.com", "agent@example.com"
		args = append(args, "-user", s.User, "-token", s.Secret, "-agent", s.AgentUser, "-agent-token", s.AgentSecret)
	case SimServiceNow:
		s.User, s.AgentUser = "unifi.integration", "agent"
		args = append(args, "-user", s.User, "-password", s.Secret, "-agent", s.AgentUser, "-agent-password", s.AgentSecret)
	}
	s.args = append(args, o.Args...)
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("fault: last output of the %s simulator:\n%s", kind, tail(s.Logs(), 4000))
		}
	})
	s.Start(t)
	return s
}

func secret() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// URL is the simulator's base URL.
func (s *SimProcess) URL() string { return "http://" + s.Addr }

// Start starts a new process on the same address and waits until it answers.
func (s *SimProcess) Start(t testing.TB) {
	t.Helper()
	s.mu.Lock()
	exited, err := s.launchLocked(s.Kind+" simulator", exec.Command(s.bin, s.args...))
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("fault: %v", err)
	}
	if err := waitHealthy(s.Kind+" simulator", s.URL()+"/healthz", exited, &s.logs); err != nil {
		t.Fatalf("fault: %v", err)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (s *SimProcess) Kill(t testing.TB) { t.Helper(); s.signal(t, syscall.SIGKILL) }

// Stop sends SIGTERM and waits for the process to end.
func (s *SimProcess) Stop(t testing.TB) { t.Helper(); s.signal(t, syscall.SIGTERM) }

func (s *SimProcess) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	s.child.signal(t, s.Kind+" simulator", sig)
}

// Running reports whether the process is alive.
func (s *SimProcess) Running() bool { return s.running() }

// Call sends an API request with the integration user's credentials (see
// CallAs) and returns the status; a JSON answer is decoded into out (nil:
// discarded).
func (s *SimProcess) Call(t testing.TB, method, path string, body, out any) int {
	t.Helper()
	return s.CallAs(t, s.User, s.Secret, method, path, body, out)
}

// CallAs is Call with other credentials ("" user: none). For servicenow,
// s.AgentUser and s.AgentSecret make a change that fires the webhook.
func (s *SimProcess) CallAs(t testing.TB, user, secret, method, path string, body, out any) int {
	t.Helper()
	status, _ := s.do(t, user, secret, method, path, body, out)
	return status
}

func (s *SimProcess) do(t testing.TB, user, secret, method, path string, body, out any) (int, http.Header) {
	t.Helper()
	a, err := sim.Client{Base: s.URL(), User: user, Secret: secret}.Do(method, path, body)
	if err != nil {
		t.Fatalf("fault: the %s simulator: %v", s.Kind, err)
	}
	if out != nil && len(a.Body) > 0 && strings.HasPrefix(a.Header.Get("Content-Type"), "application/json") {
		if err := a.Decode(out); err != nil {
			t.Fatalf("fault: %s %s: %v", method, path, err)
		}
	}
	return a.Status, a.Header
}

// control posts body to one of the control endpoints and decodes the answer.
func (s *SimProcess) control(t testing.TB, path string, body, out any) {
	t.Helper()
	if status, _ := s.do(t, "", "", http.MethodPost, path, body, out); status != http.StatusOK {
		t.Fatalf("fault: POST %s on the %s simulator answered %d", path, s.Kind, status)
	}
}

// SetControl changes the failure mode and the rate limit (POST /control)
// and returns the settings now in force.
func (s *SimProcess) SetControl(t testing.TB, c sim.Control) sim.Control {
	t.Helper()
	var out sim.Control
	s.control(t, "/control", c, &out)
	return out
}

// SetMode is SetControl for the failure mode alone.
func (s *SimProcess) SetMode(t testing.TB, m failmode.Mode) {
	t.Helper()
	s.SetControl(t, sim.Control{Control: failmode.Control{Mode: m}})
}

// Seed makes records in bulk (POST /seed; the bodies are jira.SeedOpts and
// servicenow.SeedOpts) and returns the answer (count, first, last).
func (s *SimProcess) Seed(t testing.TB, body any) map[string]any {
	t.Helper()
	var out map[string]any
	s.control(t, "/seed", body, &out)
	return out
}

// Reset makes the simulator forget every record (POST /reset).
func (s *SimProcess) Reset(t testing.TB) {
	t.Helper()
	s.control(t, "/reset", map[string]any{}, nil)
}

// Records decodes GET /records into out: for jira {"total", "issues": [issue
// as GET /rest/api/2/issue shows it]}, for servicenow {"total", "result":
// [incident with journal display values], "webhook": counters}.
func (s *SimProcess) Records(t testing.TB, out any) {
	t.Helper()
	if status, _ := s.do(t, "", "", http.MethodGet, "/records", nil, out); status != http.StatusOK {
		t.Fatalf("fault: GET /records on the %s simulator answered %d", s.Kind, status)
	}
}

// Stats returns the API counters (requests, unauthorized, rate limited,
// failure modes).
func (s *SimProcess) Stats(t testing.TB) sim.Stats {
	t.Helper()
	var out sim.Stats
	if status, _ := s.do(t, "", "", http.MethodGet, "/stats", nil, &out); status != http.StatusOK {
		t.Fatalf("fault: GET /stats on the %s simulator answered %d", s.Kind, status)
	}
	return out
}

// WebhookState is GET /webhook of the servicenow simulator.
type WebhookState struct {
	URL    string                  `json:"url"`
	User   string                  `json:"user"`
	Auth   string                  `json:"auth"`
	Stats  servicenow.WebhookStats `json:"stats"`
	Recent []servicenow.Delivery   `json:"recent"`
}

// SetWebhook points the servicenow simulator's webhook (POST /webhook),
// e.g. at a server's inbound endpoint once its address is known.
func (s *SimProcess) SetWebhook(t testing.TB, c servicenow.WebhookControl) WebhookState {
	t.Helper()
	if s.Kind != SimServiceNow {
		t.Fatalf("fault: the %s simulator has no webhook", s.Kind)
	}
	var out WebhookState
	s.control(t, "/webhook", c, &out)
	return out
}

// Webhook returns the webhook's target, counters and last deliveries.
func (s *SimProcess) Webhook(t testing.TB) WebhookState {
	t.Helper()
	var out WebhookState
	if status, _ := s.do(t, "", "", http.MethodGet, "/webhook", nil, &out); status != http.StatusOK {
		t.Fatalf("fault: GET /webhook on the %s simulator answered %d", s.Kind, status)
	}
	return out
}

// String names the simulator in messages.
func (s *SimProcess) String() string { return fmt.Sprintf("%s simulator at %s", s.Kind, s.URL()) }
