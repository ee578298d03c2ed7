package browsertest_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"unifi/internal/browsertest"
	"unifi/internal/peer"
	"unifi/models"
)

// setField replaces a form field's value (SendKeys would append to a default).
func setField(b *browsertest.Browser, testid, value string) {
	b.Do(chromedp.SetValue(browsertest.TestID(testid), value))
}

// TestBrowserDesigner: an admin creates an integration from scratch in the
// Designer (a refused value shown next to its field first), adds a
// connection to the demo peer and tests it (success), adds one with a
// wrong token and tests it (401: the dialog says so, with a second
// attempt), and a manager sees the same pages read-only. Screenshots of
// each page.
func TestBrowserDesigner(t *testing.T) {
	t.Parallel()
	app := browsertest.StartApp(t, browsertest.AppOpts{Synchronous: true})
	ctx := context.Background()
	// The demo peer, as `make run` starts it: it accepts the demo token only.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	peerCtx, stopPeer := context.WithCancel(ctx)
	peerDone := make(chan error, 1)
	go func() { peerDone <- peer.New(peer.Opts{Token: models.DemoPeerToken}).Serve(peerCtx, ln) }()
	t.Cleanup(func() { stopPeer(); <-peerDone })
	endpoint := "http://" + ln.Addr().String() + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"

	admin := browsertest.New(t, app.URL)
	admin.Login("admin", "admin-demo-1")
	admin.Open("/integrations")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("new-integration"))
	admin.Do(chromedp.SendKeys(browsertest.TestID("f-name"), "acme-itsm"),
		chromedp.SendKeys(browsertest.TestID("f-description"), "ACME's ITSM, production incidents"))
	setField(admin, "f-process_id", "1")
	setField(admin, "f-retry_limit", "500")
	admin.Screenshot("designer-1-new-integration")
	require.EqualValues(t, http.StatusUnprocessableEntity, admin.ClickNav("save-integration"))
	require.Contains(t, admin.Text("error-retry_limit"), "from 0 to 100")
	admin.Screenshot("designer-2-refused-value")
	setField(admin, "f-retry_limit", "4")
	setField(admin, "f-retry_delay_s", "10")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save-integration"))
	require.Contains(t, admin.Text("flash-success"), "Created integration acme-itsm")
	in, err := app.Store.GetIntegrationByName(ctx, "acme-itsm")
	require.NoError(t, err)
	require.Equal(t, 4, in.RetryLimit)
	require.Equal(t, 10, in.RetryDelayS)
	admin.Screenshot("designer-3-connections-empty")

	addConnection := func(name, token string) {
		t.Helper()
		require.EqualValues(t, http.StatusOK, admin.ClickNav("new-connection"))
		admin.Do(chromedp.SendKeys(browsertest.TestID("f-name"), name),
			chromedp.SendKeys(browsertest.TestID("f-endpoint_url"), endpoint),
			chromedp.SendKeys(browsertest.TestID("f-auth_secret"), token))
		setField(admin, "f-environment", "Test")
		setField(admin, "f-auth_type", "bearer")
		if name == "Peer" {
			admin.Screenshot("designer-4-new-connection")
		}
		require.EqualValues(t, http.StatusOK, admin.ClickNav("save-connection"))
		require.Contains(t, admin.Text("flash-success"), "Created connection "+name)
	}
	testConnection := func(name string) {
		t.Helper()
		admin.Do(chromedp.Click(browsertest.TestID("connection-row-"+name) + ` [data-testid="test-connection"]`))
		admin.WaitJS(`document.getElementById("test-dialog").open && !!document.querySelector('#test-dialog [data-testid="test-outcome"]')`, 15*time.Second)
	}

	addConnection("Peer", models.DemoPeerToken)
	testConnection("Peer")
	require.Contains(t, admin.TextCSS(`#test-dialog [data-testid="test-outcome"]`), "The connection works")
	require.Equal(t, "422", admin.TextCSS(`#test-dialog [data-testid="test-attempt-1"] [data-testid="test-status"]`))
	require.Zero(t, admin.Count(`#test-dialog [data-testid="test-attempt-2"]`), "no second attempt after a success")
	admin.Screenshot("designer-5-test-connection-ok")
	admin.Do(chromedp.Click(browsertest.TestID("test-dialog-close")))

	addConnection("Wrong", "not-the-peer-token")
	testConnection("Wrong")
	require.Contains(t, admin.TextCSS(`#test-dialog [data-testid="test-outcome"]`), "does not work")
	require.Equal(t, "401", admin.TextCSS(`#test-dialog [data-testid="test-attempt-1"] [data-testid="test-status"]`))
	require.Equal(t, 1, admin.Count(`#test-dialog [data-testid="test-attempt-2"]`), "a second attempt after the failure")
	require.Contains(t, admin.TextCSS(`#test-dialog [data-testid="test-meaning"]`), "refused the credentials")
	admin.Screenshot("designer-6-test-connection-401")

	var recorded int
	require.NoError(t, app.Store.DB(ctx).Raw(`SELECT count(*) FROM http_requests WHERE integration_id = ?
		AND response_action = 'test connection'`, in.ID).Scan(&recorded).Error)
	require.Equal(t, 3, recorded, "every test request is recorded as an HTTP Request")

	admin.Open(fmt.Sprintf("/integrations/%d/edit", in.ID))
	admin.Screenshot("designer-7-settings")

	manager := browsertest.New(t, app.URL)
	manager.Login("manager", "manager-demo-1")
	manager.Open(fmt.Sprintf("/integrations/%d/connections", in.ID))
	require.True(t, manager.Has("read-only"))
	require.False(t, manager.Has("test-connection"))
	manager.Screenshot("designer-8-manager-read-only")
	require.False(t, strings.Contains(manager.TextCSS("main"), models.DemoPeerToken))
}
