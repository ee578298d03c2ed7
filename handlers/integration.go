package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/web/pages/integration"
)

// IntegrationList shows every integration.
func (h *Handlers) IntegrationList(c echo.Context) error {
	list, err := h.Store.ListIntegrations(c.Request().Context())
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, integration.List(h.props(c, "Integrations", "integrations"),
		integration.ListView{Integrations: list}))
}

// IntegrationShow is the Integration record page.
func (h *Handlers) IntegrationShow(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	in, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return err
	}
	v := integration.PageView{Integration: *in}
	proc, err := h.Store.GetProcess(ctx, in.ProcessID)
	if err != nil {
		return err
	}
	v.Process = *proc
	if v.Connection, err = h.Store.ActiveConnection(ctx, id); err != nil && !errors.Is(err, models.ErrNotFound) {
		return err
	}
	if v.Messages, err = h.Store.ListMessages(ctx, id); err != nil {
		return err
	}
	if v.Counts, err = h.Store.CountTransactionsByState(ctx, id); err != nil {
		return err
	}
	role := CurrentUser(c).Role
	v.CanPause = models.Can(role, models.ActionPause, in.State) == nil
	v.CanResume = models.Can(role, models.ActionResume, in.State) == nil
	v.CanRepair = models.Can(role, models.ActionRepair, in.State) == nil
	return render(c, http.StatusOK, integration.Page(h.props(c, in.Name, "integrations"), v))
}
