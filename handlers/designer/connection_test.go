package designer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

func connectionValues(name, endpoint string) url.Values {
	return url.Values{"name": {name}, "environment": {"Test"}, "endpoint_url": {endpoint}, "auth_type": {"bearer"},
		"auth_secret": {"s3cret-bearer-" + name}}
}

// remoteStub answers 200 to the right bearer token, 401 to anything else,
// and hands out OAuth2 tokens at /token for client "cid" / "csecret".
func remoteStub(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			_ = r.ParseForm()
			id, secret, _ := r.BasicAuth()
			if id != "cid" || secret != "csecret" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-123", "token_type": "Bearer", "expires_in": 3600})
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer s3cret-bearer-Good", "Bearer tok-123":
			_, _ = w.Write([]byte(`{"ok":true}`))
		default:
			http.Error(w, `{"error":"Unauthorized"}`, http.StatusUnauthorized)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestDesignerConnections(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	demo, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	admin := app.Login(t, "admin", "admin-demo-1")
	manager := app.Login(t, "manager", "manager-demo-1")
	remote := remoteStub(t)
	res := admin.PostForm("/integrations", handlerstest.IntegrationForm("conns", demo.ProcessID))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	in, err := app.Store.GetIntegrationByName(ctx, "conns")
	require.NoError(t, err)
	base := fmt.Sprintf("/integrations/%d/connections", in.ID)
	get := func(name string) models.Connection {
		var c models.Connection
		require.NoError(t, db.Where("integration_id = ? AND name = ?", in.ID, name).Take(&c).Error)
		return c
	}

	t.Run("CreateKeepsSecretSealed", func(t *testing.T) {
		res := admin.PostForm(base, connectionValues("Good", remote.URL+"/messages"))
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		c := get("Good")
		require.True(t, c.Active, "the first connection is the active one")
		require.True(t, strings.HasPrefix(c.AuthSecret, "v1:"), "sealed at rest")
		require.NotContains(t, c.AuthSecret, "s3cret")
		page := admin.Get(fmt.Sprintf("/connections/%d/edit", c.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.NotContains(t, page.Body, "s3cret", "never shown back")
		require.Equal(t, "", page.TestID(t, "f-auth_secret").AttrOr("value", "x"))

		// Saved with the secret left empty: the stored secret is kept.
		form := connectionValues("Good", remote.URL+"/messages")
		form.Set("auth_secret", "")
		form.Set("environment", "Production")
		form.Set("version", "1")
		res = admin.PostForm(fmt.Sprintf("/connections/%d", c.ID), form)
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		after := get("Good")
		require.Equal(t, c.AuthSecret, after.AuthSecret)
		require.Equal(t, "Production", after.Environment)
		var logs []models.ActivityLog
		require.NoError(t, db.Where("record_type = 'connection' AND record_id = ?", c.ID).Order("id").Find(&logs).Error)
		for _, l := range logs {
			b, _ := json.Marshal([]any{l.Before.V, l.After.V})
			require.NotContains(t, string(b), "s3cret")
			require.NotContains(t, string(b), "v1:")
		}
	})

	t.Run("SecondInactiveThenActivate", func(t *testing.T) {
		res := admin.PostForm(base, connectionValues("Bad", remote.URL+"/messages"))
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		bad := get("Bad")
		require.False(t, bad.Active)
		res = admin.PostForm(fmt.Sprintf("/connections/%d/activate", bad.ID), url.Values{"version": {"1"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		require.True(t, get("Bad").Active)
		require.False(t, get("Good").Active)
		good := get("Good")
		res = admin.PostForm(fmt.Sprintf("/connections/%d/activate", good.ID), url.Values{"version": {fmt.Sprint(good.Version)}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
		require.True(t, get("Good").Active)
		require.False(t, get("Bad").Active)
		// Deleting the active one is refused; the inactive one goes.
		res = admin.PostForm(fmt.Sprintf("/connections/%d/delete", good.ID), url.Values{"version": {fmt.Sprint(get("Good").Version)}})
		require.Equal(t, http.StatusConflict, res.StatusCode)
	})

	t.Run("Refused", func(t *testing.T) {
		for field, form := range map[string]url.Values{
			"endpoint_url": connectionValues("Meta", "http://169.254.169.254/latest/meta-data"),
			"auth_secret":  {"name": {"NoSecret"}, "environment": {"Test"}, "endpoint_url": {remote.URL}, "auth_type": {"bearer"}},
			"environment":  {"name": {"Env"}, "environment": {"Moon"}, "endpoint_url": {remote.URL}, "auth_type": {"none"}},
			"auth_type":    {"name": {"Kind"}, "environment": {"Test"}, "endpoint_url": {remote.URL}, "auth_type": {"kerberos"}},
		} {
			res := admin.PostForm(base, form)
			require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, field)
			require.Equal(t, 1, res.TestID(t, "error-"+field).Length(), "%s: %s", field, res.Body)
		}
		res := admin.PostForm(base, connectionValues("Meta6", "http://[fd00:ec2::254]/"))
		require.Contains(t, res.TestID(t, "error-endpoint_url").Text(), "ALLOW_LINK_LOCAL_ENDPOINTS")
		var n int64
		require.NoError(t, db.Model(&models.Connection{}).Where("integration_id = ?", in.ID).Count(&n).Error)
		require.Equal(t, int64(2), n, "nothing stored")
	})

	t.Run("TestConnection", func(t *testing.T) {
		res := admin.Do(http.MethodPost, fmt.Sprintf("/connections/%d/test", get("Good").ID), "", "application/x-www-form-urlencoded",
			http.Header{"X-Csrf-Token": {admin.CSRF()}, "Hx-Request": {"true"}})
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		require.Contains(t, res.TestID(t, "test-outcome").Text(), "works")
		require.Equal(t, "200", strings.TrimSpace(res.TestID(t, "test-status").First().Text()))
		require.Zero(t, res.TestID(t, "test-attempt-2").Length(), "no second attempt after a success")

		res = admin.Do(http.MethodPost, fmt.Sprintf("/connections/%d/test", get("Bad").ID), "", "application/x-www-form-urlencoded",
			http.Header{"X-Csrf-Token": {admin.CSRF()}, "Hx-Request": {"true"}})
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		require.Contains(t, res.TestID(t, "test-outcome").Text(), "does not work")
		require.Equal(t, 1, res.TestID(t, "test-attempt-2").Length(), "a second attempt after a failure")
		require.Contains(t, res.TestID(t, "test-meaning").First().Text(), "refused the credentials")
		var reqs []models.HTTPRequest
		require.NoError(t, db.Where("integration_id = ? AND response_action = 'test connection'", in.ID).Order("id").Find(&reqs).Error)
		require.Len(t, reqs, 3)
		for _, r := range reqs {
			b, _ := json.Marshal(r)
			require.NotContains(t, string(b), "s3cret", "no secret in a stored HTTP Request")
		}
		page := admin.Get(fmt.Sprintf("/http-requests/%d", reqs[2].ID))
		require.Equal(t, http.StatusOK, page.StatusCode, "a test request has its HTTP Request page")
		require.NotContains(t, page.Body, "s3cret")
		require.Equal(t, models.RequestOK, reqs[0].State)
		require.Equal(t, models.RequestError, reqs[2].State)
	})

	t.Run("OAuth2", func(t *testing.T) {
		form := url.Values{"name": {"OAuth"}, "environment": {"Test"}, "endpoint_url": {remote.URL + "/messages"},
			"auth_type": {"oauth2"}, "oauth_token_url": {remote.URL + "/token"}, "oauth_client_id": {"cid"}, "auth_secret": {"csecret"}}
		require.Equal(t, http.StatusSeeOther, admin.PostForm(base, form).StatusCode)
		res := admin.Do(http.MethodPost, fmt.Sprintf("/connections/%d/test", get("OAuth").ID), "", "application/x-www-form-urlencoded",
			http.Header{"X-Csrf-Token": {admin.CSRF()}, "Hx-Request": {"true"}})
		require.Contains(t, res.TestID(t, "test-oauth-outcome").Text(), "Got a token")
		require.Contains(t, res.TestID(t, "test-outcome").Text(), "works")
		form.Set("name", "OAuthBad")
		form.Set("auth_secret", "wrong")
		require.Equal(t, http.StatusSeeOther, admin.PostForm(base, form).StatusCode)
		res = admin.Do(http.MethodPost, fmt.Sprintf("/connections/%d/test", get("OAuthBad").ID), "", "application/x-www-form-urlencoded",
			http.Header{"X-Csrf-Token": {admin.CSRF()}, "Hx-Request": {"true"}})
		require.Contains(t, res.TestID(t, "test-oauth-outcome").Text(), "HTTP 401")
		require.Contains(t, res.TestID(t, "test-outcome").Text(), "does not work")
	})

	t.Run("InboundToken", func(t *testing.T) {
		c := get("Good")
		res := admin.PostForm(fmt.Sprintf("/connections/%d/token", c.ID), url.Values{"version": {fmt.Sprint(c.Version)}})
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		token := res.TestID(t, "inbound-token").AttrOr("value", "")
		require.True(t, strings.HasPrefix(token, "unifi_"))
		u, err := app.Accounts.AuthenticateToken(ctx, token)
		require.NoError(t, err)
		require.Equal(t, models.RoleIntegration, u.Role)
		page := admin.Get(fmt.Sprintf("/connections/%d/edit", c.ID))
		require.NotContains(t, page.Body, token, "shown exactly once")
		// The remote system calls the inbound API with it: authenticated, and
		// told the message name is unknown (the integration has no messages yet).
		inboundCall := func(tok string) handlerstest.Response {
			return app.Client(t).Do(http.MethodPost, "/api/v1/integrations/conns/messages",
				`{"message":{"name":"CreateIncident","source_id":"X1","source_reference":"R1"},"data":{}}`, "application/json",
				http.Header{"Authorization": {"Bearer " + tok}})
		}
		res = inboundCall(token)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
		require.Contains(t, res.Body, "Message name not recognised")
		c = get("Good")
		res = admin.PostForm(fmt.Sprintf("/connections/%d/token", c.ID), url.Values{"version": {fmt.Sprint(c.Version)}})
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		_, err = app.Accounts.AuthenticateToken(ctx, token)
		require.Error(t, err, "the rotated token stops working")
		require.Equal(t, http.StatusUnauthorized, inboundCall(token).StatusCode)
		require.Equal(t, http.StatusUnprocessableEntity, inboundCall(res.TestID(t, "inbound-token").AttrOr("value", "")).StatusCode)
	})

	t.Run("Roles", func(t *testing.T) {
		page := manager.Get(base)
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Zero(t, page.TestID(t, "test-connection").Length())
		require.Zero(t, page.TestID(t, "new-connection").Length())
		page = manager.Get(fmt.Sprintf("/connections/%d/edit", get("Good").ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Zero(t, page.TestID(t, "save-connection").Length())
		require.Zero(t, page.TestID(t, "rotate-token").Length())
		require.Zero(t, page.TestID(t, "test-connection").Length())
		require.Equal(t, 1, admin.Get(fmt.Sprintf("/connections/%d/edit", get("Good").ID)).TestID(t, "test-connection").Length())
		res := manager.PostForm(fmt.Sprintf("/connections/%d/test", get("Good").ID), nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
	})
}
