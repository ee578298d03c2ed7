package designer

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/designer"
	"unifi/web/layout"
	designerpage "unifi/web/pages/designer"
)

// The Designer's message pages (docs/designer-messages.md): an
// integration's messages and response actions, a message with its fields,
// a field with its value map.

// MessageList is an integration's messages and response actions.
func (h *Handlers) MessageList(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	set, err := h.Designer.Messages(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, designerpage.Messages(page.Props(c, set.Integration.Name+" messages", "integrations"),
		designerpage.MessagesView{Set: set, CanEdit: canConfigure(c)}))
}

// messageForm reads the message form.
func messageForm(c echo.Context) (designer.MessageForm, error) {
	params, err := c.FormParams()
	if err != nil {
		return designer.MessageForm{}, err
	}
	return designer.MessageForm{Name: c.FormValue("name"), Type: c.FormValue("type"), Direction: c.FormValue("direction"),
		Async: c.FormValue("async") == "true", ReceiptMessageID: c.FormValue("receipt_message"),
		ResponseMessageID: c.FormValue("response_message"), Path: c.FormValue("path"), Trigger: c.FormValue("trigger"),
		TriggerFields: params["trigger_fields"], BondOwnership: c.FormValue("bond_ownership"),
		AllowedBondStates: params["allowed_bond_states"], SetBondState: c.FormValue("set_bond_state")}, nil
}

// renderMessageForm renders a message's form with its fields, with 422
// when it holds refusals.
func (h *Handlers) renderMessageForm(c echo.Context, integrationID int64, v designerpage.MessageFormView) error {
	set, err := h.Designer.Messages(c.Request().Context(), integrationID)
	if err != nil {
		return err
	}
	v.Integration, v.Others, v.Fields, v.CanEdit = set.Integration, set.Messages, set.Fields[v.ID], canConfigure(c)
	// The trigger watches fields that change: a ticket's number never does.
	v.TicketFields = slices.DeleteFunc(slices.Clone(set.TicketFields), func(f string) bool { return f == models.NumberField })
	status, title := http.StatusOK, "New message"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = "Message " + v.Form.Name
	}
	return page.Render(c, status, designerpage.MessageForm(page.Props(c, title, "integrations"), v))
}

// MessageNew is the empty form of a new message.
func (h *Handlers) MessageNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	return h.renderMessageForm(c, id, designerpage.MessageFormView{Form: designer.NewMessageForm()})
}

// MessageEdit is a message's form with its fields (read-only for a manager).
func (h *Handlers) MessageEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	m, err := h.Designer.GetMessage(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderMessageForm(c, m.IntegrationID, designerpage.MessageFormView{ID: m.ID, Version: m.Version,
		Form: designer.MessageFormOf(m)})
}

