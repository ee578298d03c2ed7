package jira_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"unifi/internal/sim"
	"unifi/internal/sim/jira"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	user  = "bot@example.com"
	token = "api-token-1"
)

// clock is a settable clock for the simulator.

type bundle struct {
	sim *jira.Sim
	url string
	clk *sim.Clock
}

func setup(t *testing.T, o jira.Opts) *bundle {
	t.Helper()
	clk := sim.NewClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	o.User, o.Token = user, token
	if o.Now == nil {
		o.Now = clk.Now
	}
	s, err := jira.New(o)
	require.NoError(t, err)
	srv := httptest.NewServer(s.Frame())
	t.Cleanup(func() { s.Frame().Close(); srv.Close() })
	return &bundle{sim: s, url: srv.URL, clk: clk}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

// call sends body (JSON) with basic auth as user:pass ("" user: none).
func (b *bundle) call(t *testing.T, method, path string, body any, auth ...string) answer {
	t.Helper()
	c := sim.Client{Base: b.url, User: user, Secret: token}
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

func fieldsOf(a answer) map[string]any { return a.body["fields"].(map[string]any) }

func create(t *testing.T, b *bundle, project, summary string) string {
	t.Helper()
	a := b.call(t, "POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{
		"project": map[string]string{"key": project}, "summary": summary, "issuetype": map[string]string{"name": "Task"}}})
	require.Equal(t, http.StatusCreated, a.status, "%v", a.body)
	return a.body["key"].(string)
}

func TestIssueCreateGetEdit(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{Projects: []string{"SIM", "OPS"}})

	a := b.call(t, "POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{
		"project": map[string]string{"key": "OPS"}, "summary": "Printer on fire", "description": "3rd floor",
		"issuetype": map[string]string{"name": "Bug"}, "priority": map[string]string{"name": "High"},
		"labels": []string{"b", "a"}, "customfield_10010": "INC0001"}})
	require.Equal(t, http.StatusCreated, a.status)
	require.Equal(t, "OPS-1", a.body["key"])
	id := a.body["id"].(string)
	require.Equal(t, b.url+"/rest/api/2/issue/"+id, a.body["self"])

	for _, ref := range []string{"OPS-1", id} {
		got := b.call(t, "GET", "/rest/api/2/issue/"+ref, nil)
		require.Equal(t, http.StatusOK, got.status)
		f := fieldsOf(got)
		require.Equal(t, "Printer on fire", f["summary"])
		require.Equal(t, "High", f["priority"].(map[string]any)["name"])
		require.Equal(t, "To Do", f["status"].(map[string]any)["name"])
		require.Equal(t, "Bug", f["issuetype"].(map[string]any)["name"])
		require.Equal(t, []any{"a", "b"}, f["labels"])
		require.Equal(t, "INC0001", f["customfield_10010"])
		require.Equal(t, "2026-12-05T10:00:00.000+0000", f["updated"])
	}

	b.clk.Set(b.clk.Now().Add(90 * time.Second))
	a = b.call(t, "PUT", "/rest/api/2/issue/OPS-1", map[string]any{
		"fields": map[string]any{"summary": "Printer out", "priority": map[string]string{"id": "1"}},
		"update": map[string]any{"labels": []map[string]string{{"add": "c"}, {"remove": "a"}},
			"comment": []map[string]any{{"add": map[string]string{"body": "via edit"}}}}})
	require.Equal(t, http.StatusNoContent, a.status, "%v", a.body)
	f := fieldsOf(b.call(t, "GET", "/rest/api/2/issue/OPS-1?fields=summary,priority,labels,updated,comment", nil))
	require.Equal(t, "Printer out", f["summary"])
	require.Equal(t, "Highest", f["priority"].(map[string]any)["name"])
	require.Equal(t, []any{"b", "c"}, f["labels"])
	require.Equal(t, "2026-12-05T10:01:30.000+0000", f["updated"])
	require.EqualValues(t, 1, f["comment"].(map[string]any)["total"])
	require.NotContains(t, f, "status", "fields= limits the view")

	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		a := b.call(t, "POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{
			"project": map[string]string{"key": "NOPE"}, "issuetype": map[string]string{"name": "Task"}}})
		require.Equal(t, http.StatusBadRequest, a.status)
		errs := a.body["errors"].(map[string]any)
		require.Equal(t, "valid project is required", errs["project"])
		require.Equal(t, "You must specify a summary of the issue.", errs["summary"])

		a = b.call(t, "PUT", "/rest/api/2/issue/OPS-1", map[string]any{"fields": map[string]any{
			"status": map[string]string{"name": "Done"}, "summary": "not applied"}})
		require.Equal(t, http.StatusBadRequest, a.status)
		require.Contains(t, a.body["errors"].(map[string]any)["status"], "cannot be set")
		require.Equal(t, "Printer out", fieldsOf(b.call(t, "GET", "/rest/api/2/issue/OPS-1", nil))["summary"],
			"an edit with a refused field changes nothing")
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		a := b.call(t, "GET", "/rest/api/2/issue/OPS-999", nil)
		require.Equal(t, http.StatusNotFound, a.status)
		require.Equal(t, []any{"Issue does not exist or you do not have permission to see it."}, a.body["errorMessages"])
	})
}

