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

// Pollers and poll processors in the Designer (docs/pollers.md).

func pollersURL(integrationID int64) string {
	return fmt.Sprintf("/integrations/%d/pollers", integrationID)
}

func processorForm(c echo.Context) designer.ProcessorForm {
	return designer.ProcessorForm{Name: c.FormValue("name"), SetupScript: c.FormValue("setup_script"),
		RequestScript: c.FormValue("request_script"), ResponseScript: c.FormValue("response_script")}
}

func pollerForm(c echo.Context) designer.PollerForm {
	return designer.PollerForm{Name: c.FormValue("name"), ProcessorID: c.FormValue("processor_id"),
		Schedule: c.FormValue("schedule"), EveryS: c.FormValue("every_s"), Cron: c.FormValue("cron"),
		Active: c.FormValue("active") != "", RunAsUserID: c.FormValue("run_as_user_id")}
}

// PollerList is an integration's pollers and processors.
func (h *Handlers) PollerList(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	in, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return err
	}
	v := designerpage.PollersView{Integration: *in, CanEdit: canConfigure(c)}
	if v.Pollers, err = h.Designer.Pollers(ctx, id); err != nil {
		return err
	}
	if v.Processors, err = h.Designer.PollProcessors(ctx, id); err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, designerpage.Pollers(page.Props(c, in.Name+" pollers", "integrations"), v))
}

func (h *Handlers) renderProcessorForm(c echo.Context, v designerpage.ProcessorFormView) error {
	v.CanEdit = canConfigure(c)
	status, title := http.StatusOK, "New poll processor"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = "Poll processor " + v.Form.Name
	}
	return page.Render(c, status, designerpage.ProcessorForm(page.Props(c, title, "integrations"), v))
}

// ProcessorNew is the empty processor form.
func (h *Handlers) ProcessorNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	in, err := h.Store.GetIntegration(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderProcessorForm(c, designerpage.ProcessorFormView{Integration: *in})
}

func (h *Handlers) processorView(c echo.Context, id int64) (designerpage.ProcessorFormView, error) {
	ctx := c.Request().Context()
	p, err := h.Designer.PollProcessor(ctx, id)
	if err != nil {
		return designerpage.ProcessorFormView{}, err
	}
	in, err := h.Store.GetIntegration(ctx, p.IntegrationID)
	if err != nil {
		return designerpage.ProcessorFormView{}, err
	}
	return designerpage.ProcessorFormView{Integration: *in, ID: p.ID, Version: p.Version, Form: designer.ProcessorFormOf(p)}, nil
}

// ProcessorEdit is a processor's form.
func (h *Handlers) ProcessorEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	v, err := h.processorView(c, id)
	if err != nil {
		return err
	}
	return h.renderProcessorForm(c, v)
}

