package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/web/components"
	"unifi/web/layout"
	"unifi/web/pages/integration"
)

// IntegrationList shows every integration.
func (h *Handlers) IntegrationList(c echo.Context) error {
	list, err := h.Query.ListIntegrations(c.Request().Context())
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, integration.List(page.Props(c, "Integrations", "integrations"),
		integration.ListView{Integrations: list}))
}

// IntegrationShow is the Integration record page, the admin's cockpit. With
// ?job=ID (after Resume or Repair) or while a resume or repair runs, the
// progress dialog is rendered open.
func (h *Handlers) IntegrationShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	o, err := h.Query.LoadIntegrationOverview(c.Request().Context(), id)
	if err != nil {
		return err
	}
	in := &o.Integration
	v := integration.PageView{Integration: *in, ProcessName: o.ProcessName, Connection: o.Connection, Messages: o.Messages,
		Counts: o.Counts, Recent: o.Recent, Bonds: o.Bonds, Conflicts: o.Conflicts, Pollers: o.Pollers}
	for _, sc := range v.Counts {
		switch sc.State {
		case models.Error, models.TimedOut:
			v.Broken += sc.Count
		case models.Queued:
			v.Queued = sc.Count
		}
	}
	if err := h.integrationJob(c, id, o.RunningJobID, &v); err != nil {
		return err
	}
	role := page.CurrentUser(c).Role
	v.CanPause = models.Can(role, models.ActionPause, in.State) == nil
	v.CanResume = models.Can(role, models.ActionResume, in.State) == nil
	v.CanRepair = models.Can(role, models.ActionRepair, in.State) == nil
	return page.Render(c, http.StatusOK, integration.Page(page.Props(c, in.Name, "integrations"), v))
}

// integrationJob finds the bulk job the page shows: the one named in ?job, or
// the newest resume or repair of the integration while it runs (running, 0:
// none), read with its progress only then.
func (h *Handlers) integrationJob(c echo.Context, integrationID, running int64, v *integration.PageView) error {
	jobID := running
	if raw := c.QueryParam("job"); raw != "" {
		if n, err := strconv.ParseInt(raw, 10, 64); err == nil && n != 0 {
			jobID = n
		}
	}
	if jobID == 0 {
		return nil
	}
	job, failures, err := h.Query.LoadBulkJobProgress(c.Request().Context(), jobID, 50)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if job.IntegrationID == nil || *job.IntegrationID != integrationID {
		return nil
	}
	v.Job = &components.BulkJobView{Job: *job, Failures: failures, Now: h.Store.Now(), Integration: v.Integration.Name}
	v.JobOpen = true
	return nil
}

// IntegrationPause pauses an integration; new transactions queue until Resume.
func (h *Handlers) IntegrationPause(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	in, err := h.Store.PauseIntegration(c.Request().Context(), page.Actor(c), id)
	if err != nil {
		return err
	}
	if err := page.Flash(c, layout.FlashInfo, fmt.Sprintf("Integration %s is paused: new transactions queue in the order they are created and nothing is sent until you resume it.", in.Name)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, components.IntegrationURL(id))
}

// IntegrationResume starts the resume bulk job and shows its progress dialog.
func (h *Handlers) IntegrationResume(c echo.Context) error {
	return h.integrationBulk(c, h.Store.ResumeIntegration)
}

// IntegrationRepair replays every broken transaction as a bulk job.
func (h *Handlers) IntegrationRepair(c echo.Context) error {
	return h.integrationBulk(c, h.Store.RepairIntegration)
}

func (h *Handlers) integrationBulk(c echo.Context, op func(context.Context, models.Actor, int64) (*models.BulkJob, error)) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	job, err := op(c.Request().Context(), page.Actor(c), id)
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("%s?job=%d", components.IntegrationURL(id), job.ID))
}
