package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/query"
	"unifi/models/store"
	"unifi/web/components"
	"unifi/web/layout"
	"unifi/web/pages/ticket"
)

// TicketList is the tickets list; /tickets/process-errors shows only the
// tickets whose bonds hold a process error.
func (h *Handlers) TicketList(c echo.Context) error {
	errorsOnly := strings.HasSuffix(c.Path(), "/process-errors")
	f := query.TicketFilter{Text: c.QueryParam("q"), WithProcessErrors: errorsOnly, Limit: 50}
	f.BeforeID, _ = strconv.ParseInt(c.QueryParam("before"), 10, 64)
	rows, err := h.Query.QueryTickets(c.Request().Context(), f)
	if err != nil {
		return err
	}
	v := ticket.ListView{Text: f.Text, ErrorsOnly: errorsOnly, Rows: rows,
		CanWork: models.RoleMay(page.CurrentUser(c).Role, models.ActionWorkTickets) == nil}
	if len(rows) == f.Limit {
		v.NextURL = olderPageURL(c, c.Request().URL.Path, rows[len(rows)-1].ID)
	}
	title := "Tickets"
	if errorsOnly {
		title = "Tickets with process errors"
	}
	return page.Render(c, http.StatusOK, ticket.List(page.Props(c, title, "tickets"), v))
}

// TicketShow is the ticket page with its "Integrations" related list.
func (h *Handlers) TicketShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Query.LoadTicketDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	v := ticket.PageView{D: d, CanWork: models.RoleMay(page.CurrentUser(c).Role, models.ActionWorkTickets) == nil}
	if v.Fields, err = h.Store.ProcessFields(c.Request().Context(), d.Ticket.ProcessID); err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, ticket.Page(page.Props(c, d.Ticket.Number, "tickets"), v))
}

// TicketNew is the empty create form.
func (h *Handlers) TicketNew(c echo.Context) error {
	v := ticket.FormView{State: "New", Priority: "4", Urgency: "3", Impact: "3"}
	if err := h.newTicketProcess(c, &v, c.QueryParam("process")); err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, ticket.Form(page.Props(c, "New ticket", "tickets"), v))
}

// TicketEdit is the edit form of a ticket.
func (h *Handlers) TicketEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Query.LoadTicketDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	t := d.Ticket
	v := ticket.FormView{ID: t.ID, Number: t.Number, Version: t.Version, ShortDescription: t.ShortDescription,
		Description: t.Description, State: t.State, Priority: strconv.Itoa(t.Priority), Urgency: strconv.Itoa(t.Urgency),
		Impact: strconv.Itoa(t.Impact), AssignmentGroup: t.AssignmentGroup, WorkNotes: t.WorkNotes,
		Custom: map[string]string{}}
	if v.Fields, err = h.Store.ProcessFields(c.Request().Context(), t.ProcessID); err != nil {
		return err
	}
	for name, val := range t.Custom.V {
		v.Custom[name] = models.CustomText(val)
	}
	return page.Render(c, http.StatusOK, ticket.Form(page.Props(c, "Edit "+t.Number, "tickets"), v))
}

// newTicketProcess sets the kind of ticket a new one is (raw: a process id,
// or "" for the first process), the processes to choose from and its
// fields.
func (h *Handlers) newTicketProcess(c echo.Context, v *ticket.FormView, raw string) error {
	ctx := c.Request().Context()
	procs, err := h.Designer.Processes(ctx)
	if err != nil {
		return err
	}
	v.Processes = procs
	id, perr := strconv.ParseInt(raw, 10, 64)
	if raw != "" && perr != nil {
		return &models.ValidationError{Fields: map[string]string{"process_id": "The kind of ticket is not a process id; choose one of the processes listed."}}
	}
	for _, p := range procs {
		if id == 0 && (v.ProcessID == 0 || p.ID < v.ProcessID) || p.ID == id {
			v.ProcessID = p.ID
		}
	}
	if v.ProcessID == 0 || (id != 0 && v.ProcessID != id) {
		return &models.ValidationError{Fields: map[string]string{"process_id": "There is no such kind of ticket; choose one of the processes listed."}}
	}
	v.Fields, err = h.Store.ProcessFields(ctx, v.ProcessID)
	return err
}