// MessageCreate creates a message of an integration.
func (h *Handlers) MessageCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f, err := messageForm(c)
	if err != nil {
		return err
	}
	m, err := h.Designer.CreateMessage(c.Request().Context(), page.Actor(c), id, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderMessageForm(c, id, designerpage.MessageFormView{Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Created message %s. Add its fields next.", m.Name),
		fmt.Sprintf("/messages/%d/edit", m.ID))
}

// MessageUpdate saves a message; an edit of an older version is refused with 409.
func (h *Handlers) MessageUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f, err := messageForm(c)
	if err != nil {
		return err
	}
	m, err := h.Designer.UpdateMessage(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		cur, gerr := h.Designer.GetMessage(c.Request().Context(), id)
		if gerr != nil {
			return gerr
		}
		return h.renderMessageForm(c, cur.IntegrationID, designerpage.MessageFormView{ID: id, Version: version, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved message %s.", m.Name), fmt.Sprintf("/messages/%d/edit", m.ID))
}

// maxFormRows bounds the value-map rows a form may post (a hostile
// row_count reads no further).
const maxFormRows = 250

// fieldForm reads the field form; the value map comes as numbered rows.
func fieldForm(c echo.Context) designer.FieldForm {
	f := designer.FieldForm{TicketField: c.FormValue("ticket_field"), Property: c.FormValue("property"),
		Direction: c.FormValue("direction"), Required: c.FormValue("required") == "true", Default: c.FormValue("default"),
		Position: c.FormValue("position")}
	n, err := strconv.Atoi(c.FormValue("row_count"))
	if err != nil || n < 0 {
		n = 0
	}
	n = min(n, maxFormRows)
	for i := range n {
		r := models.ValueRow{Ticket: c.FormValue(fmt.Sprintf("row_ticket_%d", i)), Payload: c.FormValue(fmt.Sprintf("row_payload_%d", i)),
			Direction: models.Direction(c.FormValue(fmt.Sprintf("row_direction_%d", i)))}
		if r.Ticket == "" && r.Payload == "" {
			continue
		}
		f.Rows = append(f.Rows, r)
	}
	return f
}

// renderFieldForm renders a field's form, with 422 when it holds refusals.
func (h *Handlers) renderFieldForm(c echo.Context, v designerpage.FieldFormView) error {
	v.CanEdit = canConfigure(c)
	var err error
	if v.TicketFields, err = h.Designer.TicketFields(c.Request().Context(), v.Message.IntegrationID); err != nil {
		return err
	}
	status, title := http.StatusOK, "New field"
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	if v.ID != 0 {
		title = "Field " + v.Form.Property
	}
	return page.Render(c, status, designerpage.FieldForm(page.Props(c, title, "integrations"), v))
}

// FieldNew is the empty form of a new field of a message.
func (h *Handlers) FieldNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	m, err := h.Designer.GetMessage(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderFieldForm(c, designerpage.FieldFormView{Message: *m, Form: designer.NewFieldForm()})
}

// FieldEdit is a field's form with its value map.
func (h *Handlers) FieldEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f, err := h.Designer.GetField(c.Request().Context(), id)
	if err != nil {
		return err
	}
	m, err := h.Designer.GetMessage(c.Request().Context(), f.MessageID)
	if err != nil {
		return err
	}
	return h.renderFieldForm(c, designerpage.FieldFormView{Message: *m, ID: f.ID, Version: f.Version, Form: designer.FieldFormOf(f)})
}

// FieldCreate adds a field to a message. "Add rows" re-renders the
// form as typed, with more blank rows, and stores nothing.
func (h *Handlers) FieldCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	m, err := h.Designer.GetMessage(c.Request().Context(), id)
	if err != nil {
		return err
	}
	ff := fieldForm(c)
	if c.FormValue("add_rows") == "true" {
		return h.renderFieldForm(c, designerpage.FieldFormView{Message: *m, Form: ff})
	}
	_, err = h.Designer.CreateField(c.Request().Context(), page.Actor(c), id, ff)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderFieldForm(c, designerpage.FieldFormView{Message: *m, Form: ff, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Added field %s to message %s.", ff.Property, m.Name),
		fmt.Sprintf("/messages/%d/edit", m.ID))
}

// FieldUpdate saves a field; an edit of an older version is refused with 409.
func (h *Handlers) FieldUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	cur, err := h.Designer.GetField(c.Request().Context(), id)
	if err != nil {
		return err
	}
	m, err := h.Designer.GetMessage(c.Request().Context(), cur.MessageID)
	if err != nil {
		return err
	}
	ff := fieldForm(c)
	if c.FormValue("add_rows") == "true" {
		return h.renderFieldForm(c, designerpage.FieldFormView{Message: *m, ID: id, Version: version, Form: ff})
	}
	_, err = h.Designer.UpdateField(c.Request().Context(), page.Actor(c), id, version, ff)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderFieldForm(c, designerpage.FieldFormView{Message: *m, ID: id, Version: version, Form: ff, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved field %s of message %s.", ff.Property, m.Name),
		fmt.Sprintf("/messages/%d/edit", m.ID))
}

// FieldDelete removes a field from its message.
func (h *Handlers) FieldDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	f, err := h.Designer.DeleteField(c.Request().Context(), page.Actor(c), id, version)
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Deleted field %s.", f.Property), fmt.Sprintf("/messages/%d/edit", f.MessageID))
}

// responseActionForm reads the response action form.
func responseActionForm(c echo.Context) designer.ResponseActionForm {
	return designer.ResponseActionForm{MessageID: c.FormValue("message"), StatusCode: c.FormValue("status_code"),
		Retry: c.FormValue("retry") == "true", SetTransactionState: c.FormValue("set_transaction_state"),
		SetProcessState: c.FormValue("set_process_state"), SetIntegrationStatus: c.FormValue("set_integration_status"),
		SetIntegrationState: c.FormValue("set_integration_state"), BondNote: c.FormValue("bond_note"),
		Description: c.FormValue("description")}
}

// renderResponseActionForm renders a response action's form, with 422 when it holds refusals.
func (h *Handlers) renderResponseActionForm(c echo.Context, integrationID int64, v designerpage.ResponseActionFormView) error {
	set, err := h.Designer.Messages(c.Request().Context(), integrationID)
	if err != nil {
		return err
	}
	v.Integration, v.Messages, v.CanEdit = set.Integration, set.Messages, canConfigure(c)
	status := http.StatusOK
	if len(v.Errors) > 0 {
		status = http.StatusUnprocessableEntity
	}
	return page.Render(c, status, designerpage.ResponseActionForm(page.Props(c, "Response action", "integrations"), v))
}

// ResponseActionNew is the empty form of a new response action.
func (h *Handlers) ResponseActionNew(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	return h.renderResponseActionForm(c, id, designerpage.ResponseActionFormView{})
}

// ResponseActionEdit is a response action's form.
func (h *Handlers) ResponseActionEdit(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	a, err := h.Designer.GetResponseAction(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return h.renderResponseActionForm(c, *a.IntegrationID, designerpage.ResponseActionFormView{ID: a.ID, Version: a.Version,
		Form: designer.ResponseActionFormOf(a)})
}

// ResponseActionCreate adds a response action to an integration.
func (h *Handlers) ResponseActionCreate(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	f := responseActionForm(c)
	_, err = h.Designer.CreateResponseAction(c.Request().Context(), page.Actor(c), id, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderResponseActionForm(c, id, designerpage.ResponseActionFormView{Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Added the response action for %s.", f.StatusCode),
		fmt.Sprintf("/integrations/%d/messages", id))
}

// ResponseActionUpdate saves a response action.
func (h *Handlers) ResponseActionUpdate(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	cur, err := h.Designer.GetResponseAction(c.Request().Context(), id)
	if err != nil {
		return err
	}
	f := responseActionForm(c)
	_, err = h.Designer.UpdateResponseAction(c.Request().Context(), page.Actor(c), id, version, f)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		return h.renderResponseActionForm(c, *cur.IntegrationID, designerpage.ResponseActionFormView{ID: id, Version: version, Form: f, Errors: ve.Fields})
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Saved the response action for %s.", f.StatusCode),
		fmt.Sprintf("/integrations/%d/messages", *cur.IntegrationID))
}

// ResponseActionDelete deletes an integration's response action, provided
// it is still at the version its form was opened at.
func (h *Handlers) ResponseActionDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	a, err := h.Designer.DeleteResponseAction(c.Request().Context(), page.Actor(c), id, version)
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Deleted the response action for %d.", a.StatusCode),
		fmt.Sprintf("/integrations/%d/messages", *a.IntegrationID))
}

// MessageDelete deletes a message no transaction used.
func (h *Handlers) MessageDelete(c echo.Context) error {
	id, version, err := pathIDVersion(c)
	if err != nil {
		return err
	}
	m, err := h.Designer.DeleteMessage(c.Request().Context(), page.Actor(c), id, version)
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, fmt.Sprintf("Deleted message %s.", m.Name), fmt.Sprintf("/integrations/%d/messages", m.IntegrationID))
}
