package servicenow_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"unifi/internal/sim"
	"unifi/internal/sim/servicenow"
	"unifi/internal/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	user     = "unifi.integration"
	password = "sn-secret"
	agent    = "agent"
	agentPw  = "agent-secret"
)

// receiver stands in for our inbound endpoint: it records webhook bodies
// and can fail the first deliveries.
type receiver struct {
	mu       sync.Mutex
	bodies   []map[string]string
	auth     []string
	failNext int
	refuse   int // answer 400 to this many deliveries first
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u, p, _ := req.BasicAuth()
	r.auth = append(r.auth, u+":"+p)
	if r.failNext > 0 {
		r.failNext--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if r.refuse > 0 {
		r.refuse--
		http.Error(w, `{"error":"Message not recognised"}`, http.StatusBadRequest)
		return
	}
	var b map[string]string
	_ = json.NewDecoder(req.Body).Decode(&b)
	r.bodies = append(r.bodies, b)
	w.WriteHeader(http.StatusAccepted)
}

func (r *receiver) got() []map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]map[string]string(nil), r.bodies...)
}

type bundle struct {
	sim  *servicenow.Sim
	url  string
	clk  *sim.Clock
	recv *receiver
}

func setup(t *testing.T) *bundle {
	t.Helper()
	recv := &receiver{}
	rs := httptest.NewServer(recv)
	clk := sim.NewClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	s, err := servicenow.New(servicenow.Opts{User: user, Password: password, AgentUser: agent, AgentPassword: agentPw,
		Now: clk.Now, Webhook: servicenow.WebhookOpts{URL: rs.URL + "/api/v1/integrations/sn/messages",
			User: "sn-in", Password: "in-secret", Backoff: 10 * time.Millisecond}})
	require.NoError(t, err)
	srv := httptest.NewServer(s.Frame())
	t.Cleanup(func() { s.Frame().Close(); srv.Close(); rs.Close() })
	return &bundle{sim: s, url: srv.URL, clk: clk, recv: recv}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (b *bundle) call(t *testing.T, method, path string, body any, auth ...string) answer {
	t.Helper()
	c := sim.Client{Base: b.url, User: user, Secret: password}
	if len(auth) > 0 {
		c.User, c.Secret = auth[0], auth[len(auth)-1]
	}
	got, err := c.Do(method, path, body)
	require.NoError(t, err)
	a := answer{status: got.Status, header: got.Header}
	if len(got.Body) > 0 {
		require.NoError(t, got.Decode(&a.body))
	}
	return a
}

func result(a answer) map[string]any { return a.body["result"].(map[string]any) }

func insert(t *testing.T, b *bundle, fields map[string]any, auth ...string) map[string]any {
	t.Helper()
	a := b.call(t, "POST", "/api/now/table/incident", fields, auth...)
	require.Equal(t, http.StatusCreated, a.status, "%v", a.body)
	return result(a)
}

func TestIncidentInsertGetUpdate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := insert(t, b, map[string]any{"short_description": "VPN down", "impact": 1, "urgency": "2",
		"priority": "5", "correlation_id": "TCK0001", "u_source": "unifi", "nonsense": "ignored"})
	require.Len(t, rec["sys_id"], 32)
	require.Equal(t, "INC0010001", rec["number"])
	require.Equal(t, "1", rec["state"])
	require.Equal(t, "2", rec["priority"], "priority follows impact and urgency; writing it is ignored")
	require.Equal(t, "0", rec["sys_mod_count"])
	require.Equal(t, "2026-12-05 10:00:00", rec["sys_updated_on"])
	require.Equal(t, "unifi", rec["u_source"])
	require.NotContains(t, rec, "nonsense")
	id := rec["sys_id"].(string)

	b.clk.Set(b.clk.Now().Add(time.Minute))
	a := b.call(t, "PATCH", "/api/now/table/incident/"+id, map[string]any{"state": "2", "work_notes": "Checking the tunnel",
		"comments": "We are on it"})
	require.Equal(t, http.StatusOK, a.status)
	got := result(a)
	require.Equal(t, "2", got["state"])
	require.Equal(t, "1", got["sys_mod_count"])
	require.Equal(t, "", got["work_notes"], "journal fields read empty without display values")
	require.Equal(t, "2026-12-05 10:01:00", got["sys_updated_on"])

	a = b.call(t, "PUT", "/api/now/table/incident/"+id, map[string]any{"work_notes": "Second note"})
	require.Equal(t, http.StatusOK, a.status)
	got = result(b.call(t, "GET", "/api/now/table/incident/"+id+"?sysparm_display_value=true&sysparm_fields=number,work_notes,comments", nil))
	require.Equal(t, map[string]any{"number": "INC0010001",
		"work_notes": "2026-12-05 10:01:00 - unifi.integration (Work notes)\nSecond note\n\n" +
			"2026-12-05 10:01:00 - unifi.integration (Work notes)\nChecking the tunnel\n\n",
		"comments": "2026-12-05 10:01:00 - unifi.integration (Additional comments)\nWe are on it\n\n"}, got)

	a = b.call(t, "GET", "/api/now/table/sys_journal_field?sysparm_query="+url.QueryEscape("element_id="+id+"^element=work_notes^ORDERBYsys_created_on"), nil)
	require.Equal(t, http.StatusOK, a.status)
	entries := a.body["result"].([]any)
	require.Len(t, entries, 2)
	require.Equal(t, "Checking the tunnel", entries[0].(map[string]any)["value"])

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		a := b.call(t, "PATCH", "/api/now/table/incident/0123456789abcdef0123456789abcdef", map[string]any{"state": "2"})
		require.Equal(t, http.StatusNotFound, a.status)
		require.Equal(t, "failure", a.body["status"])
		require.Equal(t, "No Record found", a.body["error"].(map[string]any)["message"])
	})
	t.Run("ResolveNeedsCloseInfo", func(t *testing.T) {
		t.Parallel()
		rec := insert(t, b, map[string]any{"short_description": "to resolve"})
		path := "/api/now/table/incident/" + rec["sys_id"].(string)
		a := b.call(t, "PATCH", path, map[string]any{"state": "6", "close_code": "Solved (Permanently)"})
		require.Equal(t, http.StatusForbidden, a.status)
		require.Contains(t, a.body["error"].(map[string]any)["detail"], "Data Policy Exception")
		require.Contains(t, a.body["error"].(map[string]any)["detail"], "Resolution notes")
		require.Equal(t, "1", result(b.call(t, "GET", path, nil))["state"], "a refused update changes nothing")
		a = b.call(t, "PATCH", path, map[string]any{"state": "6", "close_code": "Solved (Permanently)", "close_notes": "Rebooted"})
		require.Equal(t, http.StatusOK, a.status)
		require.NotEmpty(t, result(a)["resolved_at"])
	})
}

