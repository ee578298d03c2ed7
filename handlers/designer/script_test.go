package designer_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

func TestScriptsPage(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		admin := app.Login(t, "admin", "admin-demo-1")
		res := admin.PostForm("/integrations/1/variables", url.Values{"variables": {"project=OPS\ngroup = 42"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)

		var msg models.Message
		require.NoError(t, app.Store.DB(t.Context()).Where("integration_id = 1 AND name = 'CreateIncident'").Take(&msg).Error)
		addr := fmt.Sprintf("/messages/%d/scripts/stage_to_request", msg.ID)
		form := url.Values{"version": {"0"},
			"source": {"log('project', vars.project);\nreturn {path: '/issue', body: {summary: stage.short_description}};"}}
		res = admin.PostForm(addr, form)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

		page := admin.Get("/integrations/1/scripts")
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "variables-input").Text(), "project=OPS")
		require.Contains(t, page.TestID(t, "point-CreateIncident-stage_to_request").Text(), "version 1")
		page = admin.Get(addr)
		require.Contains(t, page.TestID(t, "f-source").Text(), "vars.project")

		// A ticket gives the Create transaction to test on.
		res = app.Login(t, "analyst", "analyst-demo-1").PostForm("/tickets", url.Values{"short_description": {"Disk full"},
			"state": {"New"}, "priority": {"3"}, "urgency": {"3"}, "impact": {"3"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		var tr models.Transaction
		require.NoError(t, app.Store.DB(t.Context()).Where("message_id = ?", msg.ID).Order("id DESC").Take(&tr).Error)
		var before int64
		require.NoError(t, app.Store.DB(t.Context()).Model(&models.HTTPRequest{}).Count(&before).Error)

		form.Set("transaction", tr.Number)
		form.Set("version", "1")
		page = admin.PostForm(addr+"/test", form)
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "test-value").Text(), `"summary": "Disk full"`)
		require.Equal(t, "project OPS", strings.TrimSpace(page.TestID(t, "test-logs").Text()))
		require.NotEmpty(t, page.TestID(t, "test-duration").Text())
		var after int64
		require.NoError(t, app.Store.DB(t.Context()).Model(&models.HTTPRequest{}).Count(&after).Error)
		require.Equal(t, before, after, "a dry run sends nothing")

		form.Set("source", "const a = 1;\nreturn {a: };")
		page = admin.PostForm(addr, form)
		require.Equal(t, http.StatusUnprocessableEntity, page.StatusCode)
		require.Contains(t, page.TestID(t, "error-source").Text(), `Script "CreateIncident / Stage to Request" line 2`)

		// An edit of version 0 (opened before the first save) is refused: 409, nothing saved.
		form.Set("source", "return {};")
		form.Set("version", "0")
		page = admin.PostForm(addr, form)
		require.Equal(t, http.StatusConflict, page.StatusCode)
		require.Contains(t, admin.Get(addr).TestID(t, "f-source").Text(), "vars.project")

		// The variables form carries the versions it showed: a stale one is refused.
		res = admin.PostForm("/integrations/1/variables", url.Values{"variables": {"project=SEC"}, "versions": {"project=7"}})
		require.Equal(t, http.StatusConflict, res.StatusCode)
		back, _ := res.TestID(t, "stale-back").Attr("href")
		require.Equal(t, "/integrations/1/scripts", back, "open it again: the page that shows the variables, not the POST-only form address")
		require.Equal(t, http.StatusOK, admin.Get(back).StatusCode)
		res = admin.PostForm("/integrations/1/variables", url.Values{"variables": {"1x=SEC"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-variables").Text(), "not a variable name")
	})

	t.Run("Forbidden", func(t *testing.T) {
		t.Parallel()
		manager := app.Login(t, "manager", "manager-demo-1")
		page := manager.Get("/integrations/1/scripts")
		require.Equal(t, http.StatusOK, page.StatusCode, "managers read configuration")
		require.Equal(t, 0, page.TestID(t, "variables-save").Length())
		require.Equal(t, http.StatusOK, manager.Get("/messages/1/scripts/response").StatusCode)
		res := manager.PostForm("/messages/1/scripts/response", url.Values{"version": {"0"}, "source": {"return;"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, http.StatusForbidden, app.Login(t, "analyst", "analyst-demo-1").Get("/integrations/1/scripts").StatusCode)
		require.Equal(t, http.StatusNotFound, manager.Get("/messages/1/scripts/nonsense").StatusCode)
	})
}
