package browsertest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"unifi/internal/browsertest"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/store"
)

func createTicketInBrowser(t *testing.T, b *browsertest.Browser, short string) {
	t.Helper()
	b.Open("/tickets/new")
	b.Do(chromedp.SendKeys(browsertest.TestID("f-short"), short),
		chromedp.SetValue(browsertest.TestID("f-priority"), "2"))
	require.EqualValues(t, http.StatusOK, b.ClickNav("save-ticket"))
	require.Contains(t, b.Text("flash-success"), "Created")
}

func integrationTransactions(t *testing.T, app *browsertest.App) []models.Transaction {
	t.Helper()
	var txns []models.Transaction
	require.NoError(t, app.Store.DB(context.Background()).Where("integration_id = ?", app.Demo.ID).
		Order("bond_id, seq").Find(&txns).Error)
	return txns
}

// TestBrowserPauseQueueResume is the cockpit's main story: an admin pauses
// the demo integration (info message shown), an analyst creates tickets
// (they queue), the admin resumes and watches the progress dialog reach 100%
// live, and the transactions are Complete in order.
func TestBrowserPauseQueueResume(t *testing.T) {
	t.Parallel()
	app := browsertest.StartApp(t, browsertest.AppOpts{Synchronous: true})
	ctx := context.Background()
	admin := browsertest.New(t, app.URL)
	admin.Login("admin", "admin-demo-1")
	admin.Open(fmt.Sprintf("/integrations/%d", app.Demo.ID))
	require.EqualValues(t, http.StatusOK, admin.ClickNav("pause"))
	require.Contains(t, admin.Text("flash-info"), "is paused")
	require.Equal(t, "Paused", admin.Text("integration-state"))
	admin.Screenshot("e2e-1-paused")

	analyst := browsertest.New(t, app.URL)
	analyst.Login("analyst", "analyst-demo-1")
	createTicketInBrowser(t, analyst, "Email down for the sales team")
	createTicketInBrowser(t, analyst, "VPN drops every hour")
	analyst.Screenshot("e2e-2-ticket-created")
	// More tickets and updates, so the resume has work to show.
	actor := models.Actor{Name: "analyst", Role: models.RoleAnalyst}
	for i := range 40 {
		tk, err := app.Store.CreateTicket(ctx, actor, store.TicketInput{ShortDescription: fmt.Sprintf("Generated incident %d", i)})
		require.NoError(t, err)
		in := store.TicketInputOf(tk)
		in.WorkNotes = "first update"
		_, err = app.Store.UpdateTicket(ctx, actor, tk.ID, tk.Version, in)
		require.NoError(t, err)
	}
	txns := integrationTransactions(t, app)
	require.Len(t, txns, 2+80)
	for _, tr := range txns {
		require.Equal(t, models.Queued, tr.State, "paused: everything queues")
	}
	require.Zero(t, app.Remote.Requests())

	admin.Open(fmt.Sprintf("/integrations/%d", app.Demo.ID))
	require.Equal(t, "82", strings.TrimSpace(admin.TextCSS(`[data-testid="count-6"] .n`)))
	admin.Do(chromedp.Click(browsertest.TestID("resume")))
	admin.WaitJS(`document.getElementById("resume-confirm").open`, 5*time.Second)
	require.Equal(t, "Resume Integration", admin.TextCSS("#resume-confirm-title"))
	admin.Screenshot("e2e-3-resume-confirm")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("resume-confirm-submit"))
	admin.WaitJS(`document.getElementById("bulk-progress").open`, 5*time.Second)
	require.Equal(t, "Resume Integration Worker", admin.Text("progress-title"))
	admin.WaitJS(liveText("progress-total", "82"), 10*time.Second)
	admin.WaitJS(`document.querySelector('[data-testid="progress-percent"]').textContent === "100%"`, 60*time.Second)
	admin.WaitJS(`!!document.querySelector('[data-testid="progress-summary"]')`, 10*time.Second)
	require.Contains(t, admin.Text("progress-summary"), "Finished")
	admin.Screenshot("e2e-4-resume-done")

	wait.For(t, 60*time.Second, func() (bool, error) {
		for _, tr := range integrationTransactions(t, app) {
			if tr.State != models.Complete {
				return false, nil
			}
		}
		return true, nil
	}, "every transaction Complete")
	require.Empty(t, app.Remote.OrderViolations(), "each bond's messages arrived in creation order")
	require.Empty(t, app.Remote.Duplicates())
	txns = integrationTransactions(t, app)
	for i := 1; i < len(txns); i++ {
		if txns[i].BondID == txns[i-1].BondID {
			require.False(t, txns[i].FinishedAt.Before(*txns[i-1].FinishedAt), "per-bond order")
		}
	}
	admin.Open(fmt.Sprintf("/integrations/%d", app.Demo.ID))
	require.Equal(t, "Active", admin.Text("integration-state"))
	require.Equal(t, "82", strings.TrimSpace(admin.TextCSS(`[data-testid="count-5"] .n`)))
	admin.Screenshot("e2e-5-integration-after-resume")
	admin.Open("/")
	admin.Screenshot("e2e-6-operations")
}

