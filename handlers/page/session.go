package page

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/gob"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/web/layout"
)

// The request context's keys, and the session value that holds the CSRF
// token. The session middleware (handlers.loadSession) fills them in.
const (
	ctxUser    = "unifi.user"
	ctxSession = "unifi.session"
	keyCSRF    = "csrf"
)

// Flashes travel in the session cookie, gob-encoded.
func init() { gob.Register(layout.Flash{}) }

// SetSession makes s the request's session.
func SetSession(c echo.Context, s *sessions.Session) { c.Set(ctxSession, s) }

// SetUser makes u the request's logged-in user.
func SetUser(c echo.Context, u *models.User) { c.Set(ctxUser, u) }

// Session returns the request's session, or nil outside the UI's routes.
func Session(c echo.Context) *sessions.Session {
	s, _ := c.Get(ctxSession).(*sessions.Session)
	return s
}

// CurrentUser returns the logged-in user, or nil.
func CurrentUser(c echo.Context) *models.User {
	u, _ := c.Get(ctxUser).(*models.User)
	return u
}

// CSRFToken is the token forms must send back ("" when the request has no
// session or the session none yet).
func CSRFToken(c echo.Context) string {
	if s := Session(c); s != nil {
		t, _ := s.Values[keyCSRF].(string)
		return t
	}
	return ""
}

// NewCSRFToken gives session s a fresh random CSRF token; the caller saves s.
func NewCSRFToken(s *sessions.Session) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	s.Values[keyCSRF] = base64.RawURLEncoding.EncodeToString(b)
}
