package handlers

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/account"
	"unifi/web/pages/auth"
)

// LoginPage shows the login form.
func (h *Handlers) LoginPage(c echo.Context) error {
	if page.CurrentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, "/")
	}
	v := auth.LoginView{Next: safeNext(c.QueryParam("next"))}
	if c.QueryParam("bye") != "" {
		v.Info = "You have logged out."
	}
	return page.Render(c, http.StatusOK, auth.Login(page.Props(c, "Log in", ""), v))
}

// wrongLogin is the answer to wrong credentials, and to right ones of an
// account that may not log in to the UI.
const wrongLogin = "Wrong user name or password."

// LoginSubmit checks the credentials and starts a new session.
func (h *Handlers) LoginSubmit(c echo.Context) error {
	name, password := c.FormValue("name"), c.FormValue("password")
	v := auth.LoginView{Name: name, Next: safeNext(c.FormValue("next"))}
	ctx := c.Request().Context()
	addr := c.RealIP()
	u, err := h.Accounts.AuthenticatePassword(ctx, name, password, addr)
	var te *account.ThrottledError
	switch {
	case errors.As(err, &te):
		h.Logger.InfoContext(ctx, "login throttled", h.loggedName(ctx, name), slog.String("remote", addr))
		c.Response().Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
		v.Error = te.Reason
		return page.Render(c, http.StatusTooManyRequests, auth.Login(page.Props(c, "Log in", ""), v))
	case errors.Is(err, models.ErrInvalidCredentials):
		h.Logger.InfoContext(ctx, "login failed", h.loggedName(ctx, name), slog.String("remote", addr))
		v.Error = wrongLogin
		return page.Render(c, http.StatusUnauthorized, auth.Login(page.Props(c, "Log in", ""), v))
	case err != nil:
		return err
	}
	if err := models.RoleMay(u.Role, models.ActionLoginUI); err != nil {
		// Answered exactly like a wrong password, so the answer never tells that
		// the password of an account that may not log in was right.
		h.Logger.InfoContext(ctx, "login refused", slog.String("user", name), slog.String("role", string(u.Role)))
		v.Error = wrongLogin
		return page.Render(c, http.StatusUnauthorized, auth.Login(page.Props(c, "Log in", ""), v))
	}
	if err := h.startSession(c, u); err != nil {
		return err
	}
	h.Logger.InfoContext(ctx, "login", slog.String("user", u.Name), slog.String("remote", addr))
	return c.Redirect(http.StatusSeeOther, v.Next)
}

// Logout ends every session of the user and deletes the cookie.
func (h *Handlers) Logout(c echo.Context) error {
	if u := page.CurrentUser(c); u != nil {
		err := h.Accounts.EndSessions(c.Request().Context(), u.ID)
		h.userChanged(u.ID)
		if err != nil {
			return err
		}
	}
	if err := h.endSession(c); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/login?bye=1")
}

// loggedName is the user name for a failed-login log line: the name when such
// a user exists, otherwise only that it is unknown, so a password typed into
// the name box by mistake never reaches the log.
func (h *Handlers) loggedName(ctx context.Context, name string) slog.Attr {
	if len(name) > 64 || models.TextProblem(name) != "" {
		return slog.String("user", "(unknown name)")
	}
	if ok, err := h.Accounts.UserNameExists(ctx, name); err == nil && ok {
		return slog.String("user", name)
	}
	return slog.String("user", "(unknown name)")
}
