package handlers_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
	"unifi/models/account"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		res := c.PostForm("/login", url.Values{"name": {"admin"}, "password": {"admin-demo-1"}, "next": {"/integrations"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/integrations", res.Header.Get("Location"))
		page := c.Get("/integrations")
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Equal(t, "admin", strings.TrimSpace(page.TestID(t, "current-user").Find("span").First().Text()))
		require.Equal(t, "Admin", page.TestID(t, "current-role").Text())
	})

	t.Run("WrongPassword", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		const secret = "not-the-password-4711"
		res := c.PostForm("/login", url.Values{"name": {"manager"}, "password": {secret}})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Equal(t, "Wrong user name or password.", res.TestID(t, "login-error").Text())
		require.Contains(t, app.Logs.String(), "login failed")
		require.Contains(t, app.Logs.String(), "user=manager")
		require.NotContains(t, app.Logs.String(), secret, "the password is never logged")
		require.Equal(t, http.StatusSeeOther, c.Get("/integrations").StatusCode, "still anonymous")
	})

	t.Run("UnknownUserSameAnswer", func(t *testing.T) {
		t.Parallel()
		res := app.Client(t).PostForm("/login", url.Values{"name": {"nobody"}, "password": {"whatever-123"}})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.Equal(t, "Wrong user name or password.", res.TestID(t, "login-error").Text())
	})

	t.Run("PasswordTypedAsNameNotLogged", func(t *testing.T) {
		t.Parallel()
		const typedAsName = "S3cret-typed-in-the-name-box"
		res := app.Client(t).PostForm("/login", url.Values{"name": {typedAsName}, "password": {""}})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
		require.NotContains(t, app.Logs.String(), typedAsName, "an unknown name is not logged as typed")
		require.Contains(t, app.Logs.String(), `user="(unknown name)"`)
	})

	t.Run("IntegrationAccountRefusedLikeWrongPassword", func(t *testing.T) {
		t.Parallel()
		// The right password of an account that may not log in is answered
		// exactly like a wrong one: the answer is no password oracle.
		// (WrongPassword checks the wrong one's answer; a second failure from
		// this test's address here would trip the login throttle for the others.)
		right := app.Client(t).PostForm("/login", url.Values{"name": {models.DemoPeerAccount.Name},
			"password": {models.DemoPeerAccount.Password}})
		require.Equal(t, http.StatusUnauthorized, right.StatusCode)
		require.Equal(t, "Wrong user name or password.", right.TestID(t, "login-error").Text())
		require.Contains(t, app.Logs.String(), "login refused", "the log still tells why")
	})

	t.Run("NoOpenRedirect", func(t *testing.T) {
		t.Parallel()
		for _, next := range []string{"https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"} {
			res := app.Client(t).PostForm("/login", url.Values{"name": {"analyst"}, "password": {"analyst-demo-1"},
				"next": {next}})
			require.Equal(t, http.StatusSeeOther, res.StatusCode)
			require.Equal(t, "/", res.Header.Get("Location"), next)
		}
	})

	t.Run("NoOpenRedirectThroughTab", func(t *testing.T) {
		t.Parallel()
		// The query string arrives decoded: next is "/\t/evil.example/x", which a
		// browser reads as //evil.example/x once it drops the tab.
		c := app.Client(t)
		page := c.Get("/login?next=/%09/evil.example/x")
		require.Equal(t, http.StatusOK, page.StatusCode)
		next, _ := page.Doc(t).Find(`input[name="next"]`).Attr("value")
		require.Equal(t, "/", next)
		for _, bad := range []string{"/\n/evil.example", "\t//evil.example", "/a\\b", "/x\x7f", "/%2F/evil.example"} {
			page := c.Get("/login?next=" + url.QueryEscape(bad))
			next, _ := page.Doc(t).Find(`input[name="next"]`).Attr("value")
			require.Equal(t, "/", next, bad)
		}
		page = c.Get("/login?next=" + url.QueryEscape("/transactions?state=7&q=a b"))
		next, _ = page.Doc(t).Find(`input[name="next"]`).Attr("value")
		require.Equal(t, "/transactions?state=7&q=a b", next, "a local path is kept")
		res := c.PostForm("/login", url.Values{"name": {"analyst"}, "password": {"analyst-demo-1"},
			"next": {"/\t/evil.example/x"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/", res.Header.Get("Location"))
	})

	t.Run("AnonymousRedirectedToLogin", func(t *testing.T) {
		t.Parallel()
		res := app.Client(t).Get("/integrations/1")
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		require.Equal(t, "/login?next=/integrations/1", res.Header.Get("Location"))
	})
}

func TestSessionCookie(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	c := app.Client(t)
	before := c.CSRF()
	form := url.Values{"name": {"admin"}, "password": {"admin-demo-1"}, "_csrf": {before}}
	req, err := http.NewRequest(http.MethodPost, app.Server.URL+"/login", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.HTTP.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	var cookie *http.Cookie
	for _, ck := range res.Cookies() {
		if ck.Name == "unifi_session" {
			cookie = ck
		}
	}
	require.NotNil(t, cookie, "login sets the session cookie")
	require.True(t, cookie.HttpOnly)
	require.Equal(t, http.SameSiteLaxMode, cookie.SameSite)
	require.False(t, cookie.Secure, "plain HTTP in tests; BASE_URL https makes it Secure")
	require.NotEqual(t, before, c.CSRF(), "the session (and its CSRF token) is rotated at login")

	// Logout ends the session: the old cookie no longer works, even replayed.
	stolen := cookie.Value
	require.Equal(t, http.StatusSeeOther, c.PostForm("/logout", nil).StatusCode)
	replay := app.Client(t)
	u, _ := url.Parse(app.Server.URL)
	replay.HTTP.Jar.SetCookies(u, []*http.Cookie{{Name: "unifi_session", Value: stolen, Path: "/"}})
	require.Equal(t, http.StatusSeeOther, replay.Get("/integrations").StatusCode)
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	c := app.Login(t, "admin", "admin-demo-1")

	t.Run("MissingToken", func(t *testing.T) {
		t.Parallel()
		res := c.PostRaw("/logout", url.Values{})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-message").Text(), "security token is missing or out of date")
	})
	t.Run("WrongToken", func(t *testing.T) {
		t.Parallel()
		res := c.PostRaw("/logout", url.Values{"_csrf": {"forged"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
	})
	t.Run("LoginNeedsTokenToo", func(t *testing.T) {
		t.Parallel()
		res := app.Client(t).PostRaw("/login", url.Values{"name": {"admin"}, "password": {"admin-demo-1"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
	})
}

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	for _, path := range []string{"/login", "/healthz", "/static/app.css", "/no-such-page"} {
		res := app.Client(t).Get(path)
		csp := res.Header.Get("Content-Security-Policy")
		require.Contains(t, csp, "script-src 'self'", path)
		require.NotContains(t, csp, "unsafe-inline", path)
		require.Contains(t, csp, "frame-ancestors 'none'", path)
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), path)
		require.Equal(t, "same-origin", res.Header.Get("Referrer-Policy"), path)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	c := app.Client(t)
	res := c.Get("/healthz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"status":"ok"}`, res.Body)
	res = c.Get("/readyz")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.JSONEq(t, `{"status":"ready"}`, res.Body)
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	for i := range account.MaxFailuresPerPair {
		res := app.Client(t).PostForm("/login", url.Values{"name": {"manager"}, "password": {"wrong-password-" + string(rune('a'+i))}})
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, "attempt %d", i+1)
	}
	// Now even the right password is refused for this account, with a reason and Retry-After.
	res := app.Client(t).PostForm("/login", url.Values{"name": {"manager"}, "password": {"manager-demo-1"}})
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.Contains(t, res.TestID(t, "login-error").Text(), "Too many failed logins for this account from your address. Try again in")
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	// Another account is not affected.
	app.Login(t, "analyst", "analyst-demo-1")
}

// TestStaticNoListing: /static/ serves files, never a directory listing.
func TestStaticNoListing(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	c := app.Client(t)
	require.Equal(t, http.StatusOK, c.Get("/static/app.css").StatusCode)
	for _, path := range []string{"/static/", "/static/vendor/", "/static/vendor", "/static/%2e/"} {
		res := c.Get(path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
		require.NotContains(t, res.Body, `href="app.css"`, path)
		require.NotContains(t, res.Body, `href="htmx.min.js"`, path)
		require.Contains(t, res.TestID(t, "error-message").Text(), "There is no page at this address.", path)
	}
}

// TestMethodNotAllowed: a known address asked with the wrong method answers
// 405 with an Allow header, in plain words.
func TestMethodNotAllowed(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	c := app.Client(t)
	res := c.Get("/logout")
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	require.Contains(t, res.Header.Get("Allow"), http.MethodPost)
	require.Contains(t, res.TestID(t, "error-message").Text(), "This address does not accept that kind of request.")
	res = c.Do(http.MethodDelete, "/api/v1/integrations/demo/messages", "", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode)
	require.Contains(t, res.Header.Get("Allow"), http.MethodPost)
	require.JSONEq(t, `{"error":"This address does not accept that kind of request."}`, res.Body)
	admin := app.Login(t, "admin", "admin-demo-1")
	res = admin.Get("/users/1/role")
	require.Equal(t, http.StatusMethodNotAllowed, res.StatusCode, "logged in too")
	require.Equal(t, http.MethodPost, res.Header.Get("Allow"))
	require.Equal(t, http.StatusNotFound, admin.Get("/no-such-page").StatusCode)
	require.Empty(t, admin.Get("/no-such-page").Header.Get("Allow"))
}