// ticketForm reads the form into the view (for a re-render) and the input;
// the process's own fields are read as "custom.<name>" (a checkbox sends
// "false" then, when ticked, "true": the last value counts).
func ticketForm(c echo.Context, defs []models.ProcessField) (ticket.FormView, store.TicketInput, map[string]string) {
	v := ticket.FormView{ShortDescription: c.FormValue("short_description"), Description: c.FormValue("description"),
		State: c.FormValue("state"), Priority: c.FormValue("priority"), Urgency: c.FormValue("urgency"),
		Impact: c.FormValue("impact"), AssignmentGroup: c.FormValue("assignment_group"), WorkNotes: c.FormValue("work_notes")}
	v.Version, _ = strconv.Atoi(c.FormValue("version"))
	in := store.TicketInput{ShortDescription: v.ShortDescription, Description: v.Description, State: v.State,
		AssignmentGroup: v.AssignmentGroup, WorkNotes: v.WorkNotes}
	v.Fields, v.Custom, in.Custom = defs, map[string]string{}, map[string]string{}
	form, _ := c.FormParams()
	for _, d := range defs {
		vals := form[models.CustomPrefix+d.Name]
		val := ""
		if len(vals) > 0 {
			val = vals[len(vals)-1]
		}
		v.Custom[d.Name], in.Custom[d.Name] = val, val
	}
	bad := map[string]string{}
	num := func(field, raw string, lo, hi int) int {
		n, err := strconv.Atoi(raw)
		if err != nil || n < lo || n > hi {
			bad[field] = fmt.Sprintf("Choose a value from %d to %d.", lo, hi)
		}
		return n
	}
	in.Priority = num("priority", v.Priority, 1, 5)
	in.Urgency = num("urgency", v.Urgency, 1, 3)
	in.Impact = num("impact", v.Impact, 1, 3)
	return v, in, bad
}

// TicketCreate creates a ticket (which sends it to every active integration);
// a refused form re-renders with 422 and the reasons under the fields.
func (h *Handlers) TicketCreate(c echo.Context) error {
	var pv ticket.FormView
	if err := h.newTicketProcess(c, &pv, c.FormValue("process_id")); err != nil {
		return err
	}
	v, in, bad := ticketForm(c, pv.Fields)
	v.ProcessID, v.Processes, in.ProcessID = pv.ProcessID, pv.Processes, pv.ProcessID
	if len(bad) > 0 {
		v.Errors = bad
		return page.Render(c, http.StatusUnprocessableEntity, ticket.Form(page.Props(c, "New ticket", "tickets"), v))
	}
	t, err := h.Store.CreateTicket(c.Request().Context(), page.Actor(c), in)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v.Errors = ve.Fields
		return page.Render(c, http.StatusUnprocessableEntity, ticket.Form(page.Props(c, "New ticket", "tickets"), v))
	}
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, "Created "+t.Number+"."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, components.TicketURL(t.ID))
}

// TicketUpdate saves an edited ticket; an edit of an older version is refused
// with 409 (someone else saved meanwhile).
func (h *Handlers) TicketUpdate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	cur, err := h.Store.GetTicket(c.Request().Context(), id)
	if err != nil {
		return err
	}
	defs, err := h.Store.ProcessFields(c.Request().Context(), cur.ProcessID)
	if err != nil {
		return err
	}
	v, in, bad := ticketForm(c, defs)
	v.ID = id
	v.Number, in.ProcessID = cur.Number, cur.ProcessID
	if len(bad) > 0 {
		v.Errors = bad
		return page.Render(c, http.StatusUnprocessableEntity, ticket.Form(page.Props(c, "Edit "+cur.Number, "tickets"), v))
	}
	t, err := h.Store.UpdateTicket(c.Request().Context(), page.Actor(c), id, v.Version, in)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v.Errors = ve.Fields
		return page.Render(c, http.StatusUnprocessableEntity, ticket.Form(page.Props(c, "Edit "+cur.Number, "tickets"), v))
	}
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, "Saved "+t.Number+"."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, components.TicketURL(t.ID))
}
