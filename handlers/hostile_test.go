package handlers_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/internal/fixture"
	"unifi/models"
)

// rowCounts are the tables a refused request must leave alone.
func rowCounts(t *testing.T, app *handlerstest.App) string {
	t.Helper()
	var parts []string
	for _, tbl := range []string{"tickets", "bonds", "transactions", "stages", "users", "bulk_jobs"} {
		parts = append(parts, fmt.Sprintf("%s=%d", tbl, app.CountRows(t, tbl)))
	}
	return strings.Join(parts, " ")
}

// TestHostileForms posts every UI form with each field, one at a time, set
// to a hostile value: never a 5xx; a refusal is a 4xx with the reason and
// stores nothing; what is accepted is stored as given and shown escaped.
func TestHostileForms(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	app := bt.app
	admin := app.Login(t, "admin", "admin-demo-1")
	ta := handlerstest.Tally{}
	db := app.Store.DB(context.Background())
	victim := fixture.User(t, db, models.RoleAnalyst)

	type form struct {
		path   func() string
		fields url.Values
	}
	ticketFields := url.Values{"short_description": {"valid"}, "description": {"d"}, "state": {"New"}, "priority": {"3"},
		"urgency": {"2"}, "impact": {"2"}, "assignment_group": {"g"}, "work_notes": {"n"}}
	forms := []form{
		{func() string { return "/tickets" }, ticketFields},
		{func() string { return fmt.Sprintf("/tickets/%d", bt.ticket.ID) }, func() url.Values {
			v := url.Values{"version": {"1"}}
			for k, x := range ticketFields {
				v[k] = x
			}
			return v
		}()},
		{func() string { return "/users" }, url.Values{"name": {"newuser"}, "role": {"analyst"}, "password": {"long-enough-1"}}},
		{func() string { return fmt.Sprintf("/users/%d/role", victim.ID) }, url.Values{"role": {"analyst"}}},
		{func() string { return fmt.Sprintf("/users/%d/password", victim.ID) }, url.Values{"password": {"analyst-demo-1"}}},
		{func() string { return fmt.Sprintf("/users/%d/active", victim.ID) }, url.Values{"active": {"true"}}},
		{func() string { return "/transactions/bulk" }, url.Values{"kind": {"ignore"}, "mode": {"selected"}, "id": {"999999"},
			"q": {"x"}, "state": {"8"}, "from": {"2026-01-01"}}},
	}
	for _, f := range forms {
		for field := range f.fields {
			for _, h := range handlerstest.Hostile {
				form := url.Values{}
				for k, v := range f.fields {
					form[k] = v
				}
				form.Set(field, h.Value)
				if field == "version" {
					cur, err := app.Store.GetTicket(context.Background(), bt.ticket.ID)
					require.NoError(t, err)
					if h.Name == "Empty" {
						form.Set(field, fmt.Sprint(cur.Version))
					}
				} else if strings.HasPrefix(f.path(), "/tickets/") {
					cur, err := app.Store.GetTicket(context.Background(), bt.ticket.ID)
					require.NoError(t, err)
					form.Set("version", fmt.Sprint(cur.Version))
				}
				before := rowCounts(t, app)
				what := fmt.Sprintf("POST %s %s=%s", f.path(), field, h.Name)
				res := admin.PostForm(f.path(), form)
				ta.Add(res.StatusCode)
				handlerstest.CheckAnswer(t, what, res.StatusCode, res.Body)
				if res.StatusCode >= 400 {
					require.Equal(t, before, rowCounts(t, app), "%s was refused, so nothing is stored", what)
				}
			}
		}
	}

	// Accepted text is stored as given and rendered escaped.
	res := admin.PostForm("/tickets", url.Values{"short_description": {handlerstest.Hostile[1].Value}, "description": {handlerstest.Hostile[0].Value},
		"state": {"New"}, "priority": {"3"}, "urgency": {"2"}, "impact": {"2"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	page := admin.Get(res.Header.Get("Location"))
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.NotContains(t, page.Body, "<script>alert(1)</script>")
	require.NotContains(t, page.Body, "<img src=x")
	require.Contains(t, page.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	var tk models.Ticket
	require.NoError(t, db.Where("short_description = ?", handlerstest.Hostile[1].Value).Order("id DESC").Take(&tk).Error)
	require.Equal(t, handlerstest.Hostile[0].Value, tk.Description, "SQL metacharacters are data")
	t.Logf("hostile forms: %d requests by status %v", ta.Total(), ta)
}

// TestHostileQueriesAndPaths sends hostile query strings and path ids to
// every page: never a 5xx.
func TestHostileQueriesAndPaths(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	admin := bt.app.Login(t, "admin", "admin-demo-1")
	ta := handlerstest.Tally{}
	pages := []string{"/transactions?q=%s", "/transactions?state=%s", "/transactions?from=%s&to=%s", "/transactions?after=%s",
		"/transactions?integration=%s&message=%s&bond=%s&ticket=%s&process=%s&direction=%s&payload=1&q=%s",
		"/tickets?q=%s", "/tickets?before=%s", "/tickets/process-errors?q=%s", "/bonds?q=%s", "/bonds?state=%s&integration=%s",
		"/activity?q=%s", "/activity?before=%s", "/transactions/bulk?all=replay&q=%s", "/transactions/bulk?action=%s&id=%s",
		"/integrations/%d?job=%s", "/login?next=%s", "/operations/live?since=%s"}
	ids := []string{"99999999999999999999", "-1", "0", "abc", "1%00", "1'--", "%ff", "1e3", "%3Cscript%3E"}
	paths := []string{"/transactions/%s", "/http-requests/%s", "/bulk-jobs/%s", "/bonds/%s", "/tickets/%s", "/tickets/%s/edit",
		"/integrations/%s", "/api/v1/tickets/%s"}
	for _, h := range handlerstest.Hostile {
		if h.Name == "Oversized" {
			continue // a 40 kB URL is cut off by the HTTP server itself (431), not ours to test
		}
		q := url.QueryEscape(h.Value)
		for _, p := range pages {
			var path string
			if strings.Contains(p, "%d") {
				path = fmt.Sprintf(p, bt.in.ID, q)
			} else {
				args := make([]any, strings.Count(p, "%s"))
				for i := range args {
					args[i] = q
				}
				path = fmt.Sprintf(p, args...)
			}
			res := admin.Get(path)
			ta.Add(res.StatusCode)
			handlerstest.CheckAnswer(t, "GET "+path, res.StatusCode, res.Body)
		}
	}
	for _, id := range ids {
		for _, p := range paths {
			path := fmt.Sprintf(p, id)
			res := admin.Get(path)
			ta.Add(res.StatusCode)
			handlerstest.CheckAnswer(t, "GET "+path, res.StatusCode, res.Body)
			for _, op := range []string{"replay", "ignore", "pause", "resume", "repair", "role", "active", "password"} {
				res := admin.PostForm(fmt.Sprintf("%s/%s", strings.TrimSuffix(path, "/edit"), op), url.Values{"role": {"x"}})
				ta.Add(res.StatusCode)
				handlerstest.CheckAnswer(t, "POST "+path+"/"+op, res.StatusCode, res.Body)
			}
		}
	}
	t.Logf("hostile queries and paths: %d requests by status %v", ta.Total(), ta)
}

// rawJSONString puts s between quotes as raw bytes: invalid UTF-8 stays
// invalid (encoding/json would replace it), control characters are escaped.
func rawJSONString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

type apiClient struct {
	t    *testing.T
	base string
	auth func(*http.Request)
}

func (c apiClient) do(method, path, ctype string, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	require.NoError(c.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	c.auth(req)
	res, err := http.DefaultClient.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res.StatusCode, string(b)
}

// TestHostileAPI sends the tickets API and the inbound API malformed,
// wrong-typed, oversized and hostile JSON: never a 5xx, a refusal stores
// nothing (the inbound API keeps only its HTTP Request record).
func TestHostileAPI(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	app := bt.app
	ta := handlerstest.Tally{}
	tickets := apiClient{t, app.Server.URL, func(r *http.Request) { r.SetBasicAuth("analyst", "analyst-demo-1") }}
	inbound := apiClient{t, app.Server.URL, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+models.DemoPeerToken) }}

	structural := []string{``, `null`, `[]`, `"text"`, `{`, `{"short_description":}`, `{"priority":"high"}`,
		`{"short_description":5}`, `{"priority":1e400}`, `{"priority":99999999999999999999}`, `{"priority":-1}`,
		`{"version":"x"}`, `{"unknown":1}`, `{"short_description":"a","short_description":"b"}`,
		strings.Repeat(`[`, 100000), `{"short_description":"` + strings.Repeat("x", 2<<20) + `"}`, "\xff\xfe{}"}
	fields := []string{"short_description", "description", "state", "assignment_group", "work_notes"}
	var bodies []string
	bodies = append(bodies, structural...)
	for _, f := range fields {
		for _, h := range handlerstest.Hostile {
			bodies = append(bodies, fmt.Sprintf(`{"short_description":"valid",%q:%s}`, f, rawJSONString(h.Value)))
		}
	}
	for _, body := range bodies {
		for _, ct := range []string{"application/json", "text/plain"} {
			before := rowCounts(t, app)
			status, out := tickets.do(http.MethodPost, "/api/v1/tickets", ct, body)
			ta.Add(status)
			what := fmt.Sprintf("POST /api/v1/tickets %.80q", body)
			handlerstest.CheckAnswer(t, what, status, out)
			if status >= 400 {
				require.Equal(t, before, rowCounts(t, app), "%s was refused, so nothing is stored", what)
			}
			before = rowCounts(t, app)
			status, out = tickets.do(http.MethodPatch, "/api/v1/tickets/"+bt.ticket.Number, ct, body)
			ta.Add(status)
			handlerstest.CheckAnswer(t, "PATCH "+what, status, out)
			if status >= 400 {
				require.Equal(t, before, rowCounts(t, app), "PATCH %s was refused, so nothing is stored", what)
			}
		}
	}

	// Inbound: a valid create with each header and data value made hostile.
	envelope := func(name, sourceID, ref, dataKey, dataVal string) string {
		return fmt.Sprintf(`{"message":{"name":%s,"time_stamp":"2026-01-01T00:00:00Z","source_reference":%s,"source_id":%s},"data":{"short_description":"from the peer",%s:%s}}`,
			rawJSONString(name), rawJSONString(ref), rawJSONString(sourceID), rawJSONString(dataKey), rawJSONString(dataVal))
	}
	n := 0
	var in []string
	for _, h := range handlerstest.Hostile {
		n++
		id := fmt.Sprintf("HOSTILE-%d", n)
		in = append(in,
			envelope(h.Value, id+"a", "EXT-"+id, "description", "x"),
			envelope("CreateIncident", h.Value, "EXT-"+id+"b", "description", "x"),
			envelope("CreateIncident", id+"c", h.Value, "description", "x"),
			envelope("CreateIncident", id+"d", "EXT-"+id+"d", h.Value, "x"),
			envelope("CreateIncident", id+"e", "EXT-"+id+"e", "description", h.Value),
			envelope("CreateIncident", id+"f", "EXT-"+id+"f", "priority", h.Value),
		)
	}
	in = append(in, structural...)
	in = append(in, `{"message":{"name":"CreateIncident","source_id":"deep"},"data":`+strings.Repeat(`{"a":`, 5000)+`1`+strings.Repeat(`}`, 5000)+`}`,
		`{"message":{"name":"CreateIncident","source_id":"num","source_reference":"EXT-num"},"data":{"short_description":"n","priority":1e400}}`,
		`{"message":{"name":"Receipt","target_id":"\u0000"},"status":{"process_state":"Accepted"}}`,
		`{"message":{"name":"Receipt","target_id":"MSG1"},"status":{"process_state":"\u0000"}}`)
	for _, body := range in {
		for _, path := range []string{"/api/v1/integrations/demo/messages", "/api/v1/integrations/" + url.PathEscape("de'mo\x00") + "/messages"} {
			before := rowCounts(t, app)
			status, out := inbound.do(http.MethodPost, path, "application/json", body)
			ta.Add(status)
			what := fmt.Sprintf("POST %s %.120q", path, body)
			handlerstest.CheckAnswer(t, what, status, out)
			if status >= 400 {
				require.Equal(t, before, rowCounts(t, app), "%s was refused, so nothing is stored", what)
			}
		}
	}
	t.Logf("hostile API: %d requests by status %v", ta.Total(), ta)
}
