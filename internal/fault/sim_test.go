package fault_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/failmode"
	"unifi/internal/fault"
	"unifi/internal/sim/servicenow"
	"unifi/internal/wait"
)

// waitBanner waits until the simulator has printed each line of its start
// banner (the credentials): it prints them once it listens, so they may
// still be coming when its /healthz first answers.
func waitBanner(t *testing.T, s *fault.SimProcess, lines ...string) {
	t.Helper()
	wait.For(t, 10*time.Second, func() (bool, error) {
		logs := s.Logs()
		for _, l := range lines {
			if !strings.Contains(logs, l) {
				return false, fmt.Errorf("no %q in the output so far: %q", l, logs)
			}
		}
		return true, nil
	}, "the credentials printed at start")
}

// TestSimJiraProcess runs `unifi sim jira` as a process: it prints its
// credentials, answers the API with them, pages 10,000 issues quickly,
// honours the control endpoint, and forgets its records when restarted.
func TestSimJiraProcess(t *testing.T) {
	t.Parallel()
	s := fault.StartSim(t, fault.SimJira, fault.SimOpts{})
	waitBanner(t, s, "user sim@example.com API token "+s.Secret)

	var created map[string]string
	require.Equal(t, http.StatusCreated, s.Call(t, "POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{
		"project": map[string]string{"key": "SIM"}, "summary": "From the test", "issuetype": map[string]string{"name": "Task"}}}, &created))
	require.Equal(t, "SIM-1", created["key"])
	require.Equal(t, http.StatusUnauthorized, s.CallAs(t, s.User, "wrong", "GET", "/rest/api/2/issue/SIM-1", nil, nil))
	var comment struct {
		Author struct {
			Name string `json:"name"`
		} `json:"author"`
	}
	require.Equal(t, http.StatusCreated, s.CallAs(t, s.AgentUser, s.AgentSecret, "POST", "/rest/api/2/issue/SIM-1/comment",
		map[string]string{"body": "A person's comment"}, &comment))
	require.Equal(t, "agent@example.com", comment.Author.Name)

	seeded := s.Seed(t, map[string]any{"count": 10_000, "updated_from": "2026-01-01T00:00:00Z", "step_ms": 100})
	require.Equal(t, "SIM-10001", seeded["last"])
	start := time.Now()
	n, pages := 0, 0
	for {
		var page struct {
			Total  int `json:"total"`
			Issues []struct {
				Key string `json:"key"`
			} `json:"issues"`
		}
		require.Equal(t, http.StatusOK, s.Call(t, "POST", "/rest/api/2/search", map[string]any{
			"jql": `updated >= "2026-01-01 00:00" AND updated < "2026-01-02" ORDER BY updated ASC`, "startAt": n, "maxResults": 100,
			"fields": []string{"summary", "status", "priority", "updated"}}, &page))
		pages++
		n += len(page.Issues)
		if len(page.Issues) == 0 || n >= page.Total {
			require.Equal(t, 10_000, page.Total, "the seeded issues, not the one created now")
			break
		}
	}
	elapsed := time.Since(start)
	fault.Report(t, "sim-jira-search", "issues", n, "pages", pages, "ms", elapsed.Milliseconds())
	require.Less(t, elapsed, 10*time.Second)

	s.SetMode(t, failmode.Fail429)
	status, retryAfter := callHeader(t, s, "/rest/api/2/issue/SIM-1")
	require.Equal(t, http.StatusTooManyRequests, status)
	require.Equal(t, "1", retryAfter)
	s.SetMode(t, failmode.OK)
	require.EqualValues(t, 1, s.Stats(t).FailureModes)

	s.Kill(t)
	s.Start(t)
	require.Equal(t, http.StatusNotFound, s.Call(t, "GET", "/rest/api/2/issue/SIM-1", nil, nil), "records live in memory")
}

func callHeader(t *testing.T, s *fault.SimProcess, path string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL()+path, nil)
	require.NoError(t, err)
	req.SetBasicAuth(s.User, s.Secret)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Retry-After")
}

// TestSimServiceNowProcess runs `unifi sim servicenow` as a process: an
// agent's change reaches the webhook's receiver, after the receiver failed
// once; the integration user's own change does not echo.
func TestSimServiceNowProcess(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var got []map[string]string
	fails := 1
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if u, p, _ := r.BasicAuth(); u != "in" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		got = append(got, b)
	}))
	t.Cleanup(recv.Close)
	s := fault.StartSim(t, fault.SimServiceNow, fault.SimOpts{Args: []string{"-webhook-backoff", "20ms"}})
	waitBanner(t, s, "user unifi.integration password "+s.Secret, "user agent password "+s.AgentSecret)
	url := recv.URL + "/api/v1/integrations/sn/messages"
	user, pw := "in", "pw"
	require.Equal(t, url, s.SetWebhook(t, servicenow.WebhookControl{URL: &url, User: &user, Password: &pw}).URL)

	var created struct {
		Result map[string]string `json:"result"`
	}
	require.Equal(t, http.StatusCreated, s.Call(t, "POST", "/api/now/table/incident",
		map[string]any{"short_description": "From unifi", "correlation_id": "TCK1"}, &created))
	require.Equal(t, "INC0010001", created.Result["number"])
	require.Equal(t, http.StatusOK, s.CallAs(t, s.AgentUser, s.AgentSecret, "PATCH", "/api/now/table/incident/"+created.Result["sys_id"],
		map[string]any{"work_notes": "Agent looked", "state": "2"}, nil))

	wait.For(t, 20*time.Second, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 1, nil
	}, "the webhook delivery")
	mu.Lock()
	require.Equal(t, "Agent looked", got[0]["work_notes"])
	require.Equal(t, "2", got[0]["state"])
	require.Equal(t, "TCK1", got[0]["correlation_id"])
	mu.Unlock()
	// The simulator counts a delivery once the receiver's answer is back, just after the receiver saw it.
	wait.For(t, 20*time.Second, func() (bool, error) { return s.Webhook(t).Stats.Sent == 1, nil }, "the delivery counted")
	wh := s.Webhook(t)
	require.EqualValues(t, 1, wh.Stats.Sent)
	require.EqualValues(t, 1, wh.Stats.Retries)

	var recs struct {
		Result []map[string]string `json:"result"`
	}
	s.Records(t, &recs)
	require.Len(t, recs.Result, 1)
	require.True(t, strings.HasSuffix(recs.Result[0]["work_notes"], "Agent looked\n\n"))
	_, page := getPage(t, s.URL()+"/")
	require.Contains(t, page, "INC0010001")
	require.Contains(t, page, `data-testid="sim-records"`)
}

func getPage(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	var b strings.Builder
	_, err = io.Copy(&b, res.Body)
	require.NoError(t, err)
	return res.StatusCode, b.String()
}
