package handlers

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/web/pages/ticket"
)

// TicketList is the tickets list; /tickets/process-errors shows only the
// tickets whose bonds hold a process error.
func (h *Handlers) TicketList(c echo.Context) error {
	errorsOnly := strings.HasSuffix(c.Path(), "/process-errors")
	f := models.TicketFilter{Text: c.QueryParam("q"), WithProcessErrors: errorsOnly, Limit: 50}
	f.BeforeID, _ = strconv.ParseInt(c.QueryParam("before"), 10, 64)
	rows, err := h.Store.QueryTickets(c.Request().Context(), f)
	if err != nil {
		return err
	}
	v := ticket.ListView{Text: f.Text, ErrorsOnly: errorsOnly, Rows: rows,
		CanWork: models.RoleMay(CurrentUser(c).Role, models.ActionWorkTickets) == nil}
	if len(rows) == f.Limit {
		q := c.QueryParams()
		q.Set("before", fmt.Sprint(rows[len(rows)-1].ID))
		v.NextURL = c.Request().URL.Path + "?" + q.Encode()
	}
	title := "Tickets"
	if errorsOnly {
		title = "Tickets with process errors"
	}
	return render(c, http.StatusOK, ticket.List(h.props(c, title, "tickets"), v))
}

// TicketShow is the ticket page with its "Integrations" related list.
func (h *Handlers) TicketShow(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Store.LoadTicketDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	v := ticket.PageView{D: d, CanWork: models.RoleMay(CurrentUser(c).Role, models.ActionWorkTickets) == nil}
	return render(c, http.StatusOK, ticket.Page(h.props(c, d.Ticket.Number, "tickets"), v))
}

// TicketNew is the empty create form.
func (h *Handlers) TicketNew(c echo.Context) error {
	v := ticket.FormView{State: "New", Priority: "4", Urgency: "3", Impact: "3"}
	return render(c, http.StatusOK, ticket.Form(h.props(c, "New ticket", "tickets"), v))
}

// TicketEdit is the edit form of a ticket.
func (h *Handlers) TicketEdit(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Store.LoadTicketDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	t := d.Ticket
	v := ticket.FormView{ID: t.ID, Number: t.Number, Version: t.Version, ShortDescription: t.ShortDescription,
		Description: t.Description, State: t.State, Priority: strconv.Itoa(t.Priority), Urgency: strconv.Itoa(t.Urgency),
		Impact: strconv.Itoa(t.Impact), AssignmentGroup: t.AssignmentGroup, WorkNotes: t.WorkNotes}
	return render(c, http.StatusOK, ticket.Form(h.props(c, "Edit "+t.Number, "tickets"), v))
}
