package designer_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// TestDesignerRoleMatrix: the Designer's pages as every UI role. Admin and
// manager read every configuration page, the manager without edit
// controls; the analyst sees none of them (403). Every change is the
// admin's: a manager's or analyst's direct POST is refused with 403 and the
// reason, and changes nothing.
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
	pages := map[string]string{ // page -> an edit control it shows an admin
		"/processes": "new-process",
		fmt.Sprintf("/processes/%d/edit", in.ProcessID):    "save-process",
		fmt.Sprintf("/process-fields/%d/edit", pf.ID):      "save-pfield",
		fmt.Sprintf("/integrations/%d/edit", in.ID):        "save-integration",
		fmt.Sprintf("/integrations/%d/connections", in.ID): "new-connection",
		fmt.Sprintf("/connections/%d/edit", conn.ID):       "save-connection",
	}
	for _, r := range handlerstest.DemoUsers {
		for path, control := range pages {
			res := clients[r.Role].Get(path)
			switch r.Role {
			case models.RoleAnalyst:
				require.Equal(t, http.StatusForbidden, res.StatusCode, "%s GET %s", r.Name, path)
				require.NotEmpty(t, strings.TrimSpace(res.TestID(t, "error-message").Text()))
			case models.RoleManager:
				require.Equal(t, http.StatusOK, res.StatusCode, "%s GET %s", r.Name, path)
				require.Zero(t, res.TestID(t, control).Length(), "%s sees no %s on %s", r.Name, control, path)
				require.Equal(t, 1, res.TestID(t, "read-only").Length(), path)
			default:
				require.Equal(t, http.StatusOK, res.StatusCode, "%s GET %s", r.Name, path)
				require.Equal(t, 1, res.TestID(t, control).Length(), "%s sees %s on %s", r.Name, control, path)
			}
		}
	}
	posts := []string{"/integrations", fmt.Sprintf("/integrations/%d", in.ID), fmt.Sprintf("/integrations/%d/state", in.ID),
		fmt.Sprintf("/integrations/%d/delete", in.ID), fmt.Sprintf("/integrations/%d/connections", in.ID),
		fmt.Sprintf("/connections/%d", conn.ID), fmt.Sprintf("/connections/%d/activate", conn.ID),
		fmt.Sprintf("/connections/%d/delete", conn.ID), fmt.Sprintf("/connections/%d/token", conn.ID),
		fmt.Sprintf("/connections/%d/test", conn.ID), "/processes", fmt.Sprintf("/processes/%d", in.ProcessID),
		fmt.Sprintf("/processes/%d/fields", in.ProcessID), fmt.Sprintf("/process-fields/%d", pf.ID),
		fmt.Sprintf("/process-fields/%d/delete", pf.ID)}
	version := func() string {
		var v int
		require.NoError(t, app.Store.DB(ctx).Raw(`SELECT coalesce(sum(version), 0) FROM (SELECT version FROM integrations
			UNION ALL SELECT version FROM connections UNION ALL SELECT version FROM processes
			UNION ALL SELECT version FROM process_fields) v`).Scan(&v).Error)
		return fmt.Sprint(v, " ", app.CountRows(t, "activity_logs"), " ", app.CountRows(t, "http_requests"), " ",
			app.CountRows(t, "integrations"), " ", app.CountRows(t, "connections"), " ", app.CountRows(t, "processes"),
			" ", app.CountRows(t, "process_fields"))
	}
	before := version()
	for _, r := range []models.Role{models.RoleManager, models.RoleAnalyst} {
		for _, path := range posts {
			form := handlerstest.IntegrationForm("matrix", in.ProcessID)
			form.Set("version", "1")
			res := clients[r].PostForm(path, form)
			require.Equal(t, http.StatusForbidden, res.StatusCode, "%s POST %s: %s", r, path, res.Body)
			require.Contains(t, res.TestID(t, "error-message").Text(), "change integration configuration", "%s POST %s says why", r, path)
		}
	}
	require.Equal(t, before, version(), "no refused request changed anything")
}
