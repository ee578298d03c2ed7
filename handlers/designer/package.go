package designer

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/configpkg"
	"unifi/web/layout"
	"unifi/web/pages/integration"
	"unifi/web/pages/packages"
)

// packageOf is the package of the integration in the path.
func (h *Handlers) packageOf(c echo.Context) (int64, *configpkg.Document, error) {
	id, err := page.PathID(c, "id")
	if err != nil {
		return 0, nil, err
	}
	d, err := h.Packages.ExportByID(c.Request().Context(), id)
	return id, d, err
}

// IntegrationExport downloads the integration's package (docs/packages.md).
func (h *Handlers) IntegrationExport(c echo.Context) error {
	_, d, err := h.packageOf(c)
	if err != nil {
		return err
	}
	out, err := configpkg.Encode(d)
	if err != nil {
		return err
	}
	// The name is letters, digits, - and _ (a CHECK), safe in the header.
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s.unifi.json"`, d.Integration.Name))
	return c.Blob(http.StatusOK, "application/json; charset=utf-8", out)
}

// IntegrationDocumentation is the integration's interface description,
// generated from its configuration, printable.
func (h *Handlers) IntegrationDocumentation(c echo.Context) error {
	id, d, err := h.packageOf(c)
	if err != nil {
		return err
	}
	v := integration.DocumentationView{ID: id, Doc: d, GeneratedAt: h.Store.Now().UTC().Format("2006-01-02 15:04 UTC"),
		InboundURL: h.BaseURL + "/api/v1/integrations/" + d.Integration.Name + "/messages"}
	return page.Render(c, http.StatusOK, integration.Documentation(page.Props(c, d.Integration.Name+" documentation", "integrations"), v))
}

// PackageImportForm is the import page: upload a package for a dry run.
func (h *Handlers) PackageImportForm(c echo.Context) error {
	return page.Render(c, http.StatusOK, packages.Import(page.Props(c, "Import a package", "integrations"), packages.ImportView{}))
}

// packageDocument reads the document from the upload or the text field. The
// route's body limit is above configpkg.MaxBytes, so a document that is too
// large reaches the decoder and is refused with its own words.
func packageDocument(c echo.Context) (string, error) {
	if fh, err := c.FormFile("document"); err == nil && fh.Size > 0 {
		f, err := fh.Open()
		if err != nil {
			return "", fmt.Errorf("open uploaded package: %w", err)
		}
		defer f.Close()
		b, err := io.ReadAll(io.LimitReader(f, configpkg.MaxBytes+1))
		if err != nil {
			return "", fmt.Errorf("read uploaded package: %w", err)
		}
		return string(b), nil
	}
	return c.FormValue("document_text"), nil
}

// PackageImportPlan decodes the document and shows the dry run; a refused
// document re-renders the form with 422 and every problem by its place.
func (h *Handlers) PackageImportPlan(c echo.Context) error {
	text, err := packageDocument(c)
	if err != nil {
		return err
	}
	v := packages.ImportView{Text: text}
	d, err := configpkg.DecodeBytes([]byte(text))
	if err == nil {
		v.Plan, err = h.Packages.Plan(c.Request().Context(), d)
	}
	return h.renderImport(c, v, err)
}

// PackageImportApply applies the document whose plan the admin saw.
func (h *Handlers) PackageImportApply(c echo.Context) error {
	text := c.FormValue("document_text")
	v := packages.ImportView{Text: text}
	d, err := configpkg.DecodeBytes([]byte(text))
	if err != nil {
		return h.renderImport(c, v, err)
	}
	in, err := h.Packages.Apply(c.Request().Context(), page.Actor(c), d, c.FormValue("digest"))
	if err != nil {
		return h.renderImport(c, v, err)
	}
	h.NotifyFunc(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, fmt.Sprintf("Imported integration %s. Give each new connection its credentials to activate it.", in.Name)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/integrations/%d/credentials", in.ID))
}

// renderImport shows the import page after a dry run (err nil) or a refusal:
// a document fault is 422 with its problems, a stale plan 409 with the form
// to start again; anything else goes to the error handler.
func (h *Handlers) renderImport(c echo.Context, v packages.ImportView, err error) error {
	var pe *configpkg.Error
	var ce *models.ConflictError
	status := http.StatusOK
	switch {
	case err == nil:
	case errors.As(err, &pe):
		status, v.Problems, v.Plan = http.StatusUnprocessableEntity, pe.Problems, nil
	case errors.As(err, &ce):
		status, v.Error, v.Plan = http.StatusConflict, ce.Reason, nil
	default:
		return err
	}
	return page.Render(c, status, packages.Import(page.Props(c, "Import a package", "integrations"), v))
}

// IntegrationCredentials lists the integration's connections with what
// they still need; an admin gives secrets and inbound accounts here.
func (h *Handlers) IntegrationCredentials(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	return h.renderCredentials(c, id, http.StatusOK, 0, nil)
}

func (h *Handlers) renderCredentials(c echo.Context, id int64, status int, errorFor int64, errs map[string]string) error {
	ctx := c.Request().Context()
	in, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return err
	}
	conns, err := h.Packages.Connections(ctx, id)
	if err != nil {
		return err
	}
	accounts, err := h.Packages.InboundAccounts(ctx)
	if err != nil {
		return err
	}
	v := packages.CredentialsView{Integration: *in, Connections: conns, Accounts: accounts, Errors: errs, ErrorFor: errorFor,
		CanEdit: canConfigure(c)}
	return page.Render(c, status, packages.Credentials(page.Props(c, in.Name+" credentials", "integrations"), v))
}

