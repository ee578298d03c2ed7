package designer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// TestHostilePollAndScriptForms sweeps the forms of issue 14's records as
// TestHostileDesignerForms does the others: poll processors, pollers, a
// message's script (Save and the Test button's dry run) and the connection
// variables. Never a 5xx; a refusal is a 4xx that names the field and stores
// nothing (no record, no version, no activity, no HTTP request).
func TestHostilePollAndScriptForms(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	admin := app.Login(t, "admin", "admin-demo-1")
	demo, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	conn, err := app.Store.ActiveConnection(ctx, demo.ID)
	require.NoError(t, err)

	procFields := url.Values{"name": {"issues"}, "setup_script": {"return {page: 0};"},
		"request_script": {"return {path: '/search'};"}, "response_script": {"return {items: []};"}}
	res := admin.PostForm(fmt.Sprintf("/integrations/%d/poll-processors", demo.ID), cloneValues(procFields))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var proc models.PollProcessor
	require.NoError(t, db.Where("integration_id = ? AND name = 'issues'", demo.ID).Take(&proc).Error)
	pollerFields := url.Values{"name": {"changes"}, "processor_id": {fmt.Sprint(proc.ID)}, "schedule": {"every"},
		"every_s": {"60"}, "cron": {""}, "active": {"on"}, "run_as_user_id": {""}}
	res = admin.PostForm(fmt.Sprintf("/integrations/%d/pollers", demo.ID), cloneValues(pollerFields))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var poller models.Poller
	require.NoError(t, db.Where("integration_id = ? AND name = 'changes'", demo.ID).Take(&poller).Error)
	res = admin.PostForm(fmt.Sprintf("/integrations/%d/variables", demo.ID), url.Values{"variables": {"project=OPS"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)

	// A ticket gives the Create transaction the Test button runs on.
	res = app.Login(t, "analyst", "analyst-demo-1").PostForm("/tickets", url.Values{"short_description": {"Disk full"},
		"state": {"New"}, "priority": {"3"}, "urgency": {"3"}, "impact": {"3"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	var msg models.Message
	require.NoError(t, db.Where("integration_id = ? AND name = 'CreateIncident'", demo.ID).Take(&msg).Error)
	var tr models.Transaction
	require.NoError(t, db.Where("message_id = ?", msg.ID).Order("id DESC").Take(&tr).Error)

	version := func(table string, id int64) func() string {
		return func() string {
			var v int
			require.NoError(t, db.Table(table).Select("version").Where("id = ?", id).Scan(&v).Error)
			return fmt.Sprint(v)
		}
	}
	scriptVersion := func(point string) func() string {
		return func() string {
			var s models.MessageScript
			err := db.Where("message_id = ? AND point = ?", msg.ID, point).Take(&s).Error
			if err == gorm.ErrRecordNotFound {
				return "0"
			}
			require.NoError(t, err)
			return fmt.Sprint(s.Version)
		}
	}
	variableVersions := func() url.Values {
		var vars []models.ConnectionVariable
		require.NoError(t, db.Where("connection_id = ?", conn.ID).Order("name").Find(&vars).Error)
		var lines []string
		for _, v := range vars {
			lines = append(lines, fmt.Sprintf("%s=%d", v.Name, v.Version))
		}
		return url.Values{"versions": {strings.Join(lines, "\n")}}
	}
	state := func() string {
		var v int64
		require.NoError(t, db.Raw(`SELECT coalesce(sum(version), 0) FROM (SELECT version FROM pollers
			UNION ALL SELECT version FROM poll_processors UNION ALL SELECT version FROM message_scripts
			UNION ALL SELECT version FROM connection_variables) v`).Scan(&v).Error)
		parts := []string{fmt.Sprint("versions=", v)}
		for _, tbl := range []string{"pollers", "poll_processors", "poll_requests", "message_scripts", "connection_variables",
			"activity_logs", "http_requests", "transactions"} {
			parts = append(parts, fmt.Sprintf("%s=%d", tbl, app.CountRows(t, tbl)))
		}
		return strings.Join(parts, " ")
	}
	scriptFields := url.Values{"source": {"log('project', vars.project);\nreturn {path: '/issue', body: {summary: stage.short_description}};"},
		"transaction": {tr.Number}}
	inboundFields := url.Values{"source": {"if (!stage.short_description) { reject('no summary'); }\nreturn stage;"},
		"transaction": {tr.Number}}
	stageToRequest := fmt.Sprintf("/messages/%d/scripts/stage_to_request", msg.ID)
	stageToTarget := fmt.Sprintf("/messages/%d/scripts/stage_to_target", msg.ID)
	forms := []handlerstest.HostileForm{
		{Path: fmt.Sprintf("/integrations/%d/poll-processors", demo.ID), Fields: procFields},
		{Path: fmt.Sprintf("/poll-processors/%d", proc.ID), Fields: procFields, Version: version("poll_processors", proc.ID)},
		{Path: fmt.Sprintf("/integrations/%d/pollers", demo.ID), Fields: pollerFields},
		{Path: fmt.Sprintf("/pollers/%d", poller.ID), Fields: pollerFields, Version: version("pollers", poller.ID)},
		{Path: stageToRequest, Fields: scriptFields, Version: scriptVersion("stage_to_request")},
		{Path: stageToRequest + "/test", Fields: scriptFields, Version: scriptVersion("stage_to_request")},
		{Path: stageToTarget, Fields: inboundFields, Version: scriptVersion("stage_to_target")},
		{Path: stageToTarget + "/test", Fields: inboundFields, Version: scriptVersion("stage_to_target")},
		{Path: fmt.Sprintf("/integrations/%d/variables", demo.ID), Fields: url.Values{"variables": {"project=OPS\ngroup=42"}},
			Current: variableVersions},
		{Path: fmt.Sprintf("/pollers/%d/delete", poller.ID), Fields: url.Values{}, Version: version("pollers", poller.ID)},
		{Path: fmt.Sprintf("/poll-processors/%d/delete", proc.ID), Fields: url.Values{}, Version: version("poll_processors", proc.ID)},
	}
	ta := handlerstest.Tally{}
	handlerstest.SweepHostileForms(t, admin, forms, state, func(_ handlerstest.HostileForm, status int) { ta.Add(status) })
	require.NoError(t, db.Take(&models.Poller{}, poller.ID).Error, "no hostile version deleted the poller")

	// An accepted script is stored as given and shown escaped.
	source := "// " + handlerstest.Hostile[1].Value + "\nreturn {};"
	res = admin.PostForm(stageToRequest, url.Values{"version": {scriptVersion("stage_to_request")()}, "source": {source}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var saved models.MessageScript
	require.NoError(t, db.Where("message_id = ? AND point = 'stage_to_request'", msg.ID).Take(&saved).Error)
	require.Equal(t, source, saved.Source)
	page := admin.Get(stageToRequest)
	require.NotContains(t, page.Body, "<script>alert(1)</script>")
	require.Contains(t, page.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	t.Logf("hostile poll and script forms: %d requests by status %v", ta.Total(), ta)
}
