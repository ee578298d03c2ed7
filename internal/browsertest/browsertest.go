// Package browsertest drives the real app in a real headless Chromium: it
// starts the app on httptest with a fresh test database, starts a browser
// with a fresh profile and a short deadline per test, and saves screenshots
// to test-artifacts/screenshots/.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Deadline bounds one browser's whole life; StepTimeout bounds each step, so a
// missing element fails its step quickly (chromedp waits for a selector until its context ends) instead of waiting
// for the end of the test.
const (
	Deadline    = 3 * time.Minute
	StepTimeout = 20 * time.Second
)

// ChromiumPath finds Debian's chromium (the real binary when it is there).
func ChromiumPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/lib/chromium/chromium", "/usr/bin/chromium"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	t.Fatal("browsertest: chromium is not installed; .ci/run installs it (apt-get install chromium)")
	return ""
}

// Browser is one headless Chromium with one tab.
type Browser struct {
	t    testing.TB
	Ctx  context.Context
	Base string
}

// New starts a browser for t against the server at base. It is closed when
// the test ends.
func New(t testing.TB, base string) *Browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(ChromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(func(string, ...any) {}))
	ctx, tcancel := context.WithTimeout(ctx, Deadline)
	t.Cleanup(func() { tcancel(); cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("browsertest: start chromium: %v", err)
	}
	return &Browser{t: t, Ctx: ctx, Base: base}
}

// Do runs steps and fails the test on error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Open navigates to path and waits for the body.
func (b *Browser) Open(path string) {
	b.t.Helper()
	b.Do(chromedp.Navigate(b.Base+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// ClickNav clicks something that loads a new page (a form submit or a link)
// and waits for it; it returns the HTTP status of the new page.
func (b *Browser) ClickNav(testid string) int64 {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(TestID(testid)))
	if err != nil {
		b.t.Fatalf("browser: click %s: %v", testid, err)
	}
	if resp == nil {
		return 0
	}
	return resp.Status
}

// Text returns the text of the element with the test id.
func (b *Browser) Text(testid string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(TestID(testid)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", testid, err)
	}
	return strings.TrimSpace(s)
}

// TextCSS returns the text of the first element matching a CSS selector.
func (b *Browser) TextCSS(css string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", css, err)
	}
	return strings.TrimSpace(s)
}

// Count returns how many elements match a CSS selector, now.
func (b *Browser) Count(css string) int {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", css)))
	if err != nil {
		b.t.Fatalf("browser: count %s: %v", css, err)
	}
	return n
}

// Has reports whether an element with the test id is on the page now.
func (b *Browser) Has(testid string) bool {
	b.t.Helper()
	return b.Count(fmt.Sprintf("[data-testid=%q]", testid)) > 0
}

// WaitJS waits until a JavaScript expression is true.
func (b *Browser) WaitJS(expr string, timeout time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.Ctx, timeout+StepTimeout)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
		b.t.Fatalf("browser: waiting for %s: %v", expr, err)
	}
}

// Eval runs a JavaScript expression and returns its value.
func Eval[T any](b *Browser, expr string) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("browser: eval %s: %v", expr, err)
	}
	return v
}

// Login logs in through the login form.
func (b *Browser) Login(name, password string) {
	b.t.Helper()
	b.Open("/login")
	b.Do(chromedp.SendKeys(chromedp.CSS(`input[name="name"]`), name),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), password))
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`form button[type="submit"]`)))
	if err != nil {
		b.t.Fatalf("browser: log in as %s: %v", name, err)
	}
	if resp != nil && resp.Status != 200 {
		b.t.Fatalf("browser: log in as %s: status %d", name, resp.Status)
	}
	if !b.Has("current-user") {
		b.t.Fatalf("browser: log in as %s: not logged in", name)
	}
}

func (b *Browser) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.Ctx, StepTimeout)
}

// TestID selects by data-testid.
func TestID(id string) chromedp.CSS { return chromedp.CSS(fmt.Sprintf("[data-testid=%q]", id)) }

// Screenshot saves a full-page PNG as test-artifacts/screenshots/<name>.png
// and returns its path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("browser: screenshot %s: %v", name, err)
	}
	dir := filepath.Join(ModuleRoot(b.t), "test-artifacts", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	return p
}

// ModuleRoot is the folder holding go.mod.
func ModuleRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("browsertest: go.mod not found")
		}
		dir = parent
	}
}
