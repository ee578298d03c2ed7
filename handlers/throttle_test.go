package handlers_test

import (
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
	"unifi/models/account"
)

// The client addresses below reach the app through a trusted proxy (the
// test's loopback connection) with X-Forwarded-For.

func fromAddr(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }

func withBasicFrom(addr, user, password string) http.Header {
	h := fromAddr(addr)
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+password)))
	return h
}

// uiLogin posts the login form from addr.
func uiLogin(c *handlerstest.Client, addr, name, password string) handlerstest.Response {
	form := url.Values{"name": {name}, "password": {password}, "_csrf": {c.CSRF()}}
	return c.Do(http.MethodPost, "/login", form.Encode(), "application/x-www-form-urlencoded", fromAddr(addr))
}

const ticketBody = `{"short_description":"throttle test"}`

// TestLoginThrottleEveryWayIn: the UI login, the tickets API's basic auth and
// the inbound API's basic auth share one throttle, and a right password for a
// role the API refuses answers exactly like a wrong one.
func TestLoginThrottleEveryWayIn(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	analyst, manager, admin := models.DemoLogins[2], models.DemoLogins[1], models.DemoLogins[0]
	require.Equal(t, models.RoleAnalyst, analyst.Role)
	require.Equal(t, models.RoleManager, manager.Role)
	require.Equal(t, models.RoleAdmin, admin.Role)
	inbound := "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"

	t.Run("TicketsAPIBasicAuth", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		var statuses []int
		for range 40 {
			res := c.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json",
				withBasicFrom("203.0.113.1", analyst.Name, "wrong-password"))
			statuses = append(statuses, res.StatusCode)
		}
		for i, st := range statuses {
			want := http.StatusUnauthorized
			if i >= account.MaxFailuresPerPair {
				want = http.StatusTooManyRequests
			}
			require.Equal(t, want, st, "attempt %d of %v", i+1, statuses)
		}
		res := c.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json",
			withBasicFrom("203.0.113.1", analyst.Name, analyst.Password))
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "locked: even the right password")
		require.NotEmpty(t, res.Header.Get("Retry-After"))
		require.Contains(t, res.Body, "Too many failed logins")
	})

	t.Run("UILockoutHoldsForAPI", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		for i := range account.MaxFailuresPerPair {
			require.Equal(t, http.StatusUnauthorized, uiLogin(c, "203.0.113.2", admin.Name, "wrong-password").StatusCode, i)
		}
		res := c.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json",
			withBasicFrom("203.0.113.2", admin.Name, admin.Password))
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	})

	t.Run("APILockoutHoldsForUI", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		for range account.MaxFailuresPerPair {
			c.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json",
				withBasicFrom("203.0.113.3", manager.Name, "wrong-password"))
		}
		require.Equal(t, http.StatusTooManyRequests, uiLogin(c, "203.0.113.3", manager.Name, manager.Password).StatusCode)
	})

	t.Run("InboundBasicAuth", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		peer := models.DemoPeerAccount
		for i := range account.MaxFailuresPerPair {
			res := c.Do(http.MethodPost, inbound, `{}`, "application/json", withBasicFrom("203.0.113.4", peer.Name, "wrong-password"))
			require.Equal(t, http.StatusUnauthorized, res.StatusCode, i)
		}
		res := c.Do(http.MethodPost, inbound, `{}`, "application/json", withBasicFrom("203.0.113.4", peer.Name, peer.Password))
		require.Equal(t, http.StatusTooManyRequests, res.StatusCode, res.Body)
		require.NotEmpty(t, res.Header.Get("Retry-After"))
		require.Equal(t, http.StatusTooManyRequests, uiLogin(c, "203.0.113.4", peer.Name, peer.Password).StatusCode)
	})

	t.Run("NoPasswordOracle", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		same := func(path, body, user, right string) {
			t.Helper()
			wrong := c.Do(http.MethodPost, path, body, "application/json", withBasicFrom("203.0.113.5", user, "wrong-password"))
			good := c.Do(http.MethodPost, path, body, "application/json", withBasicFrom("203.0.113.5", user, right))
			require.Equal(t, http.StatusUnauthorized, wrong.StatusCode, wrong.Body)
			require.Equal(t, wrong.StatusCode, good.StatusCode, "%s as %s: %s", path, user, good.Body)
			require.Equal(t, wrong.Body, good.Body, "%s as %s", path, user)
			require.Equal(t, wrong.Header.Get("WWW-Authenticate"), good.Header.Get("WWW-Authenticate"))
		}
		same("/api/v1/tickets", ticketBody, manager.Name, manager.Password)
		same("/api/v1/tickets", ticketBody, models.DemoPeerAccount.Name, models.DemoPeerAccount.Password)
		same(inbound, `{}`, "viewer-"+strings.Repeat("x", 3), "x") // unknown user: still one answer
	})

	t.Run("InboundNoPasswordOracle", func(t *testing.T) {
		t.Parallel()
		c := app.Client(t)
		wrong := c.Do(http.MethodPost, inbound, `{}`, "application/json", withBasicFrom("203.0.113.6", analyst.Name, "wrong-password"))
		good := c.Do(http.MethodPost, inbound, `{}`, "application/json", withBasicFrom("203.0.113.6", analyst.Name, analyst.Password))
		require.Equal(t, http.StatusUnauthorized, wrong.StatusCode)
		require.Equal(t, wrong.StatusCode, good.StatusCode, good.Body)
		require.Equal(t, wrong.Body, good.Body)
	})
}

