package browsertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/internal/browsertest"
	"unifi/internal/fixture"
	"unifi/models"
)

type world struct {
	app    *handlerstest.App
	in     *models.Integration
	ticket *models.Ticket
	bond   *models.Bond
	done   *models.Transaction
	broken *models.Transaction
	queued *models.Transaction
}

func setupWorld(t *testing.T) *world {
	t.Helper()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	tk := fixture.Ticket(t, db, in.ProcessID, &fixture.TicketOpts{
		ShortDescription: fixture.Ptr(`<script>window.__xss = 1</script> printer on fire`),
		Description:      fixture.Ptr(`<img src=x onerror="window.__xss = 2">`)})
	b := fixture.Bond(t, db, in.ID, tk, &fixture.BondOpts{ProcessError: fixture.Ptr("Urgency may only be changed by the owner of the ticket")})
	w := &world{app: app, in: in, ticket: tk, bond: b}
	w.done = fixture.Transaction(t, db, b, &fixture.TransactionOpts{Requests: 2})
	w.broken = fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Error),
		Error: fixture.Ptr("HTTP 500 from the remote system after 4 attempts"), Requests: 1})
	w.queued = fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})
	return w
}

// TestBrowserAdminPages walks an admin through every page and saves a
// screenshot of each; it checks the Repair dialog works from the keyboard and
// that markup in a ticket renders as text.
func TestBrowserAdminPages(t *testing.T) {
	t.Parallel()
	w := setupWorld(t)
	b := browsertest.New(t, w.app.Server.URL)
	b.Login("admin", "admin-demo-1")

	b.Open("/")
	require.Equal(t, "1", b.Text("card-queue"))
	b.Screenshot("operations")

	b.Open(fmt.Sprintf("/integrations/%d", w.in.ID))
	require.Equal(t, "Active", b.Text("integration-state"))
	require.True(t, b.Has("pause"))
	b.Screenshot("integration")

	// Keyboard: focus Repair, Enter opens the dialog with focus on Cancel,
	// Escape closes it and focus returns to Repair.
	b.Do(chromedp.Focus(browsertest.TestID("repair")), chromedp.KeyEvent(kb.Enter))
	b.WaitJS(`document.getElementById("repair-confirm").open`, 5*time.Second)
	require.Equal(t, "repair-confirm-cancel", browsertest.Eval[string](b, `document.activeElement.dataset.testid`))
	b.Screenshot("integration-repair-dialog")
	b.Do(chromedp.KeyEvent(kb.Escape))
	b.WaitJS(`!document.getElementById("repair-confirm").open`, 5*time.Second)
	require.Equal(t, "repair", browsertest.Eval[string](b, `document.activeElement.dataset.testid`))

	b.Open("/transactions?state=8")
	require.Equal(t, 1, b.Count(`[data-testid="transactions"] tbody tr`))
	b.Screenshot("transactions-filtered")

	b.Open(fmt.Sprintf("/transactions/%d", w.done.ID))
	require.Equal(t, w.done.Number, b.Text("txn-number"))
	require.True(t, b.Has("replay"))
	b.Screenshot("transaction")

	b.Open(fmt.Sprintf("/bonds/%d", w.bond.ID))
	require.Equal(t, "1", b.TextCSS(`[data-testid="bond-txn-`+w.queued.Number+`"] [data-testid="queue-position"]`))
	b.Screenshot("bond")

	b.Open(fmt.Sprintf("/tickets/%d", w.ticket.ID))
	require.Equal(t, `<script>window.__xss = 1</script> printer on fire`, b.Text("ticket-field-short"))
	require.Equal(t, `<img src=x onerror="window.__xss = 2">`, b.Text("ticket-field-description"))
	require.True(t, browsertest.Eval[bool](b, `window.__xss === undefined`), "markup in a ticket must not run")
	b.Screenshot("ticket")

	b.Open("/activity")
	b.Screenshot("activity")
	b.Open("/users")
	b.Screenshot("users")
}

