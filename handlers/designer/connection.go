package designer

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/designer"
	"unifi/web/layout"
	designerpage "unifi/web/pages/designer"
)

// connectionForm reads the connection form.
func connectionForm(c echo.Context) designer.ConnectionForm {
	return designer.ConnectionForm{Name: c.FormValue("name"), Environment: c.FormValue("environment"),
		EndpointURL: c.FormValue("endpoint_url"), AuthType: c.FormValue("auth_type"), AuthUsername: c.FormValue("auth_username"),
		AuthSecret: c.FormValue("auth_secret"), OAuthTokenURL: c.FormValue("oauth_token_url"),
		OAuthClientID: c.FormValue("oauth_client_id"), OAuthScopes: c.FormValue("oauth_scopes")}
}

func connectionsURL(integrationID int64) string {
	return fmt.Sprintf("/integrations/%d/connections", integrationID)
}

// ConnectionList is an integration's connections.
func (h *Handlers) ConnectionList(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	in, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return err
	}
	conns, err := h.Designer.Connections(ctx, id)
	if err != nil {
		return err
	}
	v := designerpage.ConnectionsView{Integration: *in, Connections: conns, Accounts: map[int64]string{}, CanEdit: canConfigure(c)}
	for i := range conns {
		if v.Accounts[conns[i].ID], err = h.Designer.InboundAccount(ctx, &conns[i]); err != nil {
			return err
		}
	}
	return page.Render(c, http.StatusOK, designerpage.Connections(page.Props(c, in.Name+" connections", "integrations"), v))
}

// renderConnectionForm renders the connection form, 422 when it holds refusals.
func (h *Handlers) renderConnectionForm(c echo.Context, v designerpage.ConnectionFormView) error {
	v.CanEdit = canConfigure(c)
	status, title := http.StatusOK, "New connection"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = "Connection " + v.Form.Name
	}
	return page.Render(c, status, designerpage.ConnectionForm(page.Props(c, title, "integrations"), v))
}

// ConnectionNew is the empty form of a new connection.
func (h *Handlers) ConnectionNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	in, err := h.Store.GetIntegration(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderConnectionForm(c, designerpage.ConnectionFormView{Integration: *in,
		Form: designer.ConnectionForm{Environment: "Production", AuthType: string(models.AuthNone)}})
}

// connectionView is the form view of a stored connection.
func (h *Handlers) connectionView(c echo.Context, id int64) (designerpage.ConnectionFormView, error) {
	ctx := c.Request().Context()
	conn, err := h.Designer.Connection(ctx, id)
	if err != nil {
		return designerpage.ConnectionFormView{}, err
	}
	in, err := h.Store.GetIntegration(ctx, conn.IntegrationID)
	if err != nil {
		return designerpage.ConnectionFormView{}, err
	}
	account, err := h.Designer.InboundAccount(ctx, conn)
	if err != nil {
		return designerpage.ConnectionFormView{}, err
	}
	return designerpage.ConnectionFormView{Integration: *in, ID: conn.ID, Version: conn.Version, Active: conn.Active,
		HasSecret: conn.AuthSecret != "", InboundAccount: account, Form: designer.ConnectionFormOf(conn)}, nil
}

// ConnectionEdit is a connection's form (read-only for a manager);
// its secret is never filled in.
func (h *Handlers) ConnectionEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	v, err := h.connectionView(c, id)
	if err != nil {
		return err
	}
	return h.renderConnectionForm(c, v)
}

// ConnectionCreate adds a connection to an integration.
func (h *Handlers) ConnectionCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f := connectionForm(c)
	conn, err := h.Designer.CreateConnection(c.Request().Context(), page.Actor(c), id, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		in, gerr := h.Store.GetIntegration(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		f.AuthSecret = "" // never echoed back
		return h.renderConnectionForm(c, designerpage.ConnectionFormView{Integration: *in, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Created connection %s.", conn.Name)
	if conn.Active {
		msg += " It is the integration's active connection."
	}
	return page.FlashRedirect(c, layout.FlashSuccess, msg+" Use Test Connection to check it.", connectionsURL(id))
}

// ConnectionUpdate saves an edited connection; an empty secret keeps the stored one.
func (h *Handlers) ConnectionUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := connectionForm(c)
	conn, err := h.Designer.UpdateConnection(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v, gerr := h.connectionView(c, id)
		if gerr != nil {
			return gerr
		}
		f.AuthSecret = ""
		v.Form, v.Errors, v.Version = f, ve.Fields, version
		return h.renderConnectionForm(c, v)
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved connection %s.", conn.Name), connectionsURL(conn.IntegrationID))
}

// ConnectionActivate makes a connection the active one.
func (h *Handlers) ConnectionActivate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	conn, err := h.Designer.ActivateConnection(c.Request().Context(), page.Actor(c), id, version)
	if err != nil {
		return err
	}
	h.NotifyFunc(c.Request().Context())
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Connection %s is now the active one; the others are inactive.", conn.Name), connectionsURL(conn.IntegrationID))
}

// ConnectionDelete deletes an inactive connection.
func (h *Handlers) ConnectionDelete(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	conn, err := h.Designer.Connection(c.Request().Context(), id)
	if err != nil {
		return err
	}
	version, err := formVersion(c)
	if err != nil {
		return err
	}
	if err := h.Designer.DeleteConnection(c.Request().Context(), page.Actor(c), id, version); err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Deleted connection %s.", conn.Name), connectionsURL(conn.IntegrationID))
}

// ConnectionToken generates (or rotates) the connection's inbound
// token and shows it this once. The answer is not cached.
func (h *Handlers) ConnectionToken(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	token, conn, err := h.Designer.RotateInboundToken(c.Request().Context(), page.Actor(c), id, version)
	if err != nil {
		return err
	}
	in, err := h.Store.GetIntegration(c.Request().Context(), conn.IntegrationID)
	if err != nil {
		return err
	}
	account, err := h.Designer.InboundAccount(c.Request().Context(), conn)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return page.Render(c, http.StatusOK, designerpage.Token(page.Props(c, "Inbound token", "integrations"),
		designerpage.TokenView{Integration: *in, Connection: *conn, Account: account, Token: token}))
}

// ConnectionTest sends the test request and answers with the
// dialog's content (an htmx fragment; a whole page without htmx).
func (h *Handlers) ConnectionTest(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	res, err := h.Designer.TestConnection(c.Request().Context(), page.Actor(c), id)
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, designerpage.TestResultView(res))
}
