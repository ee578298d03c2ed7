package designer

import (
	"strconv"
	"strings"

	"unifi/models"
)

// MessageForm is a message as typed into its form (docs/designer-messages.md).
type MessageForm struct {
	Name              string
	Type              string
	Direction         string
	Async             bool
	ReceiptMessageID  string // "" = none
	ResponseMessageID string // "" = none
	Path              string
	Trigger           string
	TriggerFields     []string
	BondOwnership     string
	AllowedBondStates []string
	SetBondState      string // "" = leave the bond's state
}

// MessageFormOf is the form of a stored message.
func MessageFormOf(m *models.Message) MessageForm {
	f := MessageForm{Name: m.Name, Type: string(m.Type), Direction: string(m.Direction), Async: m.Async,
		ReceiptMessageID: idText(m.ReceiptMessageID), ResponseMessageID: idText(m.ResponseMessageID), Path: m.Path,
		Trigger: string(m.Trigger), TriggerFields: m.TriggerFields.V, BondOwnership: string(m.BondOwnership)}
	for _, s := range m.AllowedBondStates.V {
		f.AllowedBondStates = append(f.AllowedBondStates, string(s))
	}
	if m.SetBondState != nil {
		f.SetBondState = string(*m.SetBondState)
	}
	return f
}

// NewMessageForm is the form of a new message.
func NewMessageForm() MessageForm {
	return MessageForm{Type: string(models.MessageUpdate), Direction: string(models.Bidirectional),
		Trigger: string(models.TriggerNone), BondOwnership: string(models.OwnershipIgnore)}
}

func idText(id *int64) string {
	if id == nil {
		return ""
	}
	return strconv.FormatInt(*id, 10)
}

// parseID reads an optional record id; ok is false for text that is not one.
func parseID(s string) (id *int64, ok bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, true
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return nil, false
	}
	return &n, true
}

// ParseMessage applies f to m (a new message or a copy of the stored one)
// and checks it with models.ValidateMessage against sc. It applies nothing
// the caller stores when it refuses: the caller stores m only on nil.
func ParseMessage(f MessageForm, m *models.Message, sc models.MessageScope) error {
	var ve models.ValidationError
	m.Name, m.Type, m.Direction, m.Async, m.Path = f.Name, models.MessageType(f.Type), models.Direction(f.Direction), f.Async, f.Path
	m.Trigger, m.BondOwnership = models.Trigger(f.Trigger), models.Ownership(f.BondOwnership)
	m.TriggerFields.V = append([]string{}, f.TriggerFields...)
	var ok bool
	if m.ReceiptMessageID, ok = parseID(f.ReceiptMessageID); !ok {
		ve.Add("receipt_message", "Choose a message of type Receipt of this integration.")
	}
	if m.ResponseMessageID, ok = parseID(f.ResponseMessageID); !ok {
		ve.Add("response_message", "Choose a message of type Response of this integration.")
	}
	m.AllowedBondStates.V = []models.BondState{}
	for _, s := range f.AllowedBondStates {
		m.AllowedBondStates.V = append(m.AllowedBondStates.V, models.BondState(s))
	}
	m.SetBondState = nil
	if f.SetBondState != "" {
		st := models.BondState(f.SetBondState)
		m.SetBondState = &st
	}
	if err := models.ValidateMessage(m, sc); err != nil {
		for k, v := range err.(*models.ValidationError).Fields {
			ve.Add(k, v)
		}
	}
	return ve.Err()
}

// FieldForm is a message field as typed into its form, with its value map
// as the rows of the two-column table.
type FieldForm struct {
	TicketField string
	Property    string
	Direction   string
	Required    bool
	Default     string
	Position    string
	Rows        []models.ValueRow
}

// FieldFormOf is the form of a stored field.
func FieldFormOf(f *models.Field) FieldForm {
	return FieldForm{TicketField: f.TicketField, Property: f.Property, Direction: string(f.Direction),
		Required: f.Required, Default: f.Default, Position: strconv.Itoa(f.Position),
		Rows: models.ValueRowsOf(f.ValueMap.V, f.InboundMap.V)}
}

// NewFieldForm is the form of a new field.
func NewFieldForm() FieldForm {
	return FieldForm{Direction: string(models.Bidirectional), Position: "0"}
}

