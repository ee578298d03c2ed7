package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers"
	"unifi/handlers/handlerstest"
	"unifi/internal/fixture"
	"unifi/models"
)

// stateChangingRoutes lists every route of the real router that is not a
// GET, HEAD or OPTIONS, with its path parameters filled with id.
func stateChangingRoutes(t *testing.T, app *handlerstest.App, id int64) []string {
	t.Helper()
	e := handlers.New(handlers.Opts{Store: app.Store, Query: app.Query, Accounts: app.Accounts, Inbound: app.Inbound,
		Config: app.Config}).Echo()
	param := regexp.MustCompile(`:[a-z_]+`)
	seen := map[string]bool{}
	var out []string
	for _, r := range e.Routes() {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions, echoRouteNotFound:
			continue
		}
		if strings.Contains(r.Path, "*") {
			continue
		}
		key := r.Method + " " + param.ReplaceAllString(r.Path, fmt.Sprint(id))
		if !seen[key] {
			seen[key] = true
			out = append(out, key)
		}
	}
	return out
}

const echoRouteNotFound = "echo_route_not_found"

// TestCSRFOnEveryStateChangingRoute walks the router: every UI request that
// changes state is refused with 403 without the session's token (or with a
// forged one), even for a logged-in admin; the JSON APIs take no authority
// from the session cookie at all.
func TestCSRFOnEveryStateChangingRoute(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	admin := bt.app.Login(t, "admin", "admin-demo-1")
	routes := stateChangingRoutes(t, bt.app, bt.broken.ID)
	require.GreaterOrEqual(t, len(routes), 15, "the router lists the POST routes: %v", routes)
	activity := bt.app.CountRows(t, "activity_logs")
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt, " ")
		t.Run(strings.ReplaceAll(rt, "/", "_"), func(t *testing.T) {
			if strings.HasPrefix(path, "/api/") {
				res := admin.Do(method, path, `{}`, "application/json", nil)
				require.Contains(t, []int{http.StatusUnauthorized, http.StatusUnsupportedMediaType}, res.StatusCode,
					"%s: the session cookie is no credential for the API: %s", rt, res.Body)
				return
			}
			for _, token := range []string{"", "forged-token", strings.Repeat("A", 43)} {
				form := url.Values{"_csrf": {token}, "kind": {"ignore"}, "id": {fmt.Sprint(bt.broken.ID)},
					"name": {"csrf-victim"}, "role": {"admin"}, "password": {"csrf-victim-pw"}, "short_description": {"x"}}
				res := admin.Do(method, path, form.Encode(), "application/x-www-form-urlencoded", nil)
				require.Equal(t, http.StatusForbidden, res.StatusCode, "%s with token %q", rt, token)
				require.Contains(t, res.Body, "security token is missing or out of date", rt)
			}
			// The header form of the token is checked the same way.
			res := admin.Do(method, path, "", "application/x-www-form-urlencoded", http.Header{"X-Csrf-Token": {"forged"}})
			require.Equal(t, http.StatusForbidden, res.StatusCode, rt)
		})
	}
	require.Equal(t, activity, bt.app.CountRows(t, "activity_logs"), "no refused request changed anything")
	require.Equal(t, models.Error, getTxn(t, bt.app, bt.broken.ID).State)
}

func getTxn(t *testing.T, app *handlerstest.App, id int64) *models.Transaction {
	t.Helper()
	tr, err := app.Store.GetTransaction(context.Background(), id)
	require.NoError(t, err)
	return tr
}

// docs/domain.md ("The queue per bond", "Roles"), written out independently of models.Can: what each role
// may do to a transaction in each state.
// Inbound transactions are replayed by the system that sent them
// (docs/decisions.md), so replaying one here is refused for its state.
func specTransaction(role models.Role, action string, s models.TransportState, dir models.Direction) int {
	if role == models.RoleAnalyst {
		return http.StatusForbidden
	}
	switch action {
	case "replay":
		if s == models.Sending || s == models.SendingReceipt { // on the wire right now
			return http.StatusConflict
		}
		if role == models.RoleManager && s != models.Complete && s != models.Error && s != models.Ignored {
			return http.StatusForbidden
		}
		if dir == models.Inbound {
			return http.StatusConflict
		}
	case "ignore":
		if s == models.Complete || s == models.Ignored {
			return http.StatusConflict
		}
	}
	return http.StatusSeeOther
}

