package designer

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/designer"
	"unifi/web/components"
	"unifi/web/layout"
	designerpage "unifi/web/pages/designer"
)

// integrationForm reads the integration form.
func integrationForm(c echo.Context) designer.IntegrationForm {
	return designer.IntegrationForm{Name: c.FormValue("name"), Description: c.FormValue("description"),
		ProcessID: c.FormValue("process_id"), SyncTimeoutS: c.FormValue("sync_timeout_s"),
		AsyncTimeoutS: c.FormValue("async_timeout_s"), RetryLimit: c.FormValue("retry_limit"),
		RetryDelayS: c.FormValue("retry_delay_s"), AttachLogs: c.FormValue("attach_logs") == "true",
		HeartbeatS: c.FormValue("heartbeat_s")}
}

// renderIntegrationForm renders the form, with 422 when it holds refusals.
func (h *Handlers) renderIntegrationForm(c echo.Context, v designerpage.IntegrationFormView) error {
	procs, err := h.Designer.Processes(c.Request().Context())
	if err != nil {
		return err
	}
	v.Processes, v.CanEdit = procs, canConfigure(c)
	status, title := http.StatusOK, "New integration"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = v.Name + " settings"
	}
	return page.Render(c, status, designerpage.IntegrationForm(page.Props(c, title, "integrations"), v))
}

// IntegrationNew is the empty form of a new integration.
func (h *Handlers) IntegrationNew(c echo.Context) error {
	return h.renderIntegrationForm(c, designerpage.IntegrationFormView{Form: designer.NewIntegrationForm()})
}

// IntegrationEdit is an integration's settings form (read-only for a manager).
func (h *Handlers) IntegrationEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	in, err := h.Store.GetIntegration(c.Request().Context(), id)
	if err != nil {
		return err
	}
	n, err := h.Designer.TransactionCount(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderIntegrationForm(c, designerpage.IntegrationFormView{ID: in.ID, Name: in.Name, Version: in.Version,
		State: in.State, Form: designer.FormOf(in), CanDelete: n == 0})
}

// IntegrationCreate creates an integration; a refused form
// re-renders with 422 and the reasons next to the fields.
func (h *Handlers) IntegrationCreate(c echo.Context) error {
	f := integrationForm(c)
	in, err := h.Designer.CreateIntegration(c.Request().Context(), page.Actor(c), f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderIntegrationForm(c, designerpage.IntegrationFormView{Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Created integration %s. Add a connection next: nothing is sent or received without an active one.", in.Name), fmt.Sprintf("/integrations/%d/connections", in.ID))
}

// IntegrationUpdate saves an integration's settings; an edit of an
// older version is refused with 409 and what changed meanwhile.
func (h *Handlers) IntegrationUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := integrationForm(c)
	in, err := h.Designer.UpdateIntegration(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		cur, gerr := h.Store.GetIntegration(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		return h.renderIntegrationForm(c, designerpage.IntegrationFormView{ID: id, Name: cur.Name, Version: version,
			State: cur.State, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved integration %s. Every server uses the new settings for the next transaction it sends.", in.Name), components.IntegrationURL(id))
}

// IntegrationState switches an integration Off or back On.
func (h *Handlers) IntegrationState(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	on, err := strconv.ParseBool(c.FormValue("on"))
	if err != nil {
		return &models.ValidationError{Fields: map[string]string{"on": "Say whether to switch it on (true) or off (false)."}}
	}
	in, err := h.Designer.SetIntegrationOn(c.Request().Context(), page.Actor(c), id, version, on)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Integration %s is off: nothing is sent or received until it is switched on.", in.Name)
	if on {
		msg = fmt.Sprintf("Integration %s is on.", in.Name)
		h.NotifyFunc(c.Request().Context())
	}
	return page.FlashRedirect(c, layout.FlashInfo, msg, components.IntegrationURL(id))
}

// IntegrationDelete deletes an integration that has no transactions.
func (h *Handlers) IntegrationDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	if err := h.Designer.DeleteIntegration(c.Request().Context(), page.Actor(c), id, version); err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, "Deleted the integration.", "/integrations")
}
