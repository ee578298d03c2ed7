package models

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// The Designer's rules for messages, fields and response actions
// (docs/designer-messages.md): pure checks that return a *ValidationError
// whose keys are the form's field names, so each problem shows next to its
// field. The database CHECKs of migrations 00001 and 00200 hold the same
// rules again.

var (
	messageNameRe = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	propertyRe    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	pathRe        = regexp.MustCompile(`^[A-Za-z0-9._~/-]{0,200}$`)
)

// MessageScope is what a message's checks need to know about the rest of
// its integration: its other messages (names are unique; receipt and
// response messages are chosen from them) and the ticket fields of its
// process (the built-in TicketFields and the process's own).
type MessageScope struct {
	Messages     []Message
	TicketFields []string
}

func (sc MessageScope) message(id int64) *Message {
	for i := range sc.Messages {
		if sc.Messages[i].ID == id {
			return &sc.Messages[i]
		}
	}
	return nil
}

// ValidateMessage checks m against the Designer's rules. It also clears what
// a choice makes meaningless (the trigger fields of any other trigger), so
// what is stored is what the page showed.
func ValidateMessage(m *Message, sc MessageScope) error {
	v := &ValidationError{}
	m.Name, m.Path = strings.TrimSpace(m.Name), strings.TrimSpace(m.Path)
	switch {
	case m.Name == "":
		v.Add("name", "Give the message a name.")
	case !messageNameRe.MatchString(m.Name):
		v.Add("name", "A name starts with a letter and has only letters, digits and _ (at most 64), e.g. UpdateIncident.")
	}
	for _, o := range sc.Messages {
		if o.ID != m.ID && strings.EqualFold(o.Name, m.Name) {
			v.Add("name", fmt.Sprintf("This integration has a message named %s already.", o.Name))
		}
	}
	if !slices.Contains(MessageTypes, m.Type) {
		v.Add("type", "Choose a type: Create, Update, Receipt, Response or Heartbeat.")
	}
	if m.Direction != Inbound && m.Direction != Outbound && m.Direction != Bidirectional {
		v.Add("direction", "Choose a direction: Inbound, Outbound or Bidirectional.")
	}
	answer := m.Type == MessageReceipt || m.Type == MessageResponse
	switch {
	case m.Async && answer:
		v.Add("async", "A receipt or response is an answer itself; it cannot wait for a receipt.")
	case m.Async && m.ReceiptMessageID == nil:
		v.Add("receipt_message", "An asynchronous message needs the receipt message the remote answers with.")
	case !m.Async:
		m.ReceiptMessageID = nil
	}
	if m.ReceiptMessageID != nil {
		if r := sc.message(*m.ReceiptMessageID); r == nil || r.Type != MessageReceipt {
			v.Add("receipt_message", "Choose a message of type Receipt of this integration.")
		}
	}
	if m.ResponseMessageID != nil {
		switch r := sc.message(*m.ResponseMessageID); {
		case answer:
			v.Add("response_message", "A receipt or response has no response message of its own.")
		case r == nil || r.Type != MessageResponse:
			v.Add("response_message", "Choose a message of type Response of this integration.")
		}
	}
	switch {
	case !pathRe.MatchString(m.Path):
		v.Add("path", "A path has only letters, digits and . _ ~ / - (at most 200), e.g. incident/update.")
	case strings.Contains(m.Path, ".."), strings.HasPrefix(m.Path, "//"):
		v.Add("path", "A path stays below the connection's endpoint: no .. and no leading //.")
	}
	validateTrigger(m, sc, v)
	if !slices.Contains(Ownerships, m.BondOwnership) {
		v.Add("bond_ownership", "Choose the ownership rule: ignore, must own or must not own.")
	}
	seen := map[BondState]bool{}
	for _, s := range m.AllowedBondStates.V {
		switch {
		case !s.Valid():
			v.Add("allowed_bond_states", fmt.Sprintf("%q is not a bond state.", s))
		case seen[s]:
			v.Add("allowed_bond_states", fmt.Sprintf("%s is listed twice.", s))
		}
		seen[s] = true
	}
	if m.SetBondState != nil && !m.SetBondState.Valid() {
		v.Add("set_bond_state", fmt.Sprintf("%q is not a bond state.", *m.SetBondState))
	}
	return v.Err()
}

func validateTrigger(m *Message, sc MessageScope, v *ValidationError) {
	if !slices.Contains(Triggers, m.Trigger) {
		v.Add("trigger", "Choose when the message goes out: never, on create, on update, on resolve, or when chosen fields change.")
		return
	}
	if m.Trigger != TriggerFields {
		m.TriggerFields.V = []string{}
	}
	if m.Trigger == TriggerNone {
		return
	}
	switch {
	case !m.Sends():
		v.Add("trigger", "An inbound message is never sent, so it has no trigger; choose never.")
	case m.Type == MessageReceipt || m.Type == MessageResponse || m.Type == MessageHeartbeat:
		v.Add("trigger", fmt.Sprintf("A %s is not sent because a ticket changed; choose never.", m.Type))
	}
	if m.Trigger != TriggerFields {
		return
	}
	if len(m.TriggerFields.V) == 0 {
		v.Add("trigger_fields", "Choose at least one ticket field whose change sends the message.")
	}
	for i, f := range m.TriggerFields.V {
		switch {
		case !slices.Contains(sc.TicketFields, f):
			v.Add("trigger_fields", fmt.Sprintf("%q is not a ticket field of this process.", f))
		case f == NumberField:
			v.Add("trigger_fields", "A ticket's number never changes; choose a field that does.")
		case slices.Contains(m.TriggerFields.V[:i], f):
			v.Add("trigger_fields", fmt.Sprintf("%s is chosen twice.", f))
		}
	}
}

