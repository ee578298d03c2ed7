package fault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fault"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/designer"
	"unifi/models/store"
)

// TestLiveConfigAcrossServers: two server processes on one database. A
// retry limit changed through the Designer's form on server 1 reaches the
// engine of server 2 within a second (the unifi_config notification drops
// its cached configuration; the time from the save to server 2's drop is
// measured and logged), and server 2's engine sends the next transaction
// under the new limit although it had the old one cached.
func TestLiveConfigAcrossServers(t *testing.T) {
	t.Parallel()
	var attempts atomic.Int64
	remote := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attempts.Add(1)
		http.Error(w, "down for the test", http.StatusInternalServerError)
	}))
	t.Cleanup(remote.Close)
	w := fault.New(t, fault.Opts{Servers: 2, RetryLimit: 5})
	ctx := context.Background()
	require.NoError(t, w.DB.Exec(`UPDATE integrations SET retry_delay_s = 0 WHERE id = ?`, w.Integration.ID).Error)
	require.NoError(t, w.DB.Exec(`UPDATE connections SET endpoint_url = ? WHERE integration_id = ?`, remote.URL, w.Integration.ID).Error)

	// sent creates a ticket and waits for its transaction to finish; it
	// returns the final state and the number of attempts.
	sent := func(what string) (models.TransportState, int64) {
		tk, err := w.Store.CreateTicket(ctx, w.Analyst, store.TicketInput{ShortDescription: what})
		require.NoError(t, err)
		var st models.TransportState
		if err := wait.Until(20*time.Second, func() (bool, error) {
			err := w.DB.Raw(`SELECT state FROM transactions WHERE ticket_id = ?`, tk.ID).Scan(&st).Error
			return st == models.Error || st == models.Complete, err
		}); err != nil {
			// Once on 2 loaded cores (CI, 2026-12-07) the last transaction
			// was not sent in 20 s with nothing in server 2's log: say where
			// it stood, so that the next time tells why.
			var rows []map[string]any
			_ = w.DB.Raw(`SELECT t.id, t.state, t.attempts, t.lease_owner, t.lease_expires_at, t.next_attempt_at, now() AS db_now,
					i.state AS integration_state, i.retry_limit,
					(SELECT count(*) FROM connections c WHERE c.integration_id = t.integration_id AND c.active) AS active_connections
				FROM transactions t JOIN integrations i ON i.id = t.integration_id WHERE t.ticket_id = ?`, tk.ID).Scan(&rows).Error
			t.Fatalf("the transaction of %q did not finish: %v; its rows: %v; server 2 running: %v", what, err, rows,
				w.Servers[1].Running())
		}
		var n int64
		require.NoError(t, w.DB.Raw(`SELECT count(*) FROM http_requests h JOIN transactions t ON t.id = h.transaction_id
			WHERE t.ticket_id = ?`, tk.ID).Scan(&n).Error)
		return st, n
	}
	// Warm both engines' caches with the old limit. The servers started
	// just before the endpoint was changed with SQL, perhaps before they
	// listened: a transaction may still go to the demo peer (Complete).
	for i := 0; ; i++ {
		require.Less(t, i, 20, "the engines never used the failing endpoint")
		if st, n := sent(fmt.Sprintf("warm-up %d", i)); st == models.Error {
			require.Equal(t, int64(6), n, "1 attempt and 5 retries under the old limit")
			break
		}
	}

	// Change the retry limit through server 1's form.
	admin := w.Servers[0].Login(t, "admin", "admin-demo-1")
	in, err := w.Store.GetIntegration(ctx, w.Integration.ID)
	require.NoError(t, err)
	form := url.Values{"name": {in.Name}, "description": {in.Description}, "process_id": {fmt.Sprint(in.ProcessID)},
		"sync_timeout_s": {fmt.Sprint(in.SyncTimeoutS)}, "async_timeout_s": {fmt.Sprint(in.AsyncTimeoutS)},
		"retry_limit": {"1"}, "retry_delay_s": {"0"}, "heartbeat_s": {"0"}, "attach_logs": {"true"},
		"version": {fmt.Sprint(in.Version)}}
	// Server 2 listens before the measure starts: its LISTEN connection can
	// come up after it serves, and on 2 loaded cores (make test) once did not
	// within 6 s. A change made before it listens is still applied (the
	// engine drops its cache when it connects) but leaves no line to time.
	wait.For(t, 30*time.Second, func() (bool, error) {
		err := w.DB.Exec(`SELECT pg_notify(?, '0 probe')`, designer.ConfigChannel).Error
		return !configDropped(t, w.Servers[1].Logs(), time.Time{}, "probe").IsZero(), err
	}, "server 2 listens for configuration changes")
	editPage := fmt.Sprintf("/integrations/%d/edit", in.ID)
	_, page := admin.Get(editPage) // the form, as a person opens it
	require.Contains(t, page, `data-testid="save-integration"`)
	saved := time.Now()
	status, body := admin.PostForm(editPage, fmt.Sprintf("/integrations/%d", in.ID), form)
	require.Equal(t, http.StatusSeeOther, status, body)

	// Server 2 drops its cached configuration within a second of the save.
	var dropped time.Time
	wait.For(t, 5*time.Second, func() (bool, error) {
		dropped = configDropped(t, w.Servers[1].Logs(), saved, "integrations")
		return !dropped.IsZero(), nil
	}, "server 2 hears of the change")
	latency := dropped.Sub(saved)
	t.Logf("live configuration: saved on server 1, dropped by server 2's engine after %v", latency)
	fault.Report(t, "live_config", "save_to_other_engine_ms", latency.Milliseconds())
	require.Less(t, latency, time.Second, "a saved change reaches the other server within a second")

	// Only server 2 sends from now on; it had the old limit cached.
	w.Servers[0].Stop(t)
	st, n := sent("after the change")
	require.Equal(t, models.Error, st)
	require.Equal(t, int64(2), n, "1 attempt and 1 retry under the new limit, on server 2")
	require.Positive(t, attempts.Load())
}

// configDropped finds, in a server's JSON log, when its engine dropped its
// configuration after a change of table after t (zero when it has not).
func configDropped(t *testing.T, logs string, after time.Time, table string) time.Time {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Time    time.Time `json:"time"`
			Msg     string    `json:"msg"`
			Version string    `json:"config_version"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || !strings.HasPrefix(line.Msg, "configuration changed") ||
			!strings.HasSuffix(line.Version, " "+table) {
			continue
		}
		if line.Time.After(after) {
			return line.Time
		}
	}
	return time.Time{}
}
