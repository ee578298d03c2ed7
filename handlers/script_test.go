package handlers_test

import (
	"net/http"
	"net/url"
	"strconv"
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
		form := url.Values{"message_id": {strconv.FormatInt(msg.ID, 10)}, "point": {"stage_to_request"},
			"source": {"log('project', vars.project);\nreturn {path: '/issue', body: {summary: stage.short_description}};"}}
		res = admin.PostForm("/integrations/1/scripts", form)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)

		page := admin.Get("/integrations/1/scripts")
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "variables-input").Text(), "project=OPS")
		require.Contains(t, page.TestID(t, "source-CreateIncident-stage_to_request").Text(), "vars.project")

		// A ticket gives the Create transaction to test on.
		res = app.Login(t, "analyst", "analyst-demo-1").PostForm("/tickets", url.Values{"short_description": {"Disk full"},
			"state": {"New"}, "priority": {"3"}, "urgency": {"3"}, "impact": {"3"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		var tr models.Transaction
		require.NoError(t, app.Store.DB(t.Context()).Where("message_id = ?", msg.ID).Order("id DESC").Take(&tr).Error)
		var before int64
		require.NoError(t, app.Store.DB(t.Context()).Model(&models.HTTPRequest{}).Count(&before).Error)

		form.Set("transaction", tr.Number)
		page = admin.PostForm("/integrations/1/scripts/test", form)
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "test-value").Text(), `"summary": "Disk full"`)
		require.Equal(t, "project OPS", strings.TrimSpace(page.TestID(t, "test-logs").Text()))
		require.NotEmpty(t, page.TestID(t, "test-duration").Text())
		var after int64
		require.NoError(t, app.Store.DB(t.Context()).Model(&models.HTTPRequest{}).Count(&after).Error)
		require.Equal(t, before, after, "a dry run sends nothing")

		form.Set("source", "const a = 1;\nreturn {a: };")
		page = admin.PostForm("/integrations/1/scripts", form)
		require.Equal(t, http.StatusUnprocessableEntity, page.StatusCode)
		require.Contains(t, page.TestID(t, "source-error").Text(), `Script "CreateIncident / Stage to Request" line 2`)
	})

	t.Run("Forbidden", func(t *testing.T) {
		t.Parallel()
		manager := app.Login(t, "manager", "manager-demo-1")
		page := manager.Get("/integrations/1/scripts")
		require.Equal(t, http.StatusOK, page.StatusCode, "managers read configuration")
		require.Equal(t, 0, page.TestID(t, "variables-save").Length())
		res := manager.PostForm("/integrations/1/scripts", url.Values{"message_id": {"1"}, "point": {"response"}, "source": {"return;"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, http.StatusForbidden, app.Login(t, "analyst", "analyst-demo-1").Get("/integrations/1/scripts").StatusCode)
	})
}