// ProcessorCreate adds a processor.
func (h *Handlers) ProcessorCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f := processorForm(c)
	p, err := h.Designer.CreatePollProcessor(c.Request().Context(), page.Actor(c), id, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		in, gerr := h.Store.GetIntegration(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		return h.renderProcessorForm(c, designerpage.ProcessorFormView{Integration: *in, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Created poll processor %s.", p.Name), pollersURL(id))
}

// ProcessorUpdate saves an edited processor.
func (h *Handlers) ProcessorUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := processorForm(c)
	p, err := h.Designer.UpdatePollProcessor(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v, gerr := h.processorView(c, id)
		if gerr != nil {
			return gerr
		}
		v.Form, v.Errors, v.Version = f, ve.Fields, version
		return h.renderProcessorForm(c, v)
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved poll processor %s.", p.Name), pollersURL(p.IntegrationID))
}

// ProcessorDelete deletes a processor no poller runs.
func (h *Handlers) ProcessorDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	p, err := h.Designer.PollProcessor(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := h.Designer.DeletePollProcessor(c.Request().Context(), page.Actor(c), id, version); err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Deleted poll processor %s.", p.Name), pollersURL(p.IntegrationID))
}

// renderPollerForm fills the choices and renders the poller form.
func (h *Handlers) renderPollerForm(c echo.Context, v designerpage.PollerFormView) error {
	ctx := c.Request().Context()
	var err error
	if v.Processors, err = h.Designer.PollProcessors(ctx, v.Integration.ID); err != nil {
		return err
	}
	if v.Accounts, err = h.Designer.IntegrationAccounts(ctx); err != nil {
		return err
	}
	v.CanEdit = canConfigure(c)
	status, title := http.StatusOK, "New poller"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = "Poller " + v.Form.Name
	}
	return page.Render(c, status, designerpage.PollerForm(page.Props(c, title, "integrations"), v))
}

// PollerNew is the empty poller form.
func (h *Handlers) PollerNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	in, err := h.Store.GetIntegration(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderPollerForm(c, designerpage.PollerFormView{Integration: *in,
		Form: designer.PollerForm{Schedule: "every", EveryS: "60"}})
}

func (h *Handlers) pollerView(c echo.Context, id int64) (designerpage.PollerFormView, error) {
	ctx := c.Request().Context()
	p, err := h.Designer.Poller(ctx, id)
	if err != nil {
		return designerpage.PollerFormView{}, err
	}
	in, err := h.Store.GetIntegration(ctx, p.IntegrationID)
	if err != nil {
		return designerpage.PollerFormView{}, err
	}
	return designerpage.PollerFormView{Integration: *in, ID: p.ID, Version: p.Version, Form: designer.PollerFormOf(p)}, nil
}

// PollerEdit is a poller's form.
func (h *Handlers) PollerEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	v, err := h.pollerView(c, id)
	if err != nil {
		return err
	}
	return h.renderPollerForm(c, v)
}

// PollerCreate adds a poller.
func (h *Handlers) PollerCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f := pollerForm(c)
	p, err := h.Designer.CreatePoller(c.Request().Context(), page.Actor(c), id, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		in, gerr := h.Store.GetIntegration(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		return h.renderPollerForm(c, designerpage.PollerFormView{Integration: *in, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Created poller %s.", p.Name), pollersURL(id))
}

// PollerUpdate saves an edited poller.
func (h *Handlers) PollerUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := pollerForm(c)
	p, err := h.Designer.UpdatePoller(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v, gerr := h.pollerView(c, id)
		if gerr != nil {
			return gerr
		}
		v.Form, v.Errors, v.Version = f, ve.Fields, version
		return h.renderPollerForm(c, v)
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved poller %s.", p.Name), pollersURL(p.IntegrationID))
}

// PollerDelete deletes a poller.
func (h *Handlers) PollerDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	p, err := h.Designer.Poller(c.Request().Context(), id)
	if err != nil {
		return err
	}
	if err := h.Designer.DeletePoller(c.Request().Context(), page.Actor(c), id, version); err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Deleted poller %s.", p.Name), pollersURL(p.IntegrationID))
}

// PollRequestList is a poller's latest runs.
func (h *Handlers) PollRequestList(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	p, err := h.Designer.Poller(ctx, id)
	if err != nil {
		return err
	}
	in, err := h.Store.GetIntegration(ctx, p.IntegrationID)
	if err != nil {
		return err
	}
	reqs, err := h.Designer.PollRequests(ctx, id, 200)
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, designerpage.PollRequests(page.Props(c, "Poll requests of "+p.Name, "integrations"),
		designerpage.PollRequestsView{Integration: *in, Poller: *p, Requests: reqs}))
}

// PollRequestDetail is one run with its HTTP requests and child polls.
func (h *Handlers) PollRequestDetail(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	pr, reqs, children, err := h.Designer.PollRequest(ctx, id)
	if err != nil {
		return err
	}
	p, err := h.Designer.Poller(ctx, pr.PollerID)
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, designerpage.PollRequest(page.Props(c, fmt.Sprintf("Poll request %d", id), "integrations"),
		designerpage.PollRequestView{Poller: *p, Request: *pr, HTTP: reqs, Children: children}))
}
