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
	"unifi/models"
)

// TestDesignerPollers: an admin creates a poll processor and a poller (a
// script that does not compile and a bad cron expression are refused next
// to their fields), edits it (an edit of an older version is 409), the
// poller shows on the integration page; a manager reads without controls, an
// analyst is refused, and neither may change anything.
func TestDesignerPollers(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	admin := app.Login(t, "admin", "admin-demo-1")
	list := fmt.Sprintf("/integrations/%d/pollers", in.ID)

	res := admin.Get(list)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, res.TestID(t, "pollers-empty").Length())

	proc := url.Values{"name": {"issues"}, "request_script": {"return {path: '/rest/api/2/search'"},
		"response_script": {"return {items: []};"}}
	res = admin.PostForm(fmt.Sprintf("/integrations/%d/poll-processors", in.ID), proc)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-request_script").Text(), "issues / Request")
	proc.Set("request_script", "return {path: '/rest/api/2/search'};")
	res = admin.PostForm(fmt.Sprintf("/integrations/%d/poll-processors", in.ID), proc)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var p models.PollProcessor
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = ? AND name = ?", in.ID, "issues").Take(&p).Error)

	poller := url.Values{"name": {"jira"}, "processor_id": {fmt.Sprint(p.ID)}, "schedule": {"cron"}, "cron": {"every minute"}}
	res = admin.PostForm(fmt.Sprintf("/integrations/%d/pollers", in.ID), poller)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-cron").Text(), "Not a cron expression")
	poller.Set("cron", "*/5 * * * *")
	res = admin.PostForm(fmt.Sprintf("/integrations/%d/pollers", in.ID), poller)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var pl models.Poller
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = ? AND name = ?", in.ID, "jira").Take(&pl).Error)
	require.Equal(t, "*/5 * * * *", pl.Cron)
	require.Nil(t, pl.EveryS)

	poller.Set("schedule", "every")
	poller.Set("every_s", "30")
	poller.Set("active", "on")
	poller.Set("version", "1")
	res = admin.PostForm(fmt.Sprintf("/pollers/%d", pl.ID), poller)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	res = admin.PostForm(fmt.Sprintf("/pollers/%d", pl.ID), poller) // still version 1: stale
	require.Equal(t, http.StatusConflict, res.StatusCode)
	var entries int64
	require.NoError(t, app.Store.DB(ctx).Table("activity_logs").Where("record_type IN ?", []string{"poller", "poll processor"}).
		Count(&entries).Error)
	require.EqualValues(t, 3, entries, "create processor, create poller, update poller audited")

	res = admin.Get(list)
	require.Equal(t, 1, res.TestID(t, "poller-row-jira").Length())
	require.Contains(t, res.TestID(t, "poller-row-jira").Text(), "every 30 s")
	// The integration page reads its pollers in its own batch: the processor's
	// name and the running state come with them.
	require.NoError(t, app.Store.DB(ctx).Exec("UPDATE pollers SET failures = 3, last_error = 'remote said 503' WHERE id = ?", pl.ID).Error)
	res = admin.Get(fmt.Sprintf("/integrations/%d", in.ID))
	require.Equal(t, 1, res.TestID(t, "poller-row-jira").Length(), "the integration page shows its pollers")
	require.Contains(t, res.TestID(t, "poller-row-jira").Text(), "issues")
	require.Contains(t, res.TestID(t, "poller-failures").Text(), "3 in a row")
	require.Equal(t, "remote said 503", res.TestID(t, "poller-last-error").Text())
	require.NoError(t, app.Store.DB(ctx).Exec("UPDATE pollers SET failures = 0, last_error = '' WHERE id = ?", pl.ID).Error)
	res = admin.PostForm(fmt.Sprintf("/poll-processors/%d/delete", p.ID), url.Values{"version": {"1"}})
	require.Equal(t, http.StatusConflict, res.StatusCode, "a processor a poller runs is not deleted")

	t.Run("Roles", func(t *testing.T) {
		manager := app.Login(t, "manager", "manager-demo-1")
		analyst := app.Login(t, "analyst", "analyst-demo-1")
		for _, path := range []string{list, fmt.Sprintf("/pollers/%d/edit", pl.ID), fmt.Sprintf("/poll-processors/%d/edit", p.ID),
			fmt.Sprintf("/pollers/%d/requests", pl.ID)} {
			res := manager.Get(path)
			require.Equal(t, http.StatusOK, res.StatusCode, path)
			for _, control := range []string{"new-poller", "save-poller", "save-processor"} {
				require.Zero(t, res.TestID(t, control).Length(), path)
			}
			require.Equal(t, http.StatusForbidden, analyst.Get(path).StatusCode, path)
		}
		for _, path := range []string{fmt.Sprintf("/integrations/%d/pollers", in.ID), fmt.Sprintf("/pollers/%d", pl.ID),
			fmt.Sprintf("/pollers/%d/delete", pl.ID), fmt.Sprintf("/poll-processors/%d", p.ID)} {
			for _, c := range []*handlerstest.Client{manager, analyst} {
				res := c.PostForm(path, cloneValues(poller))
				require.Equal(t, http.StatusForbidden, res.StatusCode, path)
				msg := res.TestID(t, "error-message").Text()
				require.True(t, strings.Contains(msg, "change integration configuration"), "%s: %s", path, msg)
			}
		}
	})
}

// cloneValues copies a form for another client.
func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Del("_csrf") // the client posting it adds its own
	return out
}
