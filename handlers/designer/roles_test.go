package designer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// TestDesignerRoleMatrix: the Designer's pages as every UI role. Admin and
// manager read every configuration page (pollers, poll processors, poll
// requests, scripts and connection variables too), the manager without edit
// controls; the analyst sees none of them (403). Every change is the
// admin's, a script's dry run too: a manager's or analyst's direct POST is
// refused with 403 and the reason, and changes nothing.
func TestDesignerRoleMatrix(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	conn, err := app.Store.ActiveConnection(ctx, in.ID)
	require.NoError(t, err)
	clients := map[models.Role]*handlerstest.Client{}
	for _, r := range handlerstest.DemoUsers {
		clients[r.Role] = app.Login(t, r.Name, r.Password)
	}
	pf := models.ProcessField{ProcessID: in.ProcessID, Name: "matrix", Label: "Matrix", Type: models.FieldText, Version: 1}
	require.NoError(t, app.Store.DB(ctx).Create(&pf).Error)
	ra := models.ResponseAction{IntegrationID: &in.ID, StatusCode: 503, Retry: true, Description: "matrix"}
	require.NoError(t, app.Store.DB(ctx).Create(&ra).Error)
	proc := models.PollProcessor{IntegrationID: in.ID, Name: "matrix", RequestScript: "return;", ResponseScript: "return {};"}
	require.NoError(t, app.Store.DB(ctx).Create(&proc).Error)
	every := 60
	poller := models.Poller{IntegrationID: in.ID, ProcessorID: proc.ID, Name: "matrix", EveryS: &every}
	require.NoError(t, app.Store.DB(ctx).Create(&poller).Error)
	now, ms := time.Now(), 12
	pr := models.PollRequest{PollerID: poller.ID, IntegrationID: in.ID, ProcessorID: &proc.ID, State: models.PollDone,
		Owner: "matrix", StartedAt: now, FinishedAt: &now, DurationMS: &ms, MarkBefore: json.RawMessage(`{}`), MarkAfter: json.RawMessage(`{}`)}
	require.NoError(t, app.Store.DB(ctx).Create(&pr).Error)
	var msg models.Message
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = ? AND name = 'CreateIncident'", in.ID).Take(&msg).Error)
	require.NoError(t, app.Store.DB(ctx).Create(&models.MessageScript{MessageID: msg.ID, Point: "source_to_stage",
		Source: "return stage;", Version: 1}).Error)
	require.NoError(t, app.Store.DB(ctx).Create(&models.ConnectionVariable{ConnectionID: conn.ID, Name: "project", Value: "OPS"}).Error)
	scriptPage := fmt.Sprintf("/messages/%d/scripts/source_to_stage", msg.ID)
	pages := map[string][]string{ // page -> the edit controls it shows an admin (none: a page of runs, read by both)
		fmt.Sprintf("/response-actions/%d/edit", ra.ID): {"delete-response-action"},
		fmt.Sprintf("/integrations/%d/messages", in.ID): {"new-message"},
		"/processes": {"new-process"},
		fmt.Sprintf("/processes/%d/edit", in.ProcessID):    {"save-process"},
		fmt.Sprintf("/process-fields/%d/edit", pf.ID):      {"save-pfield"},
		fmt.Sprintf("/integrations/%d/edit", in.ID):        {"save-integration"},
		fmt.Sprintf("/integrations/%d/connections", in.ID): {"new-connection"},
		fmt.Sprintf("/connections/%d/edit", conn.ID):       {"save-connection"},
		fmt.Sprintf("/integrations/%d/pollers", in.ID):     {"new-poller", "new-processor"},
		fmt.Sprintf("/pollers/%d/edit", poller.ID):         {"save-poller", "delete-poller"},
		fmt.Sprintf("/poll-processors/%d/edit", proc.ID):   {"save-processor", "delete-processor"},
		fmt.Sprintf("/pollers/%d/requests", poller.ID):     nil,
		fmt.Sprintf("/poll-requests/%d", pr.ID):            nil,
		fmt.Sprintf("/integrations/%d/scripts", in.ID):     {"variables-save"},
		scriptPage: {"save", "test"},
	}
	for _, r := range handlerstest.DemoUsers {
		for path, controls := range pages {
			res := clients[r.Role].Get(path)
			switch r.Role {
			case models.RoleAnalyst:
				require.Equal(t, http.StatusForbidden, res.StatusCode, "%s GET %s", r.Name, path)
				require.NotEmpty(t, strings.TrimSpace(res.TestID(t, "error-message").Text()))
			case models.RoleManager:
				require.Equal(t, http.StatusOK, res.StatusCode, "%s GET %s", r.Name, path)
				for _, control := range controls {
					require.Zero(t, res.TestID(t, control).Length(), "%s sees no %s on %s", r.Name, control, path)
				}
				if len(controls) > 0 {
					require.Equal(t, 1, res.TestID(t, "read-only").Length(), path)
				}
				require.Zero(t, res.Doc(t).Find("main form[method=post] button[type=submit]").Length(), "%s has no submit button on %s", r.Name, path)
			default:
				require.Equal(t, http.StatusOK, res.StatusCode, "%s GET %s", r.Name, path)
				for _, control := range controls {
					require.Equal(t, 1, res.TestID(t, control).Length(), "%s sees %s on %s", r.Name, control, path)
				}
			}
		}
	}
	for _, path := range []string{fmt.Sprintf("/integrations/%d/pollers/new", in.ID), fmt.Sprintf("/integrations/%d/poll-processors/new", in.ID)} {
		for _, r := range []models.Role{models.RoleManager, models.RoleAnalyst} {
			res := clients[r].Get(path)
			require.Equal(t, http.StatusForbidden, res.StatusCode, "%s GET %s", r, path)
			require.Contains(t, res.TestID(t, "error-message").Text(), "change integration configuration", "%s GET %s says why", r, path)
		}
	}
	posts := []string{"/integrations", fmt.Sprintf("/integrations/%d", in.ID), fmt.Sprintf("/integrations/%d/state", in.ID),
		fmt.Sprintf("/integrations/%d/delete", in.ID), fmt.Sprintf("/integrations/%d/connections", in.ID),
		fmt.Sprintf("/connections/%d", conn.ID), fmt.Sprintf("/connections/%d/activate", conn.ID),
		fmt.Sprintf("/connections/%d/delete", conn.ID), fmt.Sprintf("/connections/%d/token", conn.ID),
		fmt.Sprintf("/connections/%d/test", conn.ID), "/processes", fmt.Sprintf("/processes/%d", in.ProcessID),
		fmt.Sprintf("/processes/%d/fields", in.ProcessID), fmt.Sprintf("/process-fields/%d", pf.ID),
		fmt.Sprintf("/process-fields/%d/delete", pf.ID), fmt.Sprintf("/integrations/%d/response-actions", in.ID),
		fmt.Sprintf("/response-actions/%d", ra.ID), fmt.Sprintf("/response-actions/%d/delete", ra.ID),
		fmt.Sprintf("/integrations/%d/pollers", in.ID), fmt.Sprintf("/pollers/%d", poller.ID),
		fmt.Sprintf("/pollers/%d/delete", poller.ID), fmt.Sprintf("/integrations/%d/poll-processors", in.ID),
		fmt.Sprintf("/poll-processors/%d", proc.ID), fmt.Sprintf("/poll-processors/%d/delete", proc.ID),
		fmt.Sprintf("/integrations/%d/variables", in.ID), scriptPage, scriptPage + "/test"}
	version := func() string {
		var v int
		require.NoError(t, app.Store.DB(ctx).Raw(`SELECT coalesce(sum(version), 0) FROM (SELECT version FROM integrations
			UNION ALL SELECT version FROM connections UNION ALL SELECT version FROM processes
			UNION ALL SELECT version FROM process_fields UNION ALL SELECT version FROM response_actions
			UNION ALL SELECT version FROM pollers UNION ALL SELECT version FROM poll_processors
			UNION ALL SELECT version FROM message_scripts UNION ALL SELECT version FROM connection_variables) v`).Scan(&v).Error)
		parts := []string{fmt.Sprint("versions=", v)}
		for _, tbl := range []string{"activity_logs", "http_requests", "integrations", "connections", "processes", "process_fields",
			"response_actions", "pollers", "poll_processors", "poll_requests", "message_scripts", "connection_variables"} {
			parts = append(parts, fmt.Sprintf("%s=%d", tbl, app.CountRows(t, tbl)))
		}
		return strings.Join(parts, " ")
	}
	before := version()
	for _, r := range []models.Role{models.RoleManager, models.RoleAnalyst} {
		for _, path := range posts {
			// Values every one of these forms would accept from an admin,
			// so a missing gate shows as a change.
			form := handlerstest.IntegrationForm("matrix", in.ProcessID)
			form.Set("version", "1")
			form.Set("processor_id", fmt.Sprint(proc.ID))
			form.Set("schedule", "every")
			form.Set("every_s", "30")
			form.Set("request_script", "return;")
			form.Set("response_script", "return {};")
			form.Set("source", "return {x: 1};")
			form.Set("variables", "project=SEC")
			form.Set("versions", "project=1")
			res := clients[r].PostForm(path, form)
			require.Equal(t, http.StatusForbidden, res.StatusCode, "%s POST %s: %s", r, path, res.Body)
			require.Contains(t, res.TestID(t, "error-message").Text(), "change integration configuration", "%s POST %s says why", r, path)
		}
	}
	require.Equal(t, before, version(), "no refused request changed anything")
}