// TestBrowserReplayAndIgnore: Replay from a transaction page creates the .1
// transaction and marks the original Ignored; Ignore releases the bond's queue.
func TestBrowserReplayAndIgnore(t *testing.T) {
	t.Parallel()
	app := browsertest.StartApp(t, browsertest.AppOpts{Synchronous: true})
	ctx := context.Background()
	db := app.Store.DB(ctx)
	require.NoError(t, db.Exec("UPDATE integrations SET retry_limit = 0, retry_delay_s = 0 WHERE id = ?", app.Demo.ID).Error)
	actor := models.Actor{Name: "analyst", Role: models.RoleAnalyst}

	// The remote refuses the first message of one ticket.
	var failID string
	app.Remote.SetFail(func(env *models.Envelope, n int) (int, http.Header) {
		if env.Message.SourceID == failID {
			return http.StatusInternalServerError, nil
		}
		return 0, nil
	})
	tk, err := app.Store.CreateTicket(ctx, actor, store.TicketInput{ShortDescription: "Replay me"})
	require.NoError(t, err)
	var first models.Transaction
	require.NoError(t, db.Where("ticket_id = ?", tk.ID).Take(&first).Error)
	wait.For(t, 30*time.Second, func() (bool, error) {
		var tr models.Transaction
		return db.Take(&tr, first.ID).Error == nil && tr.State == models.Complete, nil
	}, "the first transaction Complete")

	admin := browsertest.New(t, app.URL)
	admin.Login("admin", "admin-demo-1")
	admin.Open(fmt.Sprintf("/transactions/%d", first.ID))
	require.Equal(t, "Complete", admin.Text("txn-state"))
	require.EqualValues(t, http.StatusOK, admin.ClickNav("replay"))
	require.Equal(t, first.Number+".1", admin.Text("txn-number"))
	require.Contains(t, admin.Text("flash-success"), "Replayed as "+first.Number+".1")
	admin.Screenshot("e2e-7-replayed")
	admin.Open(fmt.Sprintf("/transactions/%d", first.ID))
	require.Equal(t, "Ignored", admin.Text("txn-state"))
	require.Equal(t, first.Number+".1", admin.Text("replayed-as-link"))

	// Ignore releases the queue: an update fails (Error), the next one queues
	// behind it; ignoring the broken one lets the queued one through.
	in := store.TicketInputOf(tk)
	in.WorkNotes = "update that the remote refuses"
	var seqBefore int64
	require.NoError(t, db.Raw("SELECT coalesce(max(id), 0) FROM transactions").Scan(&seqBefore).Error)
	failID = ""
	app.Remote.SetFail(func(env *models.Envelope, n int) (int, http.Header) {
		if strings.Contains(env.Message.Name, "Update") && failID == "" {
			failID = env.Message.SourceID
		}
		if env.Message.SourceID == failID {
			return http.StatusInternalServerError, nil
		}
		return 0, nil
	})
	tk2, err := app.Store.UpdateTicket(ctx, actor, tk.ID, tk.Version, in)
	require.NoError(t, err)
	var broken models.Transaction
	wait.For(t, 30*time.Second, func() (bool, error) {
		return db.Where("ticket_id = ? AND id > ? AND state = ?", tk.ID, seqBefore, models.Error).Take(&broken).Error == nil, nil
	}, "the update ends in Error")
	in = store.TicketInputOf(tk2)
	in.WorkNotes = "second update"
	_, err = app.Store.UpdateTicket(ctx, actor, tk.ID, tk2.Version, in)
	require.NoError(t, err)
	var queued models.Transaction
	require.NoError(t, db.Where("ticket_id = ? AND id > ?", tk.ID, broken.ID).Take(&queued).Error)
	require.Equal(t, models.Queued, queued.State)

	admin.Open(fmt.Sprintf("/bonds/%d", broken.BondID))
	require.Equal(t, "Error", admin.Text("bond-status"))
	require.Equal(t, "1", admin.TextCSS(`[data-testid="bond-txn-`+queued.Number+`"] [data-testid="queue-position"]`))
	admin.Screenshot("e2e-8-bond-held-by-error")
	admin.Open(fmt.Sprintf("/transactions/%d", broken.ID))
	require.Equal(t, "Error", admin.Text("txn-state"))
	admin.Screenshot("e2e-9-error-transaction")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("ignore"))
	require.Equal(t, "Ignored", admin.Text("txn-state"))
	wait.For(t, 30*time.Second, func() (bool, error) {
		var tr models.Transaction
		return db.Take(&tr, queued.ID).Error == nil && tr.State == models.Complete, nil
	}, "the queued transaction went ahead")
	admin.Open(fmt.Sprintf("/bonds/%d", broken.BondID))
	require.Equal(t, "OK", admin.Text("bond-status"))
	admin.Screenshot("e2e-10-bond-released")
}

