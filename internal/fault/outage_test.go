package fault_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fault"
	"unifi/internal/peer"
	"unifi/internal/pgcluster"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/pg"
)

func status(url string) int {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestDatabaseRestart stops PostgreSQL under a running server in the middle
// of a run and starts it again on the same port: the process keeps running,
// /readyz says 503 while the database is away and 200 once it is back, and
// every transaction still ends Complete, in order per bond.
func TestDatabaseRestart(t *testing.T) {
	runDatabaseRestart(t, 300, 3, 3*time.Second)
}

func runDatabaseRestart(t *testing.T, tickets, updates int, down time.Duration) {
	ctx := context.Background()
	cl, err := pgcluster.Start(ctx, pgcluster.Opts{Fast: true, Database: "unifi"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Remove(context.Background()) })
	db, err := pg.Open(ctx, cl.URL, 2)
	require.NoError(t, err)
	_, err = pg.Migrate(ctx, db)
	require.NoError(t, err)
	sqlDB, _ := db.DB()
	_ = sqlDB.Close()

	// Receipts come a second late, so plenty is in flight when the database goes.
	w := fault.New(t, fault.Opts{DatabaseURL: cl.URL, ReceiptDelay: time.Second})
	srv := w.Servers[0]
	// Tickets change until some work is done and much is in flight; then
	// the writers stop and the database goes away.
	loadCtx, stopLoad := context.WithCancel(ctx)
	type loadResult struct {
		tickets []*models.Ticket
		err     error
	}
	loaded := make(chan loadResult, 1)
	go func() {
		tk, err := w.CreateLoad(loadCtx, tickets, updates, 4)
		loaded <- loadResult{tk, err}
	}()
	planned := int64(tickets * (1 + updates))
	var atStop map[models.TransportState]int64
	wait.For(t, 2*time.Minute, func() (bool, error) {
		atStop = w.States(t)
		done := fault.Count(atStop, models.Complete)
		return done >= planned/5 && fault.Total(atStop)-done >= 30, fmt.Errorf("states %v", atStop)
	}, "some work done and some in flight")
	stopLoad()
	res := <-loaded
	require.NoError(t, res.err)
	all := w.Tickets(t)
	require.GreaterOrEqual(t, len(all), len(res.tickets))
	atStop = w.States(t)
	total := fault.Total(atStop)
	require.Less(t, fault.Count(atStop, models.Complete), total, "the database stops in the middle of the run")
	require.NoError(t, cl.Stop(ctx))
	stoppedAt := time.Now()
	var notReadyAt time.Time
	wait.For(t, 30*time.Second, func() (bool, error) {
		if status(srv.URL()+"/readyz") == http.StatusServiceUnavailable {
			notReadyAt = time.Now()
			return true, nil
		}
		return false, nil
	}, "/readyz reports the outage")
	// While the database is away the process lives and answers.
	probes, probesOK := 0, 0
	for time.Since(stoppedAt) < down {
		probes++
		if status(srv.URL()+"/readyz") == http.StatusServiceUnavailable && status(srv.URL()+"/healthz") == http.StatusOK {
			probesOK++
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Equal(t, probes, probesOK, "readyz 503 and healthz 200 throughout the outage")
	require.True(t, srv.Running(), "the server survived the outage")

	require.NoError(t, cl.Restart(ctx))
	restartedAt := time.Now()
	var readyAt time.Time
	wait.For(t, 60*time.Second, func() (bool, error) {
		if status(srv.URL()+"/readyz") == http.StatusOK {
			readyAt = time.Now()
			return true, nil
		}
		return false, nil
	}, "the server reconnects by itself")
	w.WaitAll(t, models.Complete, total, 3*time.Minute)
	doneAt := w.LastFinished(t)
	require.True(t, srv.Running())
	require.Equal(t, fmt.Sprintf("%s.g1", srv.Name), srv.Instance(), "the same process throughout")

	d := w.CheckDelivery(t, all)
	require.Empty(t, d.OrderBroken)
	require.Empty(t, d.NotDelivered)
	require.Equal(t, int(total), d.Delivered)
	require.NotContains(t, srv.Logs(), "panic")
	claimErrors := strings.Count(srv.Logs(), `"msg":"claim work"`)
	fault.Report(t, "database-restart",
		"transactions", total, "lost", len(d.NotDelivered), "order_broken", len(d.OrderBroken),
		"complete_at_stop", fault.Count(atStop, models.Complete), "db_down_s", secs(restartedAt.Sub(stoppedAt)), "readyz_503_after_s", secs(notReadyAt.Sub(stoppedAt)),
		"readyz_probes_503", probesOK, "ready_again_after_restart_s", secs(readyAt.Sub(restartedAt)),
		"duplicates_refused", len(d.Duplicates), "all_complete_after_restart_s", secs(doneAt.Sub(restartedAt)),
		"claim_errors_logged", claimErrors)
}

// TestPeerOutage takes the peer down three ways — refusing connections,
// answering 500, stalling past the sync timeout — while tickets change:
// each bond's first transaction retries, then stops in Error with the later
// ones Queued behind it. With the peer back, one Repair by an admin brings
// every transaction to Complete, in order per bond at the peer.
func TestPeerOutage(t *testing.T) {
	runPeerOutage(t, 10, 2, 0)
}

// runPeerOutage keeps each failure mode at least minPhase (and until every
// bond of the phase has its head in Error).
func runPeerOutage(t *testing.T, perPhase, updates int, minPhase time.Duration) {
	ctx := context.Background()
	w := fault.New(t, fault.Opts{SyncTimeoutS: 1, RetryLimit: 2, RetryDelayS: 1})
	srv := w.Servers[0]
	var all []*models.Ticket
	phases := []struct {
		mode peer.Mode
		want string // in the last HTTP request's error
	}{
		{peer.ModeRefuse, "Could not reach"},
		{peer.ModeFail500, "answered 500"},
		{peer.ModeStall, "within the sync timeout"},
	}
	outageStart := time.Now()
	for i, ph := range phases {
		phaseStart := time.Now()
		require.NoError(t, w.Peer.SetMode(ph.mode))
		tks, err := w.CreateLoad(ctx, perPhase, updates, 2)
		require.NoError(t, err)
		all = append(all, tks...)
		n := int64((i + 1) * perPhase)
		var got map[models.TransportState]int64
		wait.For(t, 2*time.Minute, func() (bool, error) {
			got = w.States(t)
			return got[models.Error] == n && got[models.Queued] == n*int64(updates), fmt.Errorf("states %v", got)
		}, "phase %s: every bond's head in Error, the rest Queued", ph.mode)
		var errs []string
		require.NoError(t, w.DB.Raw(`SELECT error FROM transactions WHERE state = ? AND ticket_id IN ?`,
			models.Error, ticketIDs(tks)).Scan(&errs).Error)
		require.Len(t, errs, perPhase)
		for _, e := range errs {
			require.Contains(t, e, ph.want, "phase %s", ph.mode)
		}
		for time.Since(phaseStart) < minPhase {
			time.Sleep(100 * time.Millisecond) // the outage goes on; nothing must change meanwhile
		}
		require.Equal(t, got, w.States(t), "phase %s: Error and Queued hold while the peer is down", ph.mode)
	}
	outage := time.Since(outageStart)
	var attempts int64
	require.NoError(t, w.DB.Raw(`SELECT count(*) FROM http_requests WHERE direction = ?`, models.Outbound).Scan(&attempts).Error)
	require.Zero(t, w.Peer.Stats().Received, "nothing got through during the outage")

	require.NoError(t, w.Peer.SetMode(peer.ModeOK))
	admin := srv.Login(t, "admin", "admin-demo-1")
	page := fmt.Sprintf("/integrations/%d", w.Integration.ID)
	repairAt := time.Now()
	code, body := admin.PostForm(page, page+"/repair", url.Values{})
	require.Equal(t, http.StatusSeeOther, code, body)
	total := int64(len(all) * (1 + updates))
	wait.For(t, 3*time.Minute, func() (bool, error) {
		s := w.States(t)
		return s[models.Complete] == total && s[models.Ignored] == int64(len(all)) && fault.Total(s) == total+int64(len(all)),
			fmt.Errorf("states %v", s)
	}, "one Repair: every transaction Complete (the broken originals Ignored, replaced by their replays)")
	doneAt := w.LastFinished(t)

	d := w.CheckDelivery(t, all)
	require.Empty(t, d.OrderBroken, "per-bond order at the peer")
	require.Empty(t, d.NotDelivered)
	require.Empty(t, d.Duplicates)
	require.Equal(t, int(total), d.Delivered)
	fault.Report(t, "peer-outage",
		"transactions", total, "lost", len(d.NotDelivered), "order_broken", len(d.OrderBroken),
		"outage_s", secs(outage), "failed_attempts", attempts, "in_error_before_repair", len(all),
		"repairs", 1, "all_complete_after_repair_s", secs(doneAt.Sub(repairAt)))
}

func ticketIDs(tks []*models.Ticket) []int64 {
	out := make([]int64, len(tks))
	for i, tk := range tks {
		out[i] = tk.ID
	}
	return out
}