// ValidateField checks f against the Designer's rules; others are the other
// fields of its message (a ticket field and a property are mapped once per
// message) and ticketFields the ticket fields of the process.
func ValidateField(f *Field, others []Field, ticketFields []string) error {
	v := &ValidationError{}
	f.Property = strings.TrimSpace(f.Property)
	if !slices.Contains(ticketFields, f.TicketField) {
		v.Add("ticket_field", "Choose a ticket field of this process.")
	}
	switch {
	case f.Property == "":
		v.Add("property", "Name the payload property, e.g. short_description.")
	case !propertyRe.MatchString(f.Property):
		v.Add("property", "A property starts with a letter or _ and has only letters, digits and _ (at most 64).")
	}
	for _, o := range others {
		if o.ID == f.ID {
			continue
		}
		if o.TicketField == f.TicketField {
			v.Add("ticket_field", fmt.Sprintf("This message maps %s already (to %s).", o.TicketField, o.Property))
		}
		if o.Property == f.Property {
			v.Add("property", fmt.Sprintf("This message has a property %s already (from %s).", o.Property, o.TicketField))
		}
	}
	if f.Direction != Inbound && f.Direction != Outbound && f.Direction != Bidirectional {
		v.Add("direction", "Choose a direction: Inbound, Outbound or Bidirectional.")
	}
	if p := TextProblem(f.Default); p != "" {
		v.Add("default", p)
	} else if len(f.Default) > 1000 {
		v.Add("default", "A default may be at most 1,000 characters long.")
	} else if f.Default != "" {
		if err := checkTicketValue(f.TicketField, f.Default); err != nil {
			v.Add("default", "The default is a ticket value: "+err.Error()+".")
		}
	}
	if f.ValueMap.V == nil {
		f.ValueMap.V = map[string]string{}
	}
	if f.InboundMap.V == nil {
		f.InboundMap.V = map[string]string{}
	}
	for _, t := range mapTicketValues(f) {
		if err := checkTicketValue(f.TicketField, t); err != nil {
			v.Add("value_map", "Each row's ticket value is a value of the ticket field: "+err.Error()+".")
			break
		}
	}
	if p := CheckValueMaps(f.Direction, f.ValueMap.V, f.InboundMap.V); p != "" {
		v.Add("value_map", p)
	}
	return v.Err()
}

// mapTicketValues lists the ticket values of both maps, sorted.
func mapTicketValues(f *Field) []string {
	var ts []string
	for t := range f.ValueMap.V {
		ts = append(ts, t)
	}
	for _, t := range f.InboundMap.V {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	return slices.Compact(ts)
}

// checkTicketValue reports whether v can be stored in the built-in ticket
// field (a number in range, a ticket state); the process's own fields are
// checked where they are defined.
func checkTicketValue(field, v string) error {
	if !slices.Contains(TicketFields, field) {
		return nil
	}
	var scratch Ticket
	return setTicketValue(&scratch, field, v)
}

// ValidateResponseAction checks a against the Designer's rules; messages
// are the messages of its integration (an action may apply to one of them).
func ValidateResponseAction(a *ResponseAction, messages []Message) error {
	v := &ValidationError{}
	switch {
	case a.StatusCode < 100 || a.StatusCode > 599:
		v.Add("status_code", "An HTTP status is a number from 100 to 599.")
	case a.StatusCode >= 200 && a.StatusCode <= 299:
		v.Add("status_code", "Answers from 200 to 299 are deliveries; response actions are for the other answers.")
	case http.StatusText(a.StatusCode) == "" && a.StatusCode%100 == 0:
		// 100, 300, ... : a class, not a status; any other unlisted code is a remote's own and allowed.
		v.Add("status_code", fmt.Sprintf("%d is not an HTTP status.", a.StatusCode))
	}
	if a.MessageID != nil && !slices.ContainsFunc(messages, func(m Message) bool { return m.ID == *a.MessageID }) {
		v.Add("message", "Choose a message of this integration, or every message.")
	}
	if s := a.SetTransactionState; s != nil {
		switch {
		case *s != Complete && *s != Error:
			v.Add("set_transaction_state", "The transaction can be set Complete (the answer counts as delivered) or Error.")
		case a.Retry:
			v.Add("set_transaction_state", "A retried answer leaves the transaction waiting for its next attempt; untick Retry to set its state.")
		}
	}
	if s := a.SetProcessState; s != nil && *s != ProcessAccepted && *s != ProcessRejected {
		v.Add("set_process_state", "The process state can be set Accepted or Rejected.")
	}
	if s := a.SetIntegrationStatus; s != nil && *s != StatusUp && *s != StatusDown && *s != StatusAwaiting {
		v.Add("set_integration_status", "The integration status can be set Up, Down or Awaiting.")
	}
	if s := a.SetIntegrationState; s != nil && *s != IntegrationPaused {
		v.Add("set_integration_state", "The engine can only pause an integration; an admin switches it Off.")
	}
	a.BondNote, a.Description = strings.TrimSpace(a.BondNote), strings.TrimSpace(a.Description)
	if p := TextProblem(a.BondNote); p != "" {
		v.Add("bond_note", p)
	} else if len(a.BondNote) > 500 {
		v.Add("bond_note", "A note may be at most 500 characters long.")
	}
	if p := TextProblem(a.Description); p != "" {
		v.Add("description", p)
	} else if len(a.Description) > 500 {
		v.Add("description", "A description may be at most 500 characters long.")
	}
	return v.Err()
}