// TestBrowserRoleGating: a manager sees no Pause/Resume/Repair and may replay
// only Complete, Error or Ignored transactions; an analyst sees no action
// button and finds the process error on the ticket page.
func TestBrowserRoleGating(t *testing.T) {
	t.Parallel()
	w := setupWorld(t)

	t.Run("Manager", func(t *testing.T) {
		t.Parallel()
		b := browsertest.New(t, w.app.Server.URL)
		b.Login("manager", "manager-demo-1")
		b.Open(fmt.Sprintf("/integrations/%d", w.in.ID))
		require.Equal(t, 0, b.Count(`[data-testid="header-actions"] button`))
		b.Open(fmt.Sprintf("/transactions/%d", w.broken.ID))
		require.True(t, b.Has("replay"))
		require.True(t, b.Has("ignore"))
		b.Open(fmt.Sprintf("/transactions/%d", w.queued.ID))
		require.False(t, b.Has("replay"), "a manager may not replay a Queued transaction")
		require.True(t, b.Has("ignore"))
		b.Screenshot("manager-queued-transaction")
	})

	t.Run("Analyst", func(t *testing.T) {
		t.Parallel()
		b := browsertest.New(t, w.app.Server.URL)
		b.Login("analyst", "analyst-demo-1")
		for _, id := range []int64{w.done.ID, w.broken.ID, w.queued.ID} {
			b.Open(fmt.Sprintf("/transactions/%d", id))
			require.Equal(t, 0, b.Count(`[data-testid="header-actions"] button`))
		}
		b.Open("/tickets/process-errors")
		require.Equal(t, 1, b.Count(`[data-testid="tickets"] tbody tr`))
		b.ClickNav("ticket-link")
		require.Contains(t, b.Text("ticket-process-error"), "Urgency may only be changed by the owner of the ticket")
		b.Screenshot("analyst-ticket-process-error")
	})
}

// liveText is a JavaScript test that an element the SSE stream keeps
// replacing shows want (read in one go, so a swap cannot race it).
func liveText(testid, want string) string {
	return fmt.Sprintf(`(document.querySelector('[data-testid=%q]')||{}).textContent === %q`, testid, want)
}

// TestBrowserProgressDialogLive: the progress dialog follows the stored bulk
// job through Server-Sent Events while another process moves it, survives a
// reload, and ends with a summary.
func TestBrowserProgressDialogLive(t *testing.T) {
	t.Parallel()
	w := setupWorld(t)
	ctx := context.Background()
	db := w.app.Store.DB(ctx)
	admin := fixture.User(t, db, models.RoleAdmin)
	job := models.BulkJob{Kind: models.BulkResume, IntegrationID: &w.in.ID, State: models.BulkRunning, Total: 20, StartedByID: &admin.ID}
	require.NoError(t, db.Create(&job).Error)

	b := browsertest.New(t, w.app.Server.URL)
	b.Login("admin", "admin-demo-1")
	b.Open(fmt.Sprintf("/integrations/%d", w.in.ID))
	b.WaitJS(`document.getElementById("bulk-progress").open`, 5*time.Second)
	require.Equal(t, "Resume Integration Worker", b.Text("progress-title"))
	b.WaitJS(liveText("progress-done", "0"), 5*time.Second)

	// Another process (here: the test) advances the stored job; the dialog follows.
	require.NoError(t, db.Model(&job).Updates(map[string]any{"done": 7, "failed": 1}).Error)
	b.WaitJS(`document.querySelector('[data-testid="progress-done"]').textContent === "7"`, 5*time.Second)
	b.WaitJS(liveText("progress-percent", "40%"), 5*time.Second)
	b.Screenshot("progress-dialog-running")

	b.Open(fmt.Sprintf("/integrations/%d", w.in.ID)) // a reload shows the same figures
	b.WaitJS(`document.getElementById("bulk-progress").open`, 5*time.Second)
	b.WaitJS(liveText("progress-done", "7"), 5*time.Second)

	item := models.BulkJobItem{JobID: job.ID, TransactionID: w.broken.ID, Position: 1, State: "failed", Error: "HTTP 500"}
	require.NoError(t, db.Create(&item).Error)
	require.NoError(t, db.Model(&job).Updates(map[string]any{"done": 19, "failed": 1, "state": models.BulkComplete,
		"finished_at": time.Now()}).Error)
	b.WaitJS(`document.querySelector('[data-testid="progress-percent"]').textContent === "100%"`, 5*time.Second)
	require.Contains(t, b.Text("progress-summary"), "19 sent, 1 failed")
	require.Equal(t, 1, b.Count(`[data-testid="progress-failures"] a`))
	b.Screenshot("progress-dialog-done")
}