// TestBrowserAnalystFindsRejectedUpdate runs the real flow behind an analyst's
// process error: the analyst creates and then edits a ticket in the browser,
// the engine sends both, the remote accepts the create and rejects the update
// with a receipt through the inbound API, and the analyst finds the process
// error from "Tickets with process errors" on the ticket page, the
// transaction Complete and Rejected.
func TestBrowserAnalystFindsRejectedUpdate(t *testing.T) {
	t.Parallel()
	app := browsertest.StartApp(t, browsertest.AppOpts{})
	db := app.Store.DB(context.Background())
	analyst := browsertest.New(t, app.URL)
	analyst.Login("analyst", "analyst-demo-1")
	createTicketInBrowser(t, analyst, "Monitor flickers")

	// awaiting is the first outbound transaction after id that the engine
	// delivered and that now awaits its receipt.
	awaiting := func(after int64) models.Transaction {
		t.Helper()
		var tr models.Transaction
		wait.For(t, 30*time.Second, func() (bool, error) {
			return db.Where("integration_id = ? AND direction = 'Outbound' AND state = ? AND id > ?", app.Demo.ID,
				models.AwaitingReceipt, after).Order("id").Take(&tr).Error == nil, nil
		}, "a transaction awaits its receipt")
		return tr
	}
	created := awaiting(0)
	receipt(t, app, created.MessageIdent, "REMOTE-R-1", "Accepted", "")
	wait.For(t, 30*time.Second, func() (bool, error) {
		var tr models.Transaction
		return db.Take(&tr, created.ID).Error == nil && tr.State == models.Complete, nil
	}, "the accepted create is Complete")

	var tk models.Ticket
	require.NoError(t, db.Take(&tk, created.TicketID).Error)
	analyst.Open(fmt.Sprintf("/tickets/%d/edit", tk.ID))
	analyst.Do(chromedp.SetValue(browsertest.TestID("f-urgency"), "1"))
	require.EqualValues(t, http.StatusOK, analyst.ClickNav("save-ticket"))
	updated := awaiting(created.ID)
	const why = "Urgency may only be changed by the owner of the ticket"
	receipt(t, app, updated.MessageIdent, "REMOTE-R-2", "Rejected", why)
	wait.For(t, 30*time.Second, func() (bool, error) {
		var tr models.Transaction
		return db.Take(&tr, updated.ID).Error == nil && tr.State == models.Complete, nil
	}, "the rejected update is Complete")

	analyst.Open("/tickets/process-errors")
	require.Equal(t, 1, analyst.Count(`[data-testid="tickets"] tbody tr`))
	analyst.ClickNav("ticket-link")
	require.Contains(t, analyst.Text("ticket-process-error"), why)
	analyst.Screenshot("e2e-11-analyst-rejected-update")
	analyst.Open(fmt.Sprintf("/transactions/%d", updated.ID))
	require.Equal(t, "Complete", analyst.Text("txn-state"))
	require.Equal(t, "Rejected", analyst.Text("txn-process-state"))
}

// receipt answers our message msgIdent as the remote system does: a Receipt
// to the demo integration's inbound API.
func receipt(t *testing.T, app *browsertest.App, msgIdent, sourceID, process, perr string) {
	t.Helper()
	body, err := json.Marshal(map[string]any{
		"message": map[string]any{"name": "Receipt", "time_stamp": time.Now().UTC().Format(time.RFC3339Nano),
			"source_id": sourceID, "source_reference": "REMOTE-1", "target_id": msgIdent},
		"data":   map[string]any{},
		"status": map[string]any{"process_state": process, "error": perr}})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, app.URL+"/api/v1/integrations/"+models.DemoIntegrationName+"/messages",
		bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, "the receipt was refused: %s", answer)
}