// ConnectionCredentials saves a connection's secret and inbound account and
// activates it when asked; a refused form re-renders with 422.
func (h *Handlers) ConnectionCredentials(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	cr := configpkg.Credentials{Secret: c.FormValue("secret"), Activate: c.FormValue("activate") == "true"}
	if raw := strings.TrimSpace(c.FormValue("inbound_user_id")); raw != "" {
		if cr.InboundUserID, err = strconv.ParseInt(raw, 10, 64); err != nil || cr.InboundUserID <= 0 {
			cr.InboundUserID = -1 // refused by SetCredentials as not an integration account
		}
	}
	conn, err := h.Packages.SetCredentials(c.Request().Context(), page.Actor(c), id, cr)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		integrationID, err := h.Packages.ConnectionIntegration(c.Request().Context(), id)
		if err != nil {
			return err
		}
		return h.renderCredentials(c, integrationID, http.StatusUnprocessableEntity, id, ve.Fields)
	}
	if err != nil {
		return err
	}
	h.NotifyFunc(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, fmt.Sprintf("Saved the credentials of connection %s.", conn.Name)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/integrations/%d/credentials", conn.IntegrationID))
}

// IntegrationNewFromTemplate is the "New integration from a template" form.
func (h *Handlers) IntegrationNewFromTemplate(c echo.Context) error {
	return h.renderTemplateForm(c, http.StatusOK, configpkg.TemplateInput{Environment: "Production"}, nil)
}

func (h *Handlers) renderTemplateForm(c echo.Context, status int, in configpkg.TemplateInput, errs map[string]string) error {
	accounts, err := h.Packages.InboundAccounts(c.Request().Context())
	if err != nil {
		return err
	}
	v := packages.TemplateView{Templates: configpkg.Templates, Accounts: accounts, Values: in, Errors: errs}
	return page.Render(c, status, packages.NewFromTemplate(page.Props(c, "New integration from a template", "integrations"), v))
}

// IntegrationCreateFromTemplate creates the integration, its messages and
// its active connection from the template in one database transaction.
func (h *Handlers) IntegrationCreateFromTemplate(c echo.Context) error {
	in := configpkg.TemplateInput{Template: c.FormValue("template"), Name: strings.TrimSpace(c.FormValue("name")),
		Description: strings.TrimSpace(c.FormValue("description")), Environment: c.FormValue("environment"),
		EndpointURL: strings.TrimSpace(c.FormValue("endpoint_url")), Username: strings.TrimSpace(c.FormValue("username")),
		Token: c.FormValue("token")}
	if raw := c.FormValue("inbound_user_id"); raw != "" {
		if id, err := strconv.ParseInt(raw, 10, 64); err == nil && id > 0 {
			in.InboundUserID = id
		} else {
			in.InboundUserID = -1
		}
	}
	created, err := h.Packages.FromTemplate(c.Request().Context(), page.Actor(c), in)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		in.Token = "" // a secret is never shown back
		return h.renderTemplateForm(c, http.StatusUnprocessableEntity, in, ve.Fields)
	}
	if err != nil {
		return err
	}
	h.NotifyFunc(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, fmt.Sprintf("Created integration %s from the template; its connection is active.", created.Name)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/integrations/%d", created.ID))
}
