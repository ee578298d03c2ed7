// Package handlerstest runs the real Echo app on a private database for HTTP
// tests, with a cookie-keeping client that logs in like a browser.
package handlerstest

import (
	"bytes"
	"context"
	"encoding/hex"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/internal/testdb"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/query"
	"unifi/models/script"
	"unifi/models/store"
	"unifi/models/webhook"
)

// App is a running server with its store and captured logs.
type App struct {
	Server      *httptest.Server
	Store       *store.Store
	Query       *query.Reader
	Accounts    *account.Accounts
	Inbound     *inbound.Service
	Users       *account.UserCache
	Logs        *SyncBuffer
	Config      config.Config
	DatabaseURL string
}

// SyncBuffer is a goroutine-safe log sink.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything logged so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Opts changes the app before it starts.
type Opts struct {
	Notifier handlers.Notifier
	// DatabaseURL makes the app a second server on another app's database
	// (App.DatabaseURL) instead of starting on a fresh one.
	DatabaseURL string
	// ScriptLimits replace the product's default limits of a message
	// script run (zero: the defaults).
	ScriptLimits script.Limits
	// Env adds to the environment the configuration is loaded from.
	Env map[string]string
}

// New starts the app on a fresh migrated database with the demo seeded. Like
// `unifi serve`, it keeps a user cache that follows user changes made by any
// server on the database; New returns once the cache listens.
func New(t testing.TB, o *Opts) *App {
	t.Helper()
	dbURL := ""
	if o != nil {
		dbURL = o.DatabaseURL
	}
	shared := dbURL != ""
	if !shared {
		dbURL = testdb.URL(t)
	}
	db := testdb.Open(t, dbURL)
	accounts := account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost})
	var so *store.StoreOpts
	if o != nil && o.ScriptLimits != (script.Limits{}) {
		so = &store.StoreOpts{Scripts: script.NewEngine(o.ScriptLimits)}
	}
	st := store.NewStore(db, accounts, so)
	if !shared {
		_, err := st.SeedDemo(context.Background(), store.SeedDemoOpts{PeerURL: "http://127.0.0.1:1"})
		require.NoError(t, err)
	}
	users := account.NewUserCache(accounts, account.UserCacheOpts{DatabaseURL: dbURL})
	usersCtx, stopUsers := context.WithCancel(context.Background())
	usersDone := make(chan struct{})
	go func() { defer close(usersDone); users.Run(usersCtx, nil) }()
	t.Cleanup(func() { stopUsers(); <-usersDone }) // before the database is dropped: cleanups run last first
	listenCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, users.WaitListening(listenCtx), "user cache")
	key := hex.EncodeToString(bytes.Repeat([]byte{7}, 32))
	env := map[string]string{"DATABASE_URL": "postgres://x@localhost/x", "SESSION_KEY": key, "SECRET_KEY": key,
		"DATA_DIR": t.TempDir()}
	if o != nil {
		maps.Copy(env, o.Env)
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	require.NoError(t, err)
	logs := &SyncBuffer{}
	q, in := query.NewReader(db, nil), inbound.NewService(db, accounts, nil)
	ho := handlers.Opts{Store: st, Query: q, Accounts: accounts, Inbound: in, Config: cfg, Users: users,
		Webhook: webhook.New(db, in, st.Scripts()),
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if o != nil {
		ho.Notifier = o.Notifier
	}
	srv := httptest.NewServer(handlers.New(ho).Echo())
	t.Cleanup(srv.Close)
	return &App{Server: srv, Store: st, Query: q, Accounts: accounts, Inbound: in, Users: users, Logs: logs, Config: cfg, DatabaseURL: dbURL}
}

// Client is a browser-like client: it keeps cookies and does not follow redirects.
type Client struct {
	t    testing.TB
	app  *App
	HTTP *http.Client
}

// Client returns a new anonymous client.
func (a *App) Client(t testing.TB) *Client {
	jar, _ := cookiejar.New(nil)
	return &Client{t: t, app: a, HTTP: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// On returns a client for app b that shares c's cookies: the same browser
// reaching another server (on the same database, behind one address).
func (c *Client) On(b *App) *Client {
	return &Client{t: c.t, app: b, HTTP: &http.Client{Jar: c.HTTP.Jar, CheckRedirect: c.HTTP.CheckRedirect}}
}

// Login logs in as one of the demo users and returns the client.
func (a *App) Login(t testing.TB, name, password string) *Client {
	c := a.Client(t)
	res := c.PostForm("/login", url.Values{"name": {name}, "password": {password}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "login as %s", name)
	return c
}

// Response is a read response.
type Response struct {
	StatusCode int
	Header     http.Header
	Body       string
}

// Doc parses the body as HTML.
func (r Response) Doc(t testing.TB) *goquery.Document {
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(r.Body))
	require.NoError(t, err)
	return doc
}

// TestID finds elements by data-testid.
func (r Response) TestID(t testing.TB, id string) *goquery.Selection {
	return r.Doc(t).Find(`[data-testid="` + id + `"]`)
}

// Get fetches path.
func (c *Client) Get(path string) Response {
	c.t.Helper()
	return c.do(http.MethodGet, path, nil, "")
}

var csrfRe = regexp.MustCompile(`name="csrf-token" content="([^"]+)"|name="_csrf" value="([^"]+)"`)

// CSRF returns the token a page hands out (fetching the login page if needed).
func (c *Client) CSRF() string {
	c.t.Helper()
	page := c.Get("/login")
	if page.StatusCode == http.StatusSeeOther {
		page = c.Get("/")
	}
	m := csrfRe.FindStringSubmatch(page.Body)
	require.NotNil(c.t, m, "no CSRF token on the page")
	return m[1] + m[2]
}

// PostForm posts a form with the session's CSRF token added.
func (c *Client) PostForm(path string, form url.Values) Response {
	c.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", c.CSRF())
	}
	return c.PostRaw(path, form)
}

// PostRaw posts a form exactly as given (no CSRF token added).
func (c *Client) PostRaw(path string, form url.Values) Response {
	c.t.Helper()
	return c.do(http.MethodPost, path, strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
}

// Do sends any request with the client's cookies: body as given, extra headers added.
func (c *Client) Do(method, path, body, ctype string, header http.Header) Response {
	c.t.Helper()
	return c.doHeader(method, path, strings.NewReader(body), ctype, header)
}

func (c *Client) do(method, path string, body io.Reader, ctype string) Response {
	c.t.Helper()
	return c.doHeader(method, path, body, ctype, nil)
}

func (c *Client) doHeader(method, path string, body io.Reader, ctype string, header http.Header) Response {
	c.t.Helper()
	req, err := http.NewRequest(method, c.app.Server.URL+path, body)
	require.NoError(c.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.HTTP.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return Response{StatusCode: res.StatusCode, Header: res.Header, Body: string(b)}
}

// Cookies returns the client's cookies for the app.
func (c *Client) Cookies() []*http.Cookie {
	u, _ := url.Parse(c.app.Server.URL)
	return c.HTTP.Jar.Cookies(u)
}

// CountRows counts the rows of table.
func (a *App) CountRows(t testing.TB, table string) int64 {
	t.Helper()
	var n int64
	require.NoError(t, a.Store.DB(context.Background()).Table(table).Count(&n).Error)
	return n
}
