package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/models/designer"
	"unifi/web/components"
	"unifi/web/layout"
	designerpage "unifi/web/pages/designer"
)

// canConfigure reports whether the current user may change configuration
// (admin); a manager sees the same pages without edit controls.
func canConfigure(c echo.Context) bool {
	return models.RoleMay(CurrentUser(c).Role, models.ActionConfigure) == nil
}

// flashRedirect ends a successful change: a message for the next page,
// then 303 to it.
func (h *Handlers) flashRedirect(c echo.Context, kind layout.FlashKind, msg, to string) error {
	if err := h.flash(c, kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// formVersion reads the version an edit was based on.
func formVersion(c echo.Context) (int, error) {
	v, err := strconv.ParseInt(c.FormValue("version"), 10, 32)
	if err != nil || v < 1 {
		return 0, &models.ValidationError{Fields: map[string]string{"version": "The form does not say which version of the record it edits; open the record again and make the change there."}}
	}
	return int(v), nil
}

// pathIDVersion reads the record's id from the path and the version the
// edit was based on from the form.
func pathIDVersion(c echo.Context) (int64, int, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return 0, 0, err
	}
	version, err := formVersion(c)
	return id, version, err
}

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
	return render(c, status, designerpage.IntegrationForm(h.props(c, title, "integrations"), v))
}

// DesignerIntegrationNew is the empty form of a new integration.
func (h *Handlers) DesignerIntegrationNew(c echo.Context) error {
	return h.renderIntegrationForm(c, designerpage.IntegrationFormView{Form: designer.NewIntegrationForm()})
}

// DesignerIntegrationEdit is an integration's settings form (read-only for a manager).
func (h *Handlers) DesignerIntegrationEdit(c echo.Context) error {
	id, err := pathID(c, "id")
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

// DesignerIntegrationCreate creates an integration; a refused form
// re-renders with 422 and the reasons next to the fields.
func (h *Handlers) DesignerIntegrationCreate(c echo.Context) error {
	f := integrationForm(c)
	in, err := h.Designer.CreateIntegration(c.Request().Context(), h.actor(c), f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderIntegrationForm(c, designerpage.IntegrationFormView{Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return h.flashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Created integration %s. Add a connection next: nothing is sent or received without an active one.", in.Name), fmt.Sprintf("/integrations/%d/connections", in.ID))
}

// DesignerIntegrationUpdate saves an integration's settings; an edit of an
// older version is refused with 409 and what changed meanwhile.
func (h *Handlers) DesignerIntegrationUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := integrationForm(c)
	in, err := h.Designer.UpdateIntegration(c.Request().Context(), h.actor(c), id, version, f)
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
	return h.flashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved integration %s. Every server uses the new settings for the next transaction it sends.", in.Name), components.IntegrationURL(id))
}

// DesignerIntegrationState switches an integration Off or back On.
func (h *Handlers) DesignerIntegrationState(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	on, err := strconv.ParseBool(c.FormValue("on"))
	if err != nil {
		return &models.ValidationError{Fields: map[string]string{"on": "Say whether to switch it on (true) or off (false)."}}
	}
	in, err := h.Designer.SetIntegrationOn(c.Request().Context(), h.actor(c), id, version, on)
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Integration %s is off: nothing is sent or received until it is switched on.", in.Name)
	if on {
		msg = fmt.Sprintf("Integration %s is on.", in.Name)
		h.notify(c.Request().Context())
	}
	return h.flashRedirect(c, layout.FlashInfo, msg, components.IntegrationURL(id))
}

// DesignerIntegrationDelete deletes an integration that has no transactions.
func (h *Handlers) DesignerIntegrationDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	if err := h.Designer.DeleteIntegration(c.Request().Context(), h.actor(c), id, version); err != nil {
		return err
	}
	return h.flashRedirect(c, layout.FlashSuccess, "Deleted the integration.", "/integrations")
}