// ParseField applies ff to f and checks it with models.ValidateField.
func ParseField(ff FieldForm, f *models.Field, others []models.Field, ticketFields []string) error {
	var ve models.ValidationError
	pos, err := strconv.Atoi(strings.TrimSpace(ff.Position))
	if err != nil || pos < 0 || pos > 1000 {
		ve.Add("position", "The position is a whole number from 0 to 1000 (fields are sent in this order).")
	}
	out, in, problem := models.ValueMapsFromRows(ff.Rows)
	if problem != "" {
		ve.Add("value_map", problem)
	}
	f.TicketField, f.Property, f.Direction = ff.TicketField, ff.Property, models.Direction(ff.Direction)
	f.Required, f.Default, f.Position = ff.Required, ff.Default, pos
	f.ValueMap.V, f.InboundMap.V = out, in
	if err := models.ValidateField(f, others, ticketFields); err != nil {
		for k, v := range err.(*models.ValidationError).Fields {
			ve.Add(k, v)
		}
	}
	return ve.Err()
}

// ResponseActionForm is a response action as typed into its form.
type ResponseActionForm struct {
	MessageID            string // "" = every message of the integration
	StatusCode           string
	Retry                bool
	SetTransactionState  string // "" or a transport state number
	SetProcessState      string // "" or a process state number
	SetIntegrationStatus string
	SetIntegrationState  string
	BondNote             string
	Description          string
}

// ResponseActionFormOf is the form of a stored response action.
func ResponseActionFormOf(a *models.ResponseAction) ResponseActionForm {
	f := ResponseActionForm{MessageID: idText(a.MessageID), StatusCode: strconv.Itoa(a.StatusCode), Retry: a.Retry,
		BondNote: a.BondNote, Description: a.Description}
	if a.SetTransactionState != nil {
		f.SetTransactionState = strconv.Itoa(int(*a.SetTransactionState))
	}
	if a.SetProcessState != nil {
		f.SetProcessState = strconv.Itoa(int(*a.SetProcessState))
	}
	if a.SetIntegrationStatus != nil {
		f.SetIntegrationStatus = string(*a.SetIntegrationStatus)
	}
	if a.SetIntegrationState != nil {
		f.SetIntegrationState = string(*a.SetIntegrationState)
	}
	return f
}

// ParseResponseAction applies f to a and checks it with
// models.ValidateResponseAction.
func ParseResponseAction(f ResponseActionForm, a *models.ResponseAction, messages []models.Message) error {
	var ve models.ValidationError
	code, err := strconv.Atoi(strings.TrimSpace(f.StatusCode))
	if err != nil {
		ve.Add("status_code", "An HTTP status is a number from 100 to 599.")
	}
	var ok bool
	if a.MessageID, ok = parseID(f.MessageID); !ok {
		ve.Add("message", "Choose a message of this integration, or every message.")
	}
	a.StatusCode, a.Retry, a.BondNote, a.Description = code, f.Retry, f.BondNote, f.Description
	a.SetTransactionState, a.SetProcessState, a.SetIntegrationStatus, a.SetIntegrationState = nil, nil, nil, nil
	if f.SetTransactionState != "" {
		n, err := strconv.ParseInt(f.SetTransactionState, 10, 16)
		st := models.TransportState(n)
		if err != nil {
			st = -1
		}
		a.SetTransactionState = &st
	}
	if f.SetProcessState != "" {
		n, err := strconv.ParseInt(f.SetProcessState, 10, 16)
		st := models.ProcessState(n)
		if err != nil {
			st = -1
		}
		a.SetProcessState = &st
	}
	if f.SetIntegrationStatus != "" {
		st := models.IntegrationStatus(f.SetIntegrationStatus)
		a.SetIntegrationStatus = &st
	}
	if f.SetIntegrationState != "" {
		st := models.IntegrationState(f.SetIntegrationState)
		a.SetIntegrationState = &st
	}
	if err := models.ValidateResponseAction(a, messages); err != nil {
		for k, v := range err.(*models.ValidationError).Fields {
			ve.Add(k, v)
		}
	}
	return ve.Err()
}