func TestCommentsAndTransitions(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{})
	key := create(t, b, "SIM", "Disk full")

	b.clk.Set(b.clk.Now().Add(time.Minute))
	a := b.call(t, "POST", "/rest/api/2/issue/"+key+"/comment", map[string]string{"body": "Looking at it"})
	require.Equal(t, http.StatusCreated, a.status)
	require.Equal(t, "Looking at it", a.body["body"])
	require.Equal(t, user, a.body["author"].(map[string]any)["name"])
	b.call(t, "POST", "/rest/api/2/issue/"+key+"/comment", map[string]string{"body": "Second"})
	a = b.call(t, "GET", "/rest/api/2/issue/"+key+"/comment?startAt=1&maxResults=5", nil)
	require.Equal(t, http.StatusOK, a.status)
	require.EqualValues(t, 2, a.body["total"])
	require.Len(t, a.body["comments"], 1)
	require.Equal(t, "Second", a.body["comments"].([]any)[0].(map[string]any)["body"])
	require.Equal(t, "2026-12-05T10:01:00.000+0000", fieldsOf(b.call(t, "GET", "/rest/api/2/issue/"+key, nil))["updated"],
		"a comment changes the issue's updated time")

	a = b.call(t, "GET", "/rest/api/2/issue/"+key+"/transitions", nil)
	require.Equal(t, http.StatusOK, a.status)
	var names []string
	for _, tr := range a.body["transitions"].([]any) {
		names = append(names, tr.(map[string]any)["id"].(string)+" "+tr.(map[string]any)["to"].(map[string]any)["name"].(string))
	}
	require.Equal(t, []string{"21 In Progress", "31 Done"}, names)

	a = b.call(t, "POST", "/rest/api/2/issue/"+key+"/transitions", map[string]any{"transition": map[string]string{"id": "31"},
		"fields": map[string]any{"resolution": map[string]string{"name": "Fixed"}},
		"update": map[string]any{"comment": []map[string]any{{"add": map[string]string{"body": "Closing"}}}}})
	require.Equal(t, http.StatusNoContent, a.status, "%v", a.body)
	f := fieldsOf(b.call(t, "GET", "/rest/api/2/issue/"+key, nil))
	require.Equal(t, "Done", f["status"].(map[string]any)["name"])
	require.Equal(t, "done", f["status"].(map[string]any)["statusCategory"].(map[string]any)["key"])
	require.Equal(t, "Fixed", f["resolution"].(map[string]any)["name"])
	require.EqualValues(t, 3, f["comment"].(map[string]any)["total"])

	a = b.call(t, "POST", "/rest/api/2/issue/"+key+"/transitions", map[string]any{"transition": map[string]string{"id": "31"}})
	require.Equal(t, http.StatusBadRequest, a.status, "Done to Done is no transition")
	require.Equal(t, []any{"Transition id '31' is not valid for this issue."}, a.body["errorMessages"])

	require.Equal(t, http.StatusNoContent, b.call(t, "POST", "/rest/api/2/issue/"+key+"/transitions",
		map[string]any{"transition": map[string]string{"id": "11"}}).status)
	f = fieldsOf(b.call(t, "GET", "/rest/api/2/issue/"+key, nil))
	require.Nil(t, f["resolution"], "reopening clears the resolution")
}

