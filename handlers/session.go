package handlers

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
)

// The session cookie and the values it holds besides the CSRF token (package page).
const (
	sessionName = "unifi_session"
	keyUserID   = "uid"
	keyEpoch    = "epoch"
)

// loadSession reads the session cookie, makes sure it carries a CSRF token,
// and loads the user it names when that user is active and the session has
// not been ended by a logout.
func (h *Handlers) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		s, err := h.Sessions.Get(c.Request(), sessionName)
		if err != nil { // a tampered or stale cookie: start afresh
			s, _ = h.Sessions.New(c.Request(), sessionName)
		}
		page.SetSession(c, s)
		if uid, ok := s.Values[keyUserID].(int64); ok {
			u, err := h.sessionUser(c.Request().Context(), uid)
			switch {
			case err == nil && u.Active && u.Role != models.RoleIntegration && s.Values[keyEpoch] == u.SessionEpoch:
				page.SetUser(c, u)
			case err != nil && !errors.Is(err, models.ErrNotFound):
				return err
			default:
				delete(s.Values, keyUserID)
			}
		}
		if page.CSRFToken(c) == "" {
			page.NewCSRFToken(s)
			if err := s.Save(c.Request(), c.Response()); err != nil {
				return err
			}
		}
		return next(c)
	}
}

// sessionUser reads the session's user, from the user cache when there is one.
func (h *Handlers) sessionUser(ctx context.Context, id int64) (*models.User, error) {
	if h.Users != nil {
		return h.Users.GetUser(ctx, id)
	}
	return h.Accounts.GetUser(ctx, id)
}

// userChanged drops a user this server has just changed from its user cache
// at once; the other servers hear of it through the database (UserCache).
func (h *Handlers) userChanged(id int64) {
	if h.Users != nil {
		h.Users.Forget(id)
	}
}

// checkCSRF refuses a state-changing request whose token (form field _csrf or
// header X-CSRF-Token) does not match the session's.
func (h *Handlers) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		want := page.CSRFToken(c)
		got := c.Request().Header.Get("X-CSRF-Token")
		if got == "" {
			got = c.FormValue("_csrf")
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			return &models.ForbiddenError{Reason: "The form's security token is missing or out of date. Reload the page and try again."}
		}
		return next(c)
	}
}

// startSession rotates the session at login: fresh values, a fresh CSRF token.
func (h *Handlers) startSession(c echo.Context, u *models.User) error {
	s := page.Session(c)
	for k := range s.Values {
		delete(s.Values, k)
	}
	s.ID = ""
	s.IsNew = true
	s.Values[keyUserID] = u.ID
	s.Values[keyEpoch] = u.SessionEpoch
	page.NewCSRFToken(s)
	return s.Save(c.Request(), c.Response())
}

// endSession deletes the session cookie.
func (h *Handlers) endSession(c echo.Context) error {
	s := page.Session(c)
	s.Options.MaxAge = -1
	return s.Save(c.Request(), c.Response())
}

// requireLogin sends anonymous visitors to the login page.
func (h *Handlers) requireLogin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if page.CurrentUser(c) != nil {
			return next(c)
		}
		if c.Request().Method == http.MethodGet && c.Request().Header.Get("HX-Request") == "" {
			return c.Redirect(http.StatusSeeOther, "/login?next="+safeNext(c.Request().URL.RequestURI()))
		}
		return echo.NewHTTPError(http.StatusUnauthorized, "Your session has ended. Log in again.")
	}
}

// requireAction lets the request through only when the user's role may take
// action at all; state checks happen in the operation.
func requireAction(action models.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			u := page.CurrentUser(c)
			if u == nil {
				return echo.NewHTTPError(http.StatusUnauthorized, "Log in first.")
			}
			if err := models.RoleMay(u.Role, action); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// safeNext keeps a post-login redirect on this site: a same-origin path only,
// else "/". It starts with a single "/" (not "//" or "/\\"), holds no control
// character or backslash anywhere (browsers drop tabs and line breaks and read
// "\\" as "/", so "/\t/evil.example" would leave the site), and parsed with
// net/url it has no scheme, host or user.
func safeNext(next string) string {
	if next == "" || len(next) > 2048 || !utf8.ValidString(next) ||
		strings.IndexFunc(next, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) >= 0 ||
		!strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" ||
		!strings.HasPrefix(u.Path, "/") || strings.HasPrefix(u.Path, "//") {
		return "/"
	}
	return next
}
