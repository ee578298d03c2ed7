package browsertest_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/internal/browsertest"
	"unifi/models"
	"unifi/models/configpkg"
)

// media emulates a CSS media type ("print", or "" for the screen again).
func media(m string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Media: m})
		return chromedp.Void{}, err
	}
}

// TestBrowserPackagePages: an admin reads and prints the integration's
// documentation (print media hides the application's navigation and buttons),
// imports a package through the Import page (paste, dry run, apply) and
// lands on the credentials page; screenshots of each page.
func TestBrowserPackagePages(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	b := browsertest.New(t, app.Server.URL)
	b.Login("admin", "admin-demo-1")

	b.Open(fmt.Sprintf("/integrations/%d", in.ID))
	require.EqualValues(t, http.StatusOK, b.ClickNav("documentation"))
	require.Equal(t, 4, b.Count(`section.doc-message`))
	require.Contains(t, b.TextCSS(`[data-testid="doc-message-UpdateIncident"] [data-testid="doc-field-priority"]`), "Critical")
	b.Screenshot("integration-documentation")
	// visible: the element takes space on the page (not hidden by itself or a parent).
	visible := func(css string) bool {
		return browsertest.Eval[bool](b, fmt.Sprintf(`document.querySelector(%q).getClientRects().length > 0`, css))
	}
	require.True(t, visible("header.topbar"))
	require.True(t, visible(`[data-testid="print"]`))
	b.Do(media("print"))
	require.False(t, visible("header.topbar"), "printed without the navigation")
	require.False(t, visible(`[data-testid="print"]`), "printed without buttons")
	require.True(t, visible(`[data-testid="doc-message-UpdateIncident"]`))
	b.Screenshot("integration-documentation-print") // as printed, though a screenshot keeps the screen's width
	b.Do(media(""))

	d, err := configpkg.New(app.Store.DB(ctx), app.Store.SealSecret).Export(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	doc, err := configpkg.Encode(d)
	require.NoError(t, err)
	copyDoc := strings.Replace(string(doc), `"name": "demo"`, `"name": "moved"`, 1)

	b.Open("/integrations")
	require.EqualValues(t, http.StatusOK, b.ClickNav("import-package"))
	b.Do(chromedp.SetValue(browsertest.TestID("import-text"), copyDoc))
	b.Screenshot("package-import")
	require.EqualValues(t, http.StatusOK, b.ClickNav("import-dry-run"))
	require.Contains(t, b.Text("plan-summary"), "Importing integration moved")
	require.Equal(t, 6, b.Count(`[data-testid="plan-create"]`))
	b.Screenshot("package-import-plan")
	require.EqualValues(t, http.StatusOK, b.ClickNav("import-apply"))
	require.Contains(t, b.Text("secret-state"), "missing")
	b.Screenshot("package-credentials")
	moved, err := app.Store.GetIntegrationByName(ctx, "moved")
	require.NoError(t, err)
	require.NotZero(t, moved.ID)

	b.Open("/integrations/new/template")
	require.True(t, b.Has("template-unifi-envelope"))
	b.Screenshot("integration-from-template")
}
