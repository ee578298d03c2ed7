package handlers_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers"
)

// The metrics report a stuck bond (a broken head with work queued behind
// it) so that an alert can fire; only a loopback scraper or one with the
// token is answered.
func TestMetrics(t *testing.T) {
	t.Parallel()
	bt := setupPages(t) // the demo bond: head in Error, one transaction queued behind it
	anon := bt.app.Client(t)

	res := anon.Get("/metrics")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Body, `unifi_bonds_stuck{integration="demo"} 1`)
	require.Contains(t, res.Body, `unifi_queue_depth{integration="demo"} 1`)
	require.Contains(t, res.Body, `unifi_transactions_broken{integration="demo"} 1`)
	require.Contains(t, res.Body, `unifi_scrape_error 0`)

	res = anon.Do(http.MethodGet, "/metrics", "", "", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "a request relayed by a proxy is not a local scraper")

	cfg := bt.app.Config
	cfg.MetricsToken = "scrape-secret"
	srv := httptest.NewServer(handlers.New(handlers.Opts{Store: bt.app.Store, Query: bt.app.Query,
		Accounts: bt.app.Accounts, Inbound: bt.app.Inbound, Config: cfg, Logger: slog.New(slog.DiscardHandler)}).Echo())
	t.Cleanup(srv.Close)
	get := func(token string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		r.Body.Close()
		return r.StatusCode
	}
	require.Equal(t, http.StatusUnauthorized, get(""), "with a token set, loopback alone is not enough")
	require.Equal(t, http.StatusUnauthorized, get("wrong"))
	require.Equal(t, http.StatusOK, get("scrape-secret"))
}