// list runs a Table API query and returns the numbers and X-Total-Count.
func list(t *testing.T, b *bundle, query string, extra string) ([]string, string, answer) {
	t.Helper()
	a := b.call(t, "GET", "/api/now/table/incident?sysparm_query="+url.QueryEscape(query)+extra, nil)
	require.Equal(t, http.StatusOK, a.status, "%v", a.body)
	var nums []string
	for _, r := range a.body["result"].([]any) {
		nums = append(nums, r.(map[string]any)["number"].(string))
	}
	return nums, a.header.Get("X-Total-Count"), a
}

func TestQueryAndPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	at := func(s string) {
		tm, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		b.clk.Set(tm)
	}
	at("2026-12-05T10:59:59Z")
	r1 := insert(t, b, map[string]any{"short_description": "before", "assignment_group": "net"})
	n1 := r1["number"].(string)
	at("2026-12-05T11:00:00Z")
	n2 := insert(t, b, map[string]any{"short_description": "on the second", "assignment_group": "net"})["number"].(string)
	n3 := insert(t, b, map[string]any{"short_description": "other group", "assignment_group": "db"})["number"].(string)
	at("2026-12-05T11:00:01Z")
	first := insert(t, b, map[string]any{"short_description": "later"})
	n4 := first["number"].(string)
	at("2026-12-05T11:00:02Z")
	// An older incident changed later moves to the end of ORDERBYsys_updated_on.
	require.Equal(t, http.StatusOK, b.call(t, "PATCH", "/api/now/table/incident/"+r1["sys_id"].(string), map[string]any{"work_notes": "x"}).status)
	nums, _, _ := list(t, b, "number="+n1, "")
	require.Equal(t, []string{n1}, nums)

	tests := []struct {
		name, query string
		want        []string
	}{
		{"AtOrAfter", "sys_updated_on>=2026-12-05 11:00:00^ORDERBYsys_updated_on", []string{n2, n3, n4, n1}},
		{"AndField", "sys_updated_on>=2026-12-05 11:00:00^assignment_group=net^ORDERBYsys_updated_on", []string{n2, n1}},
		{"After", "sys_updated_on>2026-12-05 11:00:00", []string{n1, n4}},
		{"Before", "sys_updated_on<2026-12-05 11:00:00", nil},
		{"DateGenerate", "sys_updated_on>=javascript:gs.dateGenerate('2026-12-05','11:00:00')^ORDERBYDESCnumber", []string{n4, n3, n2, n1}},
		{"Like", "short_descriptionLIKEgroup", []string{n3}},
		{"In", "assignment_groupINdb,net^ORDERBYDESCsys_created_on^ORDERBYnumber", []string{n2, n3, n1}},
		{"Empty", "assignment_groupISEMPTY", []string{n4}},
		{"Numeric", "priority>=5^active=true", []string{n1, n2, n3, n4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nums, total, _ := list(t, b, tc.query, "")
			require.Equal(t, tc.want, nums)
			require.Equal(t, len(tc.want), atoi(t, total))
		})
	}
	t.Run("Pages", func(t *testing.T) {
		t.Parallel()
		nums, total, a := list(t, b, "ORDERBYnumber", "&sysparm_limit=2&sysparm_offset=1")
		require.Equal(t, []string{n2, n3}, nums)
		require.Equal(t, "4", total)
		require.Contains(t, a.header.Get("Link"), `rel="next"`)
		require.Contains(t, a.header.Get("Link"), `sysparm_offset=3`)
	})
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		for _, q := range []string{"colour=red", "state=1^ORstate=2", "sys_updated_on~~x"} {
			a := b.call(t, "GET", "/api/now/table/incident?sysparm_query="+url.QueryEscape(q), nil)
			require.Equal(t, http.StatusBadRequest, a.status, q)
			require.Equal(t, "failure", a.body["status"], q)
		}
	})
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	require.NoError(t, json.Unmarshal([]byte(s), &n))
	return n
}

func TestWebhookRetriesAndOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// The integration user's own changes do not echo back.
	rec := insert(t, b, map[string]any{"short_description": "from unifi", "correlation_id": "TCK0007"})
	id := rec["sys_id"].(string)

	b.recv.mu.Lock()
	b.recv.failNext = 2
	b.recv.mu.Unlock()
	for i, note := range []string{"first", "second", "third"} {
		body := map[string]any{"work_notes": note}
		if i == 1 {
			body["urgency"] = "1"
		}
		require.Equal(t, http.StatusOK, b.call(t, "PATCH", "/api/now/table/incident/"+id, body, agent, agentPw).status)
	}
	require.Equal(t, http.StatusOK, b.call(t, "PATCH", "/api/now/table/incident/"+id, map[string]any{"urgency": "1"}, agent, agentPw).status,
		"a change that changes nothing")
	// The simulator counts a delivery once the receiver's answer is back, just after the receiver saw it.
	wait.For(t, 10*time.Second, func() (bool, error) { return b.sim.WebhookStats().Sent == 3, nil }, "three deliveries")
	got := b.recv.got()
	for i, note := range []string{"first", "second", "third"} {
		require.Equal(t, note, got[i]["work_notes"], "deliveries keep the order of the changes")
		require.Equal(t, "update", got[i]["operation"])
		require.Equal(t, rec["number"], got[i]["number"])
		require.Equal(t, "TCK0007", got[i]["correlation_id"])
		require.Equal(t, "agent", got[i]["sys_updated_by"])
	}
	require.Equal(t, "3", got[1]["priority"], "impact 3 and urgency 1 make priority 3")
	require.Equal(t, []string{"1", "2", "3"}, []string{got[0]["sys_mod_count"], got[1]["sys_mod_count"], got[2]["sys_mod_count"]})
	st := b.sim.WebhookStats()
	require.EqualValues(t, 3, st.Sent)
	require.EqualValues(t, 2, st.Retries)
	require.EqualValues(t, 0, st.Failed)
	b.recv.mu.Lock()
	require.Equal(t, "sn-in:in-secret", b.recv.auth[0])
	require.Len(t, b.recv.auth, 5, "two failed attempts, then three deliveries; the no-op change sent nothing")
	b.recv.mu.Unlock()

	// The webhook can be pointed elsewhere while the simulator runs.
	a := b.call(t, "POST", "/webhook", map[string]any{"url": "http://127.0.0.1:1/nowhere"}, "")
	require.Equal(t, http.StatusOK, a.status)
	require.Equal(t, "http://127.0.0.1:1/nowhere", a.body["url"])
}

