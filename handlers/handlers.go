// Package handlers turns HTTP requests into Store operations and renders the
// result. Handlers only parse, call one operation and render; every route is
// in routes.go and errors become responses in one place (errors.go). The
// Designer's pages are in handlers/designer; what every page handler shares
// (the session's user, flashes and CSRF token, rendering) is in handlers/page.
package handlers

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/gorilla/securecookie"
	"github.com/gorilla/sessions"

	"unifi/internal/config"
	"unifi/internal/metrics"
	"unifi/models/account"
	"unifi/models/configpkg"
	"unifi/models/designer"
	"unifi/models/inbound"
	"unifi/models/query"
	"unifi/models/store"
	"unifi/models/webhook"
)

// Notifier wakes the transport engine when there is new work. The worker pool
// implements it; nil is allowed (the engine then finds work by polling).
type Notifier interface {
	Notify(ctx context.Context)
}

// Handlers holds what every handler needs.
type Handlers struct {
	Store    *store.Store
	Query    *query.Reader
	Accounts *account.Accounts
	Inbound  *inbound.Service
	Packages *configpkg.Service // integration packages and templates (docs/packages.md)
	Webhook  *webhook.Service   // nil: no webhook route answers (404)
	Sessions sessions.Store
	Logger   *slog.Logger
	Config   config.Config
	Notifier Notifier
	// Users, when set, answers the session check of every request from
	// memory (it follows changes made by any server); nil reads the database.
	Users *account.UserCache
	// Designer is the configuration layer of the Designer's pages.
	Designer *designer.Designer
	// EngineStats reads this process's engine counts for /metrics; nil:
	// no engine runs here.
	EngineStats metrics.EngineStats
}

// Opts configures New.
type Opts struct {
	Store       *store.Store
	Query       *query.Reader
	Accounts    *account.Accounts
	Inbound     *inbound.Service
	Webhook     *webhook.Service // nil: no webhook route answers (404)
	Logger      *slog.Logger
	Config      config.Config
	Notifier    Notifier
	Users       *account.UserCache  // optional
	Designer    *designer.Designer  // optional: built on Store with Config's link-local rule
	EngineStats metrics.EngineStats // optional: the engine of this process (worker.Pool.Stats)
}

// New returns Handlers with a cookie session store keyed from the config.
func New(o Opts) *Handlers {
	cookies := sessions.NewCookieStore(o.Config.SessionKey)
	serializer := newSessionSerializer()
	for _, c := range cookies.Codecs {
		if sc, ok := c.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(serializer)
		}
	}
	cookies.Options = &sessions.Options{
		Path:     "/",
		MaxAge:   12 * 3600,
		HttpOnly: true,
		Secure:   o.Config.Secure(),
		SameSite: http.SameSiteLaxMode,
	}
	if o.Designer == nil && o.Store != nil {
		o.Designer = designer.New(o.Store, &designer.Opts{AllowLinkLocal: o.Config.AllowLinkLocalEndpoints})
	}
	return &Handlers{Store: o.Store, Query: o.Query, Accounts: o.Accounts, Inbound: o.Inbound, Webhook: o.Webhook, Sessions: cookies, Logger: o.Logger, Config: o.Config, Notifier: o.Notifier, Users: o.Users, EngineStats: o.EngineStats,
		Designer: o.Designer, Packages: o.Store.Packages()}
}

// notify wakes the engine, if there is one.
func (h *Handlers) notify(ctx context.Context) {
	if h.Notifier != nil {
		h.Notifier.Notify(ctx)
	}
}