// search runs a GET search and returns the keys, total and maxResults.
func search(t *testing.T, b *bundle, jql string, startAt, max int) ([]string, int, int) {
	t.Helper()
	q := url.Values{"jql": {jql}, "startAt": {fmt.Sprint(startAt)}, "maxResults": {fmt.Sprint(max)}, "fields": {"updated"}}
	a := b.call(t, "GET", "/rest/api/2/search?"+q.Encode(), nil)
	require.Equal(t, http.StatusOK, a.status, "%v", a.body)
	var keys []string
	for _, is := range a.body["issues"].([]any) {
		keys = append(keys, is.(map[string]any)["key"].(string))
	}
	return keys, int(a.body["total"].(float64)), int(a.body["maxResults"].(float64))
}

func TestSearchMinuteBoundary(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{Projects: []string{"SIM", "OPS"}})
	at := func(s string) {
		tm, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		b.clk.Set(tm)
	}
	at("2026-12-05T10:59:59.999Z")
	k1 := create(t, b, "SIM", "just before")
	at("2026-12-05T11:00:00Z")
	k2 := create(t, b, "SIM", "on the minute")
	k3 := create(t, b, "OPS", "other project, same instant")
	at("2026-12-05T11:00:59.999Z")
	k4 := create(t, b, "SIM", "end of the minute")
	at("2026-12-05T11:01:00Z")
	// An older issue changed later moves to the end of "ORDER BY updated".
	require.Equal(t, http.StatusCreated, b.call(t, "POST", "/rest/api/2/issue/"+k1+"/comment", map[string]string{"body": "x"}).status)

	tests := []struct {
		name, jql string
		want      []string
	}{
		{"AtOrAfter", `updated >= "2026-12-05 11:00" ORDER BY updated ASC`, []string{k2, k3, k4, k1}},
		{"ProjectAndAfter", `project = SIM AND updated >= "2026-12-05 11:00" ORDER BY updated ASC`, []string{k2, k4, k1}},
		{"StrictlyAfter", `updated > "2026-12-05 11:00" order by updated asc`, []string{k4, k1}},
		{"NextMinute", `project = "SIM" and updated >= '2026/12/05 11:01' ORDER BY updated ASC`, []string{k1}},
		{"Before", `updated < "2026-12-05 11:00"`, nil},
		{"DateOnly", `updated >= "2026-12-05" AND project IN (OPS) ORDER BY key DESC`, []string{k3}},
		{"Desc", `project = SIM ORDER BY updated DESC, key ASC`, []string{k1, k4, k2}},
		{"NoOrderIsCreationOrder", ``, []string{k1, k2, k3, k4}},
		{"Status", `status = "To Do" AND key > SIM-1 AND project != OPS`, []string{k2, k4}},
		{"Relative", `updated <= -1m`, []string{k2, k3}}, // on the simulator's clock, at 11:01:00
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys, total, _ := search(t, b, tc.jql, 0, 50)
			require.Equal(t, tc.want, keys)
			require.Equal(t, len(tc.want), total)
		})
	}
	t.Run("Refused", func(t *testing.T) {
		t.Parallel()
		for _, jql := range []string{`updated >= "yesterday"`, `colour = red`, `project = SIM OR project = OPS`, `updated >= "2026-12-05 11:00`} {
			a := b.call(t, "GET", "/rest/api/2/search?jql="+url.QueryEscape(jql), nil)
			require.Equal(t, http.StatusBadRequest, a.status, jql)
			require.NotEmpty(t, a.body["errorMessages"], jql)
		}
	})
}

func TestTimeZone(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{Location: time.FixedZone("UTC+1", 3600)})
	b.clk.Set(time.Date(2026, 12, 5, 10, 30, 0, 0, time.UTC))
	key := create(t, b, "SIM", "in Europe")
	require.Equal(t, "2026-12-05T11:30:00.000+0100", fieldsOf(b.call(t, "GET", "/rest/api/2/issue/"+key, nil))["updated"],
		"times are written in the account's zone")
	keys, _, _ := search(t, b, `updated >= "2026-12-05 11:30"`, 0, 10)
	require.Equal(t, []string{key}, keys, "JQL dates are read in the account's zone")
	keys, _, _ = search(t, b, `updated >= "2026-12-05 11:31"`, 0, 10)
	require.Empty(t, keys)
}

