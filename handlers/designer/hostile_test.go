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

// TestHostileDesignerForms posts every Designer form with each field, one
// at a time, set to a hostile value: never a 5xx; a refusal is a 4xx that
// names the field and stores nothing (no record, no version, no activity);
// what is accepted is stored as given and shown escaped.
func TestHostileDesignerForms(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	admin := app.Login(t, "admin", "admin-demo-1")
	demo, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	conn, err := app.Store.ActiveConnection(ctx, demo.ID)
	require.NoError(t, err)
	spare := admin.PostForm(fmt.Sprintf("/integrations/%d/connections", demo.ID), url.Values{"name": {"Spare"},
		"environment": {"Test"}, "endpoint_url": {"http://127.0.0.1:1/"}, "auth_type": {"none"}})
	require.Equal(t, http.StatusSeeOther, spare.StatusCode, spare.Body)
	var spareConn models.Connection
	require.NoError(t, db.Where("integration_id = ? AND name = 'Spare'", demo.ID).Take(&spareConn).Error)
	ta := handlerstest.Tally{}
	state := func() string {
		var v int
		require.NoError(t, db.Raw(`SELECT coalesce(sum(version), 0) FROM (SELECT version FROM integrations
			UNION ALL SELECT version FROM connections) v`).Scan(&v).Error)
		parts := []string{fmt.Sprint("versions=", v)}
		for _, tbl := range []string{"integrations", "connections", "users", "activity_logs", "processes"} {
			parts = append(parts, fmt.Sprintf("%s=%d", tbl, app.CountRows(t, tbl)))
		}
		return strings.Join(parts, " ")
	}
	integrationVersion := func() string {
		in, err := app.Store.GetIntegration(ctx, demo.ID)
		require.NoError(t, err)
		return fmt.Sprint(in.Version)
	}
	connVersion := func(id int64) func() string {
		return func() string {
			var c models.Connection
			require.NoError(t, db.Take(&c, id).Error)
			return fmt.Sprint(c.Version)
		}
	}
	connFields := url.Values{"name": {"Hostile"}, "environment": {"Test"}, "endpoint_url": {"http://127.0.0.1:1/in"},
		"auth_type": {"basic"}, "auth_username": {"u"}, "auth_secret": {"pw"}, "oauth_token_url": {""},
		"oauth_client_id": {""}, "oauth_scopes": {""}}
	forms := []handlerstest.HostileForm{
		{Path: "/integrations", Fields: handlerstest.IntegrationForm("hostile", demo.ProcessID), Version: nil},
		{Path: fmt.Sprintf("/integrations/%d", demo.ID), Fields: handlerstest.IntegrationForm(models.DemoIntegrationName, demo.ProcessID), Version: integrationVersion},
		{Path: fmt.Sprintf("/integrations/%d/state", demo.ID), Fields: url.Values{"on": {"false"}}, Version: integrationVersion},
		{Path: fmt.Sprintf("/integrations/%d/connections", demo.ID), Fields: connFields, Version: nil},
		{Path: fmt.Sprintf("/connections/%d", conn.ID), Fields: connFields, Version: connVersion(conn.ID)},
		{Path: fmt.Sprintf("/connections/%d/activate", spareConn.ID), Fields: url.Values{}, Version: connVersion(spareConn.ID)},
		{Path: fmt.Sprintf("/connections/%d/delete", spareConn.ID), Fields: url.Values{}, Version: connVersion(spareConn.ID)},
		{Path: fmt.Sprintf("/integrations/%d/delete", demo.ID), Fields: url.Values{}, Version: integrationVersion},
	}
	handlerstest.SweepHostileForms(t, admin, forms, state, func(f handlerstest.HostileForm, status int) {
		ta.Add(status)
		if status < 400 && strings.HasSuffix(f.Path, "/state") { // switched off: back on for the next
			require.Equal(t, http.StatusSeeOther, admin.PostForm(f.Path, url.Values{"on": {"true"}, "version": {integrationVersion()}}).StatusCode)
		}
	})
	in, err := app.Store.GetIntegration(ctx, demo.ID)
	require.NoError(t, err)
	require.NotEqual(t, models.IntegrationOff, in.State)

	// Accepted text is stored as given and rendered escaped.
	form := handlerstest.IntegrationForm("escaped", demo.ProcessID)
	form.Set("description", handlerstest.Hostile[1].Value)
	res := admin.PostForm("/integrations", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	esc, err := app.Store.GetIntegrationByName(ctx, "escaped")
	require.NoError(t, err)
	require.Equal(t, handlerstest.Hostile[1].Value, esc.Description)
	page := admin.Get(fmt.Sprintf("/integrations/%d/edit", esc.ID))
	require.NotContains(t, page.Body, "<script>alert(1)</script>")
	require.Contains(t, page.Body, "&lt;script&gt;alert(1)&lt;/script&gt;")
	t.Logf("hostile designer forms: %d requests by status %v", ta.Total(), ta)
}