func specIntegration(role models.Role, action string, s models.IntegrationState) int {
	if role != models.RoleAdmin {
		return http.StatusForbidden
	}
	ok := map[string]bool{"pause": s == models.IntegrationActive, "resume": s == models.IntegrationPaused,
		"repair": s != models.IntegrationOff}[action]
	if !ok {
		return http.StatusConflict
	}
	return http.StatusSeeOther
}

func specRequestReplay(role models.Role, s models.HTTPRequestState) int {
	if role != models.RoleAdmin {
		return http.StatusForbidden
	}
	if s == models.RequestPending || s == models.RequestReady {
		return http.StatusConflict
	}
	return http.StatusSeeOther
}

// TestRoleActionStateMatrix sends every operation as every UI role against
// records in every state, by direct POST without the page: each refusal is
// 403 (the role) or 409 (the state) with the reason in words and changes
// nothing; each allowed one succeeds.
func TestRoleActionStateMatrix(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	clients := map[models.Role]*handlerstest.Client{}
	for _, r := range handlerstest.DemoUsers {
		clients[r.Role] = app.Login(t, r.Name, r.Password)
	}
	tried := map[int]int{}
	check := func(t *testing.T, res handlerstest.Response, want int, what string) {
		t.Helper()
		tried[res.StatusCode]++
		require.Equal(t, want, res.StatusCode, "%s: %s", what, res.Body)
		if want >= 400 {
			msg := strings.TrimSpace(res.TestID(t, "error-message").Text())
			require.NotEmpty(t, msg, "%s: the refusal says why", what)
		}
	}

	t.Run("Transactions", func(t *testing.T) {
		states := []models.TransportState{models.Sending, models.Received, models.AwaitingReceipt, models.SendingReceipt,
			models.ReceivedReceipt, models.Complete, models.Queued, models.TimedOut, models.Error, models.Ignored}
		for _, s := range states {
			for _, r := range handlerstest.DemoUsers {
				for _, action := range []string{"replay", "ignore"} {
					dir := models.Outbound
					if s == models.Received || s == models.SendingReceipt {
						dir = models.Inbound
					}
					tk := fixture.Ticket(t, db, in.ProcessID, nil)
					b := fixture.Bond(t, db, in.ID, tk, nil)
					tr := fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(s), Direction: fixture.Ptr(dir)})
					before := app.CountRows(t, "transactions")
					what := fmt.Sprintf("%s %s a %s transaction", r.Name, action, s)
					want := specTransaction(r.Role, action, s, dir)
					res := clients[r.Role].PostForm(fmt.Sprintf("/transactions/%d/%s", tr.ID, action), nil)
					check(t, res, want, what)
					after := getTxn(t, app, tr.ID)
					if want >= 400 {
						require.Equal(t, s, after.State, "%s: refused, so unchanged", what)
						require.Equal(t, before, app.CountRows(t, "transactions"), what)
					} else {
						require.Equal(t, models.Ignored, after.State, what)
					}
				}
			}
		}
	})

	t.Run("Integrations", func(t *testing.T) {
		for _, s := range []models.IntegrationState{models.IntegrationActive, models.IntegrationPaused, models.IntegrationOff} {
			for _, r := range handlerstest.DemoUsers {
				for _, action := range []string{"pause", "resume", "repair"} {
					require.NoError(t, db.Exec("DELETE FROM bulk_job_items").Error)
					require.NoError(t, db.Exec("DELETE FROM bulk_jobs").Error)
					require.NoError(t, db.Exec("UPDATE integrations SET state = ? WHERE id = ?", s, in.ID).Error)
					if action == "repair" { // something to repair
						tk := fixture.Ticket(t, db, in.ProcessID, nil)
						fixture.Transaction(t, db, fixture.Bond(t, db, in.ID, tk, nil), &fixture.TransactionOpts{State: fixture.Ptr(models.Error)})
					}
					what := fmt.Sprintf("%s %s a %s integration", r.Name, action, s)
					want := specIntegration(r.Role, action, s)
					res := clients[r.Role].PostForm(fmt.Sprintf("/integrations/%d/%s", in.ID, action), nil)
					check(t, res, want, what)
					got, err := app.Store.GetIntegration(ctx, in.ID)
					require.NoError(t, err)
					switch {
					case want >= 400:
						require.Equal(t, s, got.State, "%s: refused, so unchanged", what)
						require.Zero(t, app.CountRows(t, "bulk_jobs"), what)
					case action == "pause":
						require.Equal(t, models.IntegrationPaused, got.State, what)
					default:
						require.Equal(t, int64(1), app.CountRows(t, "bulk_jobs"), "%s starts a bulk job", what)
					}
				}
			}
		}
		require.NoError(t, db.Exec("UPDATE integrations SET state = ? WHERE id = ?", models.IntegrationActive, in.ID).Error)
	})

	t.Run("HTTPRequests", func(t *testing.T) {
		for _, s := range []models.HTTPRequestState{models.RequestPending, models.RequestReady, models.RequestOK,
			models.RequestError, models.RequestCancelled} {
			for _, r := range handlerstest.DemoUsers {
				tk := fixture.Ticket(t, db, in.ProcessID, nil)
				b := fixture.Bond(t, db, in.ID, tk, nil)
				tr := fixture.Transaction(t, db, b, &fixture.TransactionOpts{Requests: 1})
				var reqID int64
				require.NoError(t, db.Raw("SELECT id FROM http_requests WHERE transaction_id = ?", tr.ID).Scan(&reqID).Error)
				require.NoError(t, db.Exec("UPDATE http_requests SET state = ?, send_after = now() WHERE id = ?", s, reqID).Error)
				before := app.CountRows(t, "http_requests")
				what := fmt.Sprintf("%s replays a %s HTTP request", r.Name, s)
				want := specRequestReplay(r.Role, s)
				check(t, clients[r.Role].PostForm(fmt.Sprintf("/http-requests/%d/replay", reqID), nil), want, what)
				if want >= 400 {
					require.Equal(t, before, app.CountRows(t, "http_requests"), what)
				} else {
					require.Equal(t, before+1, app.CountRows(t, "http_requests"), what)
				}
			}
		}
	})

	t.Run("TicketsUsersBulk", func(t *testing.T) {
		tk := fixture.Ticket(t, db, in.ProcessID, nil)
		for _, r := range handlerstest.DemoUsers {
			mayWork := r.Role == models.RoleAdmin || r.Role == models.RoleAnalyst
			mayBulk := r.Role == models.RoleAdmin || r.Role == models.RoleManager
			admin := r.Role == models.RoleAdmin
			expect := func(ok bool) int {
				if ok {
					return http.StatusSeeOther
				}
				return http.StatusForbidden
			}
			form := url.Values{"short_description": {"matrix " + r.Name}, "state": {"New"}, "priority": {"3"},
				"urgency": {"2"}, "impact": {"2"}}
			check(t, clients[r.Role].PostForm("/tickets", form), expect(mayWork), r.Name+" creates a ticket")
			cur, err := app.Store.GetTicket(ctx, tk.ID)
			require.NoError(t, err)
			form.Set("version", fmt.Sprint(cur.Version))
			check(t, clients[r.Role].PostForm(fmt.Sprintf("/tickets/%d", tk.ID), form), expect(mayWork), r.Name+" edits a ticket")
			if mayWork {
				// The version just edited is now stale: someone else saved meanwhile.
				check(t, clients[r.Role].PostForm(fmt.Sprintf("/tickets/%d", tk.ID), form), http.StatusConflict,
					r.Name+" saves a stale version")
			}
			other := fixture.Ticket(t, db, in.ProcessID, nil)
			tr := fixture.Transaction(t, db, fixture.Bond(t, db, in.ID, other, nil), &fixture.TransactionOpts{State: fixture.Ptr(models.Error)})
			check(t, clients[r.Role].PostForm("/transactions/bulk", url.Values{"kind": {"ignore"}, "id": {fmt.Sprint(tr.ID)}}),
				expect(mayBulk), r.Name+" starts a bulk ignore")
			user := fixture.User(t, db, models.RoleAnalyst)
			name := "matrix-" + r.Name
			check(t, clients[r.Role].PostForm("/users", url.Values{"name": {name}, "role": {"analyst"}, "password": {"matrix-pw-123"}}),
				expect(admin), r.Name+" creates a user")
			check(t, clients[r.Role].PostForm(fmt.Sprintf("/users/%d/role", user.ID), url.Values{"role": {"analyst"}}),
				expect(admin), r.Name+" sets a role")
			check(t, clients[r.Role].PostForm(fmt.Sprintf("/users/%d/active", user.ID), url.Values{"active": {"true"}}),
				expect(admin), r.Name+" enables a user")
		}
	})
	t.Logf("matrix: %d requests answered by status: %v", func() int {
		n := 0
		for _, v := range tried {
			n += v
		}
		return n
	}(), tried)
}