func TestWebhookGivesUpOnRefusal(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.recv.mu.Lock()
	b.recv.refuse = 1
	b.recv.mu.Unlock()
	insert(t, b, map[string]any{"short_description": "refused"}, agent, agentPw)
	insert(t, b, map[string]any{"short_description": "accepted"}, agent, agentPw)
	// The simulator counts a delivery once the receiver's answer is back, just after the receiver saw it.
	wait.For(t, 10*time.Second, func() (bool, error) { return b.sim.WebhookStats().Sent == 1, nil }, "the second delivery")
	require.Equal(t, "accepted", b.recv.got()[0]["short_description"])
	require.Equal(t, "insert", b.recv.got()[0]["operation"])
	st := b.sim.WebhookStats()
	require.EqualValues(t, 1, st.Failed, "a 400 is not retried")
	require.EqualValues(t, 0, st.Retries)
	a := b.call(t, "GET", "/webhook", nil, "")
	recent := a.body["recent"].([]any)
	require.Len(t, recent, 2)
	require.Contains(t, recent[0].(map[string]any)["error"], "Message not recognised")
	require.Equal(t, "sn-in", a.body["user"])
	require.NotContains(t, a.body, "password", "the control endpoint shows no secret")
}

func TestAuthAndFailureModes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for name, auth := range map[string][]string{"None": {""}, "WrongPassword": {user, "nope"}, "Unknown": {"bob", password}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := b.call(t, "GET", "/api/now/table/incident", nil, auth...)
			require.Equal(t, http.StatusUnauthorized, a.status)
			require.Equal(t, "User Not Authenticated", a.body["error"].(map[string]any)["message"])
		})
	}
	t.Run("Fail500", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		require.Equal(t, http.StatusOK, b.call(t, "POST", "/control", map[string]any{"mode": "fail500"}, "").status)
		a := b.call(t, "POST", "/api/now/table/incident", map[string]any{"short_description": "x"})
		require.Equal(t, http.StatusInternalServerError, a.status)
		require.Equal(t, "failure", a.body["status"])
		require.EqualValues(t, 1, b.sim.Frame().Stats().FailureModes)
	})
}