// TestLoginLockoutPerAddress: an attacker failing from one address locks the
// account only from that address; the user logs in from their own.
func TestLoginLockoutPerAddress(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	analyst := models.DemoLogins[2]
	attacker, user := app.Client(t), app.Client(t)
	for i := range 8 {
		want := http.StatusUnauthorized
		if i >= account.MaxFailuresPerPair {
			want = http.StatusTooManyRequests
		}
		require.Equal(t, want, uiLogin(attacker, "198.51.100.1", analyst.Name, "guess-"+string(rune('a'+i))).StatusCode, i)
	}
	require.Equal(t, http.StatusSeeOther, uiLogin(user, "198.51.100.2", analyst.Name, analyst.Password).StatusCode,
		"the user from another address is not locked out by the attacker")
	res := user.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json",
		withBasicFrom("198.51.100.2", analyst.Name, analyst.Password))
	require.Equal(t, http.StatusCreated, res.StatusCode, res.Body)
	res = uiLogin(attacker, "198.51.100.1", analyst.Name, analyst.Password)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "the attacker's address stays locked, right password or not")
	require.Contains(t, res.TestID(t, "login-error").Text(), "Too many failed logins")
}

// TestLoginLongName: over-long names and addresses are refused in plain
// words, never a 500 from an index.
func TestLoginLongName(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	c := app.Client(t)
	long := randomText(3000) // incompressible: PostgreSQL would squeeze "aaa…" under the index limit
	res := uiLogin(c, "192.0.2.1", long, "whatever-123")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Equal(t, "Wrong user name or password.", res.TestID(t, "login-error").Text())
	res = uiLogin(c, "192.0.2.1", "ö"+strings.Repeat("é", 2000), "whatever-123")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res = uiLogin(c, randomText(3000), "analyst", "whatever-123")
	require.Less(t, res.StatusCode, 500, "a long forwarded address")
	res = c.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json", withBasicFrom("192.0.2.1", long, "x"))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res = c.Do(http.MethodPost, "/api/v1/integrations/"+models.DemoIntegrationName+"/messages", `{}`, "application/json",
		withBasicFrom("192.0.2.1", long, "x"))
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	h := withBasicFrom("192.0.2.1", "analyst", "x")
	h.Set("X-Real-IP", randomText(3000))
	res = c.Do(http.MethodPost, "/api/v1/tickets", ticketBody, "application/json", h)
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.NotContains(t, app.Logs.String(), "level=ERROR")
}

// randomText is n letters and digits that do not compress.
func randomText(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r := rand.New(rand.NewPCG(1, uint64(n)))
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b)
}
