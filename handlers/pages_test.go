package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/internal/fixture"
	"unifi/models"
)

type pagesBundle struct {
	app    *handlerstest.App
	in     *models.Integration
	ticket *models.Ticket
	bond   *models.Bond
	done   *models.Transaction
	broken *models.Transaction
	queued *models.Transaction
}

func setupPages(t *testing.T) *pagesBundle {
	t.Helper()
	app := handlerstest.New(t, nil)
	db := app.Store.DB(context.Background())
	in, err := app.Store.GetIntegrationByName(context.Background(), models.DemoIntegrationName)
	require.NoError(t, err)
	tk := fixture.Ticket(t, db, in.ProcessID, &fixture.TicketOpts{Description: fixture.Ptr(`<script>alert("x")</script>`)})
	b := fixture.Bond(t, db, in.ID, tk, &fixture.BondOpts{ProcessError: fixture.Ptr("Urgency may only be changed by the owner")})
	done := fixture.Transaction(t, db, b, &fixture.TransactionOpts{Requests: 2})
	broken := fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Error), Error: fixture.Ptr("HTTP 500 after 3 attempts")})
	queued := fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})
	return &pagesBundle{app: app, in: in, ticket: tk, bond: b, done: done, broken: broken, queued: queued}
}

func TestReadPages(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	admin := bt.app.Login(t, "admin", "admin-demo-1")

	t.Run("Operations", func(t *testing.T) {
		page := admin.Get("/")
		require.Equal(t, http.StatusOK, page.StatusCode)
		card := page.TestID(t, "ops-card-demo")
		require.Equal(t, 1, card.Length())
		require.Equal(t, "1", strings.TrimSpace(card.Find(`[data-testid="card-queue"]`).Text()))
		require.Equal(t, "1", strings.TrimSpace(card.Find(`[data-testid="card-errors"]`).Text()))
		require.Contains(t, page.TestID(t, "ops-recent").Text(), bt.done.Number)
		live := admin.Get("/operations/live")
		require.Equal(t, http.StatusOK, live.StatusCode)
		require.NotContains(t, live.Body, "<html", "the live part is a fragment")
	})

	t.Run("Integration", func(t *testing.T) {
		page := admin.Get(fmt.Sprintf("/integrations/%d", bt.in.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Equal(t, "1", strings.TrimSpace(page.TestID(t, "count-8").Find(".n").Text()))
		require.Contains(t, page.TestID(t, "view-broken").AttrOr("href", ""), "state=8")
		require.Equal(t, 3, page.TestID(t, "recent-transactions").Find("tbody tr").Length())
		require.Equal(t, 1, page.TestID(t, "integration-bonds").Find("tbody tr").Length())
		require.Equal(t, 1, page.TestID(t, "repair-confirm").Length(), "the Repair confirm dialog")
	})

	t.Run("TransactionsList", func(t *testing.T) {
		page := admin.Get("/transactions?state=8")
		require.Equal(t, http.StatusOK, page.StatusCode)
		rows := page.TestID(t, "transactions").Find("tbody tr")
		require.Equal(t, 1, rows.Length())
		require.Equal(t, 1, page.TestID(t, "txn-row-"+bt.broken.Number).Length())
		require.Equal(t, 1, page.TestID(t, "bulk-replay-all").Length())

		page = admin.Get("/transactions?q=" + bt.done.MessageIdent)
		require.Equal(t, 1, page.TestID(t, "transactions").Find("tbody tr").Length())
		page = admin.Get("/transactions?q=nothing-like-this")
		require.Equal(t, 1, page.TestID(t, "transactions-empty").Length())

		confirm := admin.Get("/transactions/bulk?" + url.Values{"all": {"ignore"}, "integration": {fmt.Sprint(bt.in.ID)}}.Encode())
		require.Equal(t, http.StatusOK, confirm.StatusCode)
		require.Equal(t, "3", confirm.TestID(t, "bulk-count").Text(), "the count is shown before confirming")
	})

	t.Run("Transaction", func(t *testing.T) {
		page := admin.Get(fmt.Sprintf("/transactions/%d", bt.done.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		fields := page.TestID(t, "txn-fields").Text()
		for _, label := range []string{"Message ID", "External message ID", "Table", "Document", "Integration", "Bond",
			"Message", "Direction", "Transaction state", "Process state", "Created", "Receipt due by", "Error", "Process error"} {
			require.Contains(t, fields, label)
		}
		require.Equal(t, "Complete", page.TestID(t, "txn-state").Text())
		require.Equal(t, "Accepted", page.TestID(t, "txn-process-state").Text())
		require.Equal(t, 2, page.Doc(t).Find("details.request").Length())
		require.Contains(t, page.Body, "[redacted]")
		require.Contains(t, page.TestID(t, "stage").Text(), "short_description")
		require.GreaterOrEqual(t, page.TestID(t, "timeline").Find("li").Length(), 3, "created + two requests")
		require.Equal(t, 1, page.TestID(t, "replay").Length())
		require.Equal(t, 0, page.TestID(t, "ignore").Length(), "a Complete transaction cannot be ignored")
	})

	t.Run("HTTPRequest", func(t *testing.T) {
		page := admin.Get(fmt.Sprintf("/transactions/%d", bt.done.ID))
		href, _ := page.Doc(t).Find("details.request summary a").First().Attr("href")
		req := admin.Get(href)
		require.Equal(t, http.StatusOK, req.StatusCode)
		require.Equal(t, 1, req.TestID(t, "replay-request").Length())
		require.Contains(t, req.TestID(t, "request-body").Text(), "\n  \"message\"", "pretty JSON")
	})

	t.Run("Bond", func(t *testing.T) {
		page := admin.Get(fmt.Sprintf("/bonds/%d", bt.bond.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Equal(t, "Error", page.TestID(t, "bond-status").Text())
		require.Equal(t, "1", strings.TrimSpace(page.TestID(t, "bond-txn-"+bt.queued.Number).Find(`[data-testid="queue-position"]`).Text()))
		require.Contains(t, page.TestID(t, "bond-process-error").Text(), "Urgency may only be changed by the owner")
		list := admin.Get("/bonds")
		require.Equal(t, 1, list.TestID(t, "bonds").Find("tbody tr").Length())
	})

	t.Run("Tickets", func(t *testing.T) {
		page := admin.Get(fmt.Sprintf("/tickets/%d", bt.ticket.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "ticket-process-error").Text(), "Urgency may only be changed by the owner")
		require.Equal(t, `<script>alert("x")</script>`, page.TestID(t, "ticket-field-description").Text())
		require.NotContains(t, page.Body, `<script>alert`)
		errs := admin.Get("/tickets/process-errors")
		require.Equal(t, 1, errs.TestID(t, "ticket-row-"+bt.ticket.Number).Length())
	})

	t.Run("ActivityAndUsers", func(t *testing.T) {
		require.Equal(t, http.StatusOK, admin.Get("/activity").StatusCode)
		require.Equal(t, http.StatusOK, admin.Get("/users").StatusCode)
	})
}

func TestPagesRoleGating(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	analyst := bt.app.Login(t, "analyst", "analyst-demo-1")
	manager := bt.app.Login(t, "manager", "manager-demo-1")

	t.Run("AnalystSeesNoActionButtons", func(t *testing.T) {
		for _, id := range []int64{bt.done.ID, bt.broken.ID, bt.queued.ID} {
			page := analyst.Get(fmt.Sprintf("/transactions/%d", id))
			require.Equal(t, http.StatusOK, page.StatusCode)
			require.Equal(t, 0, page.TestID(t, "header-actions").Find("button").Length())
		}
		list := analyst.Get("/transactions")
		require.Equal(t, 0, list.TestID(t, "bulk-form").Length())
		require.Equal(t, http.StatusForbidden, analyst.Get("/activity").StatusCode)
		require.Equal(t, http.StatusForbidden, analyst.Get("/users").StatusCode)
		require.Equal(t, http.StatusForbidden, analyst.Get("/transactions/bulk?all=ignore").StatusCode)
	})

	t.Run("ManagerReplaysOnlyCompleteErrorIgnored", func(t *testing.T) {
		page := manager.Get(fmt.Sprintf("/transactions/%d", bt.broken.ID))
		require.Equal(t, 1, page.TestID(t, "replay").Length())
		require.Equal(t, 1, page.TestID(t, "ignore").Length())
		page = manager.Get(fmt.Sprintf("/transactions/%d", bt.queued.ID))
		require.Equal(t, 0, page.TestID(t, "replay").Length(), "a manager may not replay a Queued transaction")
		require.Equal(t, 1, page.TestID(t, "ignore").Length())
		integ := manager.Get(fmt.Sprintf("/integrations/%d", bt.in.ID))
		require.Equal(t, 0, integ.TestID(t, "header-actions").Find("button").Length())
		require.Equal(t, http.StatusOK, manager.Get("/activity").StatusCode)
		require.Equal(t, http.StatusForbidden, manager.Get("/users").StatusCode)
	})
}

func TestUsersAdmin(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	admin := app.Login(t, "admin", "admin-demo-1")

	t.Run("CreateRefusedWith422", func(t *testing.T) {
		res := admin.PostForm("/users", url.Values{"name": {"bad name!"}, "role": {"analyst"}, "password": {"short"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.NotEmpty(t, res.TestID(t, "error-name").Text())
		require.NotEmpty(t, res.TestID(t, "error-password").Text())
	})

	t.Run("CreateSetRoleReset", func(t *testing.T) {
		res := admin.PostForm("/users", url.Values{"name": {"carol"}, "role": {"analyst"}, "password": {"carol-password-1"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		page := admin.Get("/users")
		require.Contains(t, page.TestID(t, "flash-success").Text(), "Created user carol")
		carol := app.Login(t, "carol", "carol-password-1")
		require.Equal(t, http.StatusForbidden, carol.Get("/activity").StatusCode)

		var u models.User
		require.NoError(t, app.Store.DB(context.Background()).Where("name = ?", "carol").Take(&u).Error)
		res = admin.PostForm(fmt.Sprintf("/users/%d/role", u.ID), url.Values{"role": {"manager"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		res = admin.PostForm(fmt.Sprintf("/users/%d/password", u.ID), url.Values{"password": {"carol-password-2"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		carol = app.Login(t, "carol", "carol-password-2")
		require.Equal(t, http.StatusOK, carol.Get("/activity").StatusCode, "a manager now")
		act := admin.Get("/activity?user=admin")
		require.Contains(t, act.TestID(t, "activity").Text(), "set role")
	})

	t.Run("NonAdminRefused", func(t *testing.T) {
		mgr := app.Login(t, "manager", "manager-demo-1")
		res := mgr.PostForm("/users", url.Values{"name": {"eve"}, "role": {"admin"}, "password": {"eve-password-1"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-message").Text(), "only Admins may")
	})
}
