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

// The Designer's process pages: processes (kinds of ticket, with their
// number prefix) and their own ticket fields (docs/designer.md).

func processForm(c echo.Context) designer.ProcessForm {
	return designer.ProcessForm{Name: c.FormValue("name"), NumberPrefix: c.FormValue("number_prefix")}
}

func processFieldForm(c echo.Context) designer.ProcessFieldForm {
	return designer.ProcessFieldForm{Name: c.FormValue("name"), Label: c.FormValue("label"), Type: c.FormValue("type"),
		Choices: c.FormValue("choices"), Required: c.FormValue("required") == "true", Position: c.FormValue("position")}
}

// ProcessList lists the processes.
func (h *Handlers) ProcessList(c echo.Context) error {
	procs, err := h.Designer.Processes(c.Request().Context())
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, designerpage.ProcessList(page.Props(c, "Processes", "processes"),
		designerpage.ProcessListView{Processes: procs, CanEdit: canConfigure(c)}))
}

// renderProcessForm renders a process's page (with its fields once it
// exists), with 422 when either form holds refusals.
func (h *Handlers) renderProcessForm(c echo.Context, v designerpage.ProcessFormView) error {
	v.CanEdit = canConfigure(c)
	if v.ID != 0 {
		fields, err := h.Store.ProcessFields(c.Request().Context(), v.ID)
		if err != nil {
			return err
		}
		v.Fields = fields
	}
	status, title := http.StatusOK, "New process"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = "Process " + v.Form.Name
	}
	return page.Render(c, status, designerpage.ProcessForm(page.Props(c, title, "processes"), v))
}

// ProcessNew is the empty form of a new process.
func (h *Handlers) ProcessNew(c echo.Context) error {
	return h.renderProcessForm(c, designerpage.ProcessFormView{})
}

// ProcessEdit is a process's page: its form and its fields.
func (h *Handlers) ProcessEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	p, err := h.Designer.Process(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderProcessForm(c, designerpage.ProcessFormView{ID: p.ID, Version: p.Version, Form: designer.ProcessFormOf(p)})
}

// ProcessFieldNew is the empty form of a new field of a process.
func (h *Handlers) ProcessFieldNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	return h.renderProcessFieldForm(c, &models.ProcessField{ProcessID: id}, designer.ProcessFieldForm{Type: string(models.FieldText)}, nil)
}

// ProcessCreate creates a process.
func (h *Handlers) ProcessCreate(c echo.Context) error {
	f := processForm(c)
	p, err := h.Designer.CreateProcess(c.Request().Context(), page.Actor(c), f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderProcessForm(c, designerpage.ProcessFormView{Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Created process %s: its tickets are numbered %s0000001 on. Add its fields below.", p.Name, p.NumberPrefix), fmt.Sprintf("/processes/%d/edit", p.ID))
}

// ProcessUpdate saves a process; an edit of an older version is
// refused with 409 and what changed meanwhile.
func (h *Handlers) ProcessUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := processForm(c)
	p, err := h.Designer.UpdateProcess(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderProcessForm(c, designerpage.ProcessFormView{ID: id, Version: version, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, "Saved process "+p.Name+".", fmt.Sprintf("/processes/%d/edit", id))
}

// ProcessFieldCreate adds a field to a process; a refused field
// re-renders its form with the reasons next to the fields.
func (h *Handlers) ProcessFieldCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f := processFieldForm(c)
	pf, err := h.Designer.CreateProcessField(c.Request().Context(), page.Actor(c), id, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderProcessFieldForm(c, &models.ProcessField{ProcessID: id}, f, ve.Fields)
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Added field %s; tickets of this process show it from now on.", pf.Label), fmt.Sprintf("/processes/%d/edit", id))
}

// renderProcessFieldForm renders one field's page.
func (h *Handlers) renderProcessFieldForm(c echo.Context, pf *models.ProcessField, f designer.ProcessFieldForm, errs map[string]string) error {
	p, err := h.Designer.Process(c.Request().Context(), pf.ProcessID)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if len(errs) > 0 {
		status = http.StatusUnprocessableEntity
	}
	title := "Field " + pf.Name
	if pf.ID == 0 {
		title = "New field of " + p.Name
	}
	return page.Render(c, status, designerpage.ProcessFieldForm(page.Props(c, title, "processes"),
		designerpage.ProcessFieldFormView{Field: *pf, Process: *p, Form: f, Errors: errs, CanEdit: canConfigure(c)}))
}

// ProcessFieldEdit is one field's page.
func (h *Handlers) ProcessFieldEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	pf, err := h.Designer.ProcessField(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderProcessFieldForm(c, pf, designer.ProcessFieldFormOf(pf), nil)
}

// ProcessFieldUpdate saves a field, provided it is still at the
// version the form was opened at.
func (h *Handlers) ProcessFieldUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f := processFieldForm(c)
	pf, err := h.Designer.UpdateProcessField(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		cur, gerr := h.Designer.ProcessField(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		cur.Version = version
		return h.renderProcessFieldForm(c, cur, f, ve.Fields)
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, "Saved field "+pf.Label+".", fmt.Sprintf("/processes/%d/edit", pf.ProcessID))
}

// ProcessFieldDelete removes a field no message maps.
func (h *Handlers) ProcessFieldDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	pf, err := h.Designer.DeleteProcessField(c.Request().Context(), page.Actor(c), id, version)
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, "Removed field "+pf.Label+".", fmt.Sprintf("/processes/%d/edit", pf.ProcessID))
}
