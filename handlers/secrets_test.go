package handlers_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// TestPasswordsNeverLogged does everything that carries a password — login
// right and wrong, create a user, reset a password, the tickets API and the
// inbound API with right and wrong credentials — and greps the captured log.
func TestPasswordsNeverLogged(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	secrets := map[string]string{
		"admin password":       "admin-demo-1",
		"wrong login password": "login-guess-S3CRET",
		"new user password":    "created-pw-S3CRET",
		"reset password":       "reset-pw-S3CRET",
		"api wrong password":   "api-pw-S3CRET",
		"inbound password":     models.DemoPeerAccount.Password,
		"inbound wrong":        "inbound-pw-S3CRET",
		"inbound bearer token": models.DemoPeerToken,
		"inbound wrong bearer": "bearer-guess-S3CRET-0123456789",
	}
	admin := app.Login(t, "admin", secrets["admin password"])
	require.Equal(t, http.StatusUnauthorized, app.Client(t).PostForm("/login",
		url.Values{"name": {"analyst"}, "password": {secrets["wrong login password"]}}).StatusCode)
	require.Equal(t, http.StatusSeeOther, admin.PostForm("/users",
		url.Values{"name": {"pwuser"}, "role": {"analyst"}, "password": {secrets["new user password"]}}).StatusCode)
	u, err := app.Accounts.Authenticate(context.Background(), "pwuser", secrets["new user password"])
	require.NoError(t, err)
	require.Equal(t, http.StatusSeeOther, admin.PostForm(fmt.Sprintf("/users/%d/password", u.ID),
		url.Values{"password": {secrets["reset password"]}}).StatusCode)
	require.Equal(t, http.StatusUnprocessableEntity, admin.PostForm(fmt.Sprintf("/users/%d/password", u.ID),
		url.Values{"password": {"short"}}).StatusCode)

	do := func(path, auth string) int {
		req, err := http.NewRequest(http.MethodPost, app.Server.URL+path, strings.NewReader(
			`{"message":{"name":"CreateIncident","source_id":"PWTEST-`+fmt.Sprint(len(auth))+`","source_reference":"EXT-PW"},"data":{"short_description":"x"}}`))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	basic := func(user, pw string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pw))
	}
	require.Equal(t, http.StatusUnauthorized, do("/api/v1/tickets", basic("analyst", secrets["api wrong password"])))
	inbound := "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"
	require.Equal(t, http.StatusUnauthorized, do(inbound, basic(models.DemoPeerAccount.Name, secrets["inbound wrong"])))
	require.Equal(t, http.StatusUnauthorized, do(inbound, "Bearer "+secrets["inbound wrong bearer"]))
	require.Less(t, do(inbound, basic(models.DemoPeerAccount.Name, secrets["inbound password"])), 500)
	require.Less(t, do(inbound, "Bearer "+secrets["inbound bearer token"]), 500)

	logs := app.Logs.String()
	require.Contains(t, logs, "login failed", "the log was captured")
	for what, s := range secrets {
		require.NotContains(t, logs, s, "%s in the log", what)
		require.NotContains(t, logs, base64.StdEncoding.EncodeToString([]byte(s)), "%s (base64) in the log", what)
	}
	// Stored HTTP Requests of the inbound API keep no credentials either.
	var rows []struct{ RequestHeaders, RequestBody string }
	require.NoError(t, app.Store.DB(context.Background()).Raw(`SELECT request_headers::text AS request_headers, request_body
		FROM http_requests`).Scan(&rows).Error)
	require.NotEmpty(t, rows)
	for _, r := range rows {
		for what, s := range secrets {
			require.NotContains(t, r.RequestHeaders, s, "%s stored in an HTTP Request", what)
			require.NotContains(t, r.RequestHeaders, base64.StdEncoding.EncodeToString([]byte(models.DemoPeerAccount.Name+":"+s)),
				"%s stored (basic auth) in an HTTP Request", what)
		}
		require.Contains(t, r.RequestHeaders, "[redacted]")
	}
}

// TestConnectionSecretsNeverShown: the connection's token is sealed at rest
// and appears, neither in clear nor sealed, on any page an admin can open.
func TestConnectionSecretsNeverShown(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	admin := bt.app.Login(t, "admin", "admin-demo-1")
	var sealed string
	require.NoError(t, bt.app.Store.DB(context.Background()).Raw(`SELECT auth_secret FROM connections WHERE integration_id = ?`,
		bt.in.ID).Scan(&sealed).Error)
	require.NotEmpty(t, sealed)
	require.NotContains(t, sealed, models.DemoPeerToken, "sealed at rest")
	var reqID int64
	require.NoError(t, bt.app.Store.DB(context.Background()).Raw(`SELECT id FROM http_requests ORDER BY id LIMIT 1`).Scan(&reqID).Error)
	pages := []string{"/", "/integrations", fmt.Sprintf("/integrations/%d", bt.in.ID), "/transactions",
		fmt.Sprintf("/transactions/%d", bt.done.ID), fmt.Sprintf("/http-requests/%d", reqID), "/bonds",
		fmt.Sprintf("/bonds/%d", bt.bond.ID), fmt.Sprintf("/tickets/%d", bt.ticket.ID), "/activity", "/users",
		"/operations/live"}
	for _, p := range pages {
		res := admin.Get(p)
		require.Equal(t, http.StatusOK, res.StatusCode, p)
		require.NotContains(t, res.Body, models.DemoPeerToken, "%s shows the token", p)
		require.NotContains(t, res.Body, sealed, "%s shows the sealed secret", p)
		require.NotContains(t, res.Body, models.DemoPeerAccount.Password, p)
		require.NotContains(t, res.Body, "password_hash", p)
	}
}
