package handlers

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/account"
	"unifi/web/layout"
	"unifi/web/pages/users"
)

// UserList is the admins' users page.
func (h *Handlers) UserList(c echo.Context) error {
	return h.renderUsers(c, http.StatusOK, users.View{NewRole: models.RoleAnalyst})
}

func (h *Handlers) renderUsers(c echo.Context, status int, v users.View) error {
	list, err := h.Accounts.ListUsers(c.Request().Context())
	if err != nil {
		return err
	}
	v.Users, v.CurrentID = list, page.CurrentUser(c).ID
	return page.Render(c, status, users.Page(page.Props(c, "Users", "users"), v))
}

// UserCreate adds a user; a refused form re-renders with 422 and field errors.
func (h *Handlers) UserCreate(c echo.Context) error {
	name, role := strings.TrimSpace(c.FormValue("name")), models.Role(c.FormValue("role"))
	u, err := h.Accounts.CreateUser(c.Request().Context(), page.Actor(c),
		account.NewUserOpts{Name: name, Role: role, Password: c.FormValue("password")})
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderUsers(c, http.StatusUnprocessableEntity, users.View{NewName: name, NewRole: role, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	if err := page.Flash(c, layout.FlashSuccess, "Created user "+u.Name+" ("+u.Role.Title()+")."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/users")
}

// UserSetRole changes a user's role.
func (h *Handlers) UserSetRole(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	u, err := h.Accounts.SetUserRole(c.Request().Context(), page.Actor(c), id, models.Role(c.FormValue("role")))
	h.userChanged(id)
	if err != nil {
		return err
	}
	if err := page.Flash(c, layout.FlashSuccess, u.Name+" is now "+u.Role.Title()+"."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/users")
}

// UserResetPassword sets a new password for a user.
func (h *Handlers) UserResetPassword(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	err = h.Accounts.ResetPassword(c.Request().Context(), page.Actor(c), id, c.FormValue("password"))
	h.userChanged(id)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderUsers(c, http.StatusUnprocessableEntity, users.View{NewRole: models.RoleAnalyst, Errors: ve.Fields, ErrorFor: id})
	}
	if err != nil {
		return err
	}
	u, err := h.Accounts.GetUser(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := page.Flash(c, layout.FlashSuccess, "Password of "+u.Name+" reset; their sessions have ended."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/users")
}

// UserSetActive enables or disables a user's login.
func (h *Handlers) UserSetActive(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	u, err := h.Accounts.SetUserActive(c.Request().Context(), page.Actor(c), id, c.FormValue("active") == "true")
	h.userChanged(id)
	if err != nil {
		return err
	}
	msg := u.Name + " can log in again."
	if !u.Active {
		msg = u.Name + " is disabled and logged out."
	}
	if err := page.Flash(c, layout.FlashSuccess, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/users")
}