func TestSearchPagesTenThousand(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{Now: time.Now})
	from := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	_, err := b.sim.SeedIssues(jira.SeedOpts{Count: 10_000, UpdatedFrom: from, StepMS: 250})
	require.NoError(t, err)

	start := time.Now()
	seen := map[string]bool{}
	var order []string
	pages := 0
	for startAt := 0; ; {
		// POST search, as pollers usually send it (a long JQL does not fit a URL).
		a := b.call(t, "POST", "/rest/api/2/search", map[string]any{"jql": `project = SIM AND updated >= "2026-12-05 00:00" ORDER BY updated ASC`,
			"startAt": startAt, "maxResults": 1000, "fields": []string{"updated", "summary"}})
		require.Equal(t, http.StatusOK, a.status)
		require.EqualValues(t, 10_000, a.body["total"])
		require.EqualValues(t, 100, a.body["maxResults"], "maxResults is cut to the page cap")
		issues := a.body["issues"].([]any)
		for _, is := range issues {
			k := is.(map[string]any)["key"].(string)
			require.False(t, seen[k], "issue %s on two pages", k)
			seen[k] = true
			order = append(order, k)
		}
		pages++
		startAt += len(issues)
		if len(issues) == 0 || startAt >= int(a.body["total"].(float64)) {
			break
		}
	}
	elapsed := time.Since(start)
	require.Len(t, seen, 10_000)
	require.Equal(t, 100, pages)
	require.Equal(t, "SIM-1", order[0])
	require.Equal(t, "SIM-10000", order[9999])
	t.Logf("search: 10,000 issues in %d pages of 100 in %v (%.1f ms a page)", pages, elapsed,
		float64(elapsed.Microseconds())/1000/float64(pages))
	require.Less(t, elapsed, 10*time.Second, "paging through 10,000 issues must be quick")

	keys, total, _ := search(t, b, `updated >= "2026-12-05 00:41"`, 0, 5)
	require.Equal(t, 10_000-41*60*4, total, "four issues a second before 00:41 are left out")
	require.Equal(t, fmt.Sprintf("SIM-%d", 41*60*4+1), keys[0])
}

func TestRateLimitAnd429(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{RateLimit: 0.5, Burst: 2})
	require.Equal(t, http.StatusOK, b.call(t, "GET", "/rest/api/2/search", nil).status)
	require.Equal(t, http.StatusOK, b.call(t, "GET", "/rest/api/2/search", nil).status)
	a := b.call(t, "GET", "/rest/api/2/search", nil)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, "2", a.header.Get("Retry-After"), "one token every 2 s")
	require.NotEmpty(t, a.body["errorMessages"])
	require.EqualValues(t, 1, b.sim.Frame().Stats().RateLimited)

	// The control endpoint turns the limit off, and forces 429 with the Retry-After asked for.
	require.Equal(t, http.StatusOK, b.call(t, "POST", "/control", map[string]any{"rate_limit_per_s": 0}, "").status)
	require.Equal(t, http.StatusOK, b.call(t, "GET", "/rest/api/2/search", nil).status)
	require.Equal(t, http.StatusOK, b.call(t, "POST", "/control", map[string]any{"mode": "fail429", "retry_after_s": 5}, "").status)
	a = b.call(t, "GET", "/rest/api/2/search", nil)
	require.Equal(t, http.StatusTooManyRequests, a.status)
	require.Equal(t, "5", a.header.Get("Retry-After"))
	a = b.call(t, "POST", "/control", map[string]any{"mode": "fail500"}, "")
	require.Equal(t, "fail500", a.body["mode"])
	a = b.call(t, "GET", "/rest/api/2/issue/SIM-1", nil)
	require.Equal(t, http.StatusInternalServerError, a.status)
	require.Contains(t, a.body["errorMessages"].([]any)[0], "The Jira simulator is failing on purpose")
}

func TestAuthRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, jira.Opts{})
	for name, auth := range map[string][]string{"None": {""}, "WrongToken": {user, "nope"}, "WrongUser": {"x@example.com", token}} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			a := b.call(t, "POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{}}, auth...)
			require.Equal(t, http.StatusUnauthorized, a.status)
			require.Contains(t, a.header.Get("WWW-Authenticate"), "Basic")
			require.Equal(t, []any{"You are not authenticated. Authentication required to perform this operation."}, a.body["errorMessages"])
		})
	}
	t.Run("ControlNeedsNone", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"/control", "/records", "/stats", "/healthz"} {
			require.Equal(t, http.StatusOK, b.call(t, "GET", p, nil, "").status, p)
		}
	})
}
