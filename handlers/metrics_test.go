package handlers_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers"
	"unifi/worker"
)

// The metrics report a stuck bond (a broken head with work queued behind
// it) so that an alert can fire, and the engine's counts of a process that
// runs one; only a loopback scraper or one with the token is answered.
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
	require.NotContains(t, res.Body, `unifi_engine_`, "no engine in this test's server: no engine counts")

	res = anon.Do(http.MethodGet, "/metrics", "", "", http.Header{"X-Forwarded-For": {"203.0.113.9"}})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "a request relayed by a proxy is not a local scraper")

	cfg := bt.app.Config
	cfg.MetricsToken = "scrape-secret"
	engine := worker.Stats{Rounds: 3, Claimed: 2, Chained: 5, Handed: 1, Claims: 7, EmptyClaims: 4, GaveWay: 6}
	srv := httptest.NewServer(handlers.New(handlers.Opts{Store: bt.app.Store, Query: bt.app.Query,
		Accounts: bt.app.Accounts, Inbound: bt.app.Inbound, Config: cfg, Logger: slog.New(slog.DiscardHandler),
		EngineStats: func() worker.Stats { return engine }}).Echo())
	t.Cleanup(srv.Close)
	get := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		r, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer r.Body.Close()
		body, err := io.ReadAll(r.Body)
		require.NoError(t, err)
		return r.StatusCode, string(body)
	}
	code, _ := get("")
	require.Equal(t, http.StatusUnauthorized, code, "with a token set, loopback alone is not enough")
	code, _ = get("wrong")
	require.Equal(t, http.StatusUnauthorized, code)
	code, body := get("scrape-secret")
	require.Equal(t, http.StatusOK, code)
	// The engine's counts of this process, as its Stats give them.
	for _, line := range []string{`unifi_engine_rounds_total 3`, `unifi_engine_sent_total{how="claimed"} 2`,
		`unifi_engine_sent_total{how="chained"} 5`, `unifi_engine_sent_total{how="handed"} 1`,
		`unifi_engine_claims_total{result="found"} 3`, `unifi_engine_claims_total{result="empty"} 4`,
		`unifi_engine_gave_way_total 6`} {
		require.Contains(t, body, line+"\n")
	}
}
