package designer_test

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

func TestDesignerIntegration(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	demo, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	admin := app.Login(t, "admin", "admin-demo-1")
	manager := app.Login(t, "manager", "manager-demo-1")
	analyst := app.Login(t, "analyst", "analyst-demo-1")

	t.Run("CreateEditSwitchDelete", func(t *testing.T) {
		require.Equal(t, http.StatusOK, admin.Get("/integrations/new").StatusCode)
		res := admin.PostForm("/integrations", handlerstest.IntegrationForm("designed", demo.ProcessID))
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		in, err := app.Store.GetIntegrationByName(ctx, "designed")
		require.NoError(t, err)
		require.Equal(t, 2, in.RetryLimit)
		require.Equal(t, 1, in.Version)
		require.Equal(t, models.IntegrationActive, in.State)

		form := handlerstest.IntegrationForm("designed", demo.ProcessID)
		form.Set("retry_limit", "5")
		form.Set("version", "1")
		res = admin.PostForm(fmt.Sprintf("/integrations/%d", in.ID), form)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		in, err = app.Store.GetIntegration(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, 5, in.RetryLimit)
		require.Equal(t, 2, in.Version)

		// The same form again is an edit of version 1: refused, saying what changed.
		form.Set("retry_limit", "8")
		res = admin.PostForm(fmt.Sprintf("/integrations/%d", in.ID), form)
		require.Equal(t, http.StatusConflict, res.StatusCode, res.Body)
		row := res.TestID(t, "stale-retry_limit")
		require.Equal(t, "5", strings.TrimSpace(row.Find(`[data-testid="theirs"]`).Text()))
		require.Equal(t, "8", strings.TrimSpace(row.Find(`[data-testid="yours"]`).Text()))

		res = admin.PostForm(fmt.Sprintf("/integrations/%d/state", in.ID), url.Values{"on": {"false"}, "version": {"2"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		in, err = app.Store.GetIntegration(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, models.IntegrationOff, in.State)
		res = admin.PostForm(fmt.Sprintf("/integrations/%d/state", in.ID), url.Values{"on": {"true"}, "version": {"3"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

		var logs []models.ActivityLog
		require.NoError(t, app.Store.DB(ctx).Where("record_type = 'integration' AND record_id = ?", in.ID).Order("id").Find(&logs).Error)
		require.Len(t, logs, 4)
		require.Equal(t, []string{"create integration", "update integration", "update integration", "update integration"},
			[]string{logs[0].Action, logs[1].Action, logs[2].Action, logs[3].Action})
		require.Equal(t, float64(5), logs[1].After.V["retry_limit"])
		require.Equal(t, "Off", logs[2].After.V["state"])
		require.Equal(t, "admin", logs[1].UserName)
		require.NotEmpty(t, logs[1].RemoteAddr)

		res = admin.PostForm(fmt.Sprintf("/integrations/%d/delete", in.ID), url.Values{"version": {"4"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		_, err = app.Store.GetIntegration(ctx, in.ID)
		require.ErrorIs(t, err, models.ErrNotFound)
	})

	t.Run("DeleteRefusedWithTransactions", func(t *testing.T) {
		db := app.Store.DB(ctx)
		fixture.Transaction(t, db, fixture.Bond(t, db, demo.ID, fixture.Ticket(t, db, demo.ProcessID, nil), nil), nil)
		edit := admin.Get(fmt.Sprintf("/integrations/%d/edit", demo.ID))
		require.Equal(t, 1, edit.TestID(t, "delete-refused").Length())
		res := admin.PostForm(fmt.Sprintf("/integrations/%d/delete", demo.ID), url.Values{"version": {"1"}})
		require.Equal(t, http.StatusConflict, res.StatusCode, res.Body)
		require.Contains(t, res.TestID(t, "error-message").Text(), "Switch it Off instead")
		_, err := app.Store.GetIntegration(ctx, demo.ID)
		require.NoError(t, err)
	})

	t.Run("Invalid", func(t *testing.T) {
		form := handlerstest.IntegrationForm("has space", demo.ProcessID)
		form.Set("retry_limit", "101")
		form.Set("sync_timeout_s", "ten")
		res := admin.PostForm("/integrations", form)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-name").Text(), "no spaces")
		require.Contains(t, res.TestID(t, "error-retry_limit").Text(), "from 0 to 100")
		require.Contains(t, res.TestID(t, "error-sync_timeout_s").Text(), "whole number")
		require.Equal(t, "has space", res.TestID(t, "f-name").AttrOr("value", ""), "the form keeps what was typed")
		form = handlerstest.IntegrationForm(models.DemoIntegrationName, demo.ProcessID)
		res = admin.PostForm("/integrations", form)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-name").Text(), "already exists")
	})

	t.Run("Roles", func(t *testing.T) {
		page := manager.Get(fmt.Sprintf("/integrations/%d/edit", demo.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Equal(t, 1, page.TestID(t, "read-only").Length())
		require.Zero(t, page.TestID(t, "save-integration").Length(), "no edit controls for a manager")
		require.Zero(t, page.TestID(t, "switch-off").Length())
		_, disabled := page.TestID(t, "f-retry_limit").Attr("disabled")
		require.True(t, disabled)
		res := manager.PostForm(fmt.Sprintf("/integrations/%d", demo.ID), handlerstest.IntegrationForm("x", demo.ProcessID))
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-message").Text(), "change integration configuration")
		require.Equal(t, http.StatusForbidden, manager.Get("/integrations/new").StatusCode)
		require.Equal(t, http.StatusForbidden, analyst.Get(fmt.Sprintf("/integrations/%d/edit", demo.ID)).StatusCode)
		require.Zero(t, analyst.Get(fmt.Sprintf("/integrations/%d", demo.ID)).TestID(t, "settings").Length())
	})
}
