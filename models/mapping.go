package models

import (
	"fmt"
	"strconv"
)

// ticketValue reads a ticket field by its column name, as text.
func ticketValue(t *Ticket, field string) (string, bool) {
	switch field {
	case "short_description":
		return t.ShortDescription, true
	case "description":
		return t.Description, true
	case "state":
		return t.State, true
	case "priority":
		return strconv.Itoa(t.Priority), true
	case "urgency":
		return strconv.Itoa(t.Urgency), true
	case "impact":
		return strconv.Itoa(t.Impact), true
	case "assignment_group":
		return t.AssignmentGroup, true
	case "work_notes":
		return t.WorkNotes, true
	}
	return "", false
}

// setTicketValue writes a ticket field from text, checking its type and range.
func setTicketValue(t *Ticket, field, v string) error {
	num := func(lo, hi int) (int, error) {
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%s must be a whole number from %d to %d, not %q", field, lo, hi, v)
		}
		return n, nil
	}
	var err error
	switch field {
	case "short_description":
		t.ShortDescription = v
	case "description":
		t.Description = v
	case "state":
		for _, s := range TicketStates {
			if s == v {
				t.State = v
				return nil
			}
		}
		return fmt.Errorf("state %q is not a ticket state", v)
	case "priority":
		t.Priority, err = num(1, 5)
	case "urgency":
		t.Urgency, err = num(1, 3)
	case "impact":
		t.Impact, err = num(1, 3)
	case "assignment_group":
		t.AssignmentGroup = v
	case "work_notes":
		t.WorkNotes = v
	default:
		return fmt.Errorf("%q is not a ticket field", field)
	}
	return err
}

// MapOutbound builds a message's payload data from a ticket through its
// fields and value maps. A value with no mapping is sent as it is.
func MapOutbound(t *Ticket, fields []Field) map[string]any {
	data := make(map[string]any, len(fields))
	for _, f := range fields {
		v, ok := ticketValue(t, f.TicketField)
		if !ok {
			continue
		}
		if mapped, ok := f.ValueMap.V[v]; ok {
			v = mapped
		}
		data[f.Property] = v
	}
	return data
}

// MapInbound applies a message's payload data onto a ticket through its fields
// and value maps (payload value -> ticket value). It returns the process error
// in plain words when business rules refuse the data: a required field
// missing, a value with no mapping, a value of the wrong type.
func MapInbound(t *Ticket, fields []Field, data map[string]any) error {
	for _, f := range fields {
		raw, present := data[f.Property]
		if !present || raw == nil {
			if f.Required {
				return fmt.Errorf("required field %q is missing", f.Property)
			}
			continue
		}
		var v string
		switch x := raw.(type) {
		case string:
			v = x
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case bool:
			v = strconv.FormatBool(x)
		default:
			return fmt.Errorf("field %q must be text or a number", f.Property)
		}
		if len(f.ValueMap.V) > 0 {
			found := false
			for ticketV, payloadV := range f.ValueMap.V {
				if payloadV == v {
					v, found = ticketV, true
					break
				}
			}
			if !found {
				return fmt.Errorf("value %q of field %q has no mapping", v, f.Property)
			}
		}
		if err := setTicketValue(t, f.TicketField, v); err != nil {
			return err
		}
	}
	return nil
}

// StageScriptError is the Stage key under which a failed Source to Stage
// script's error is kept: the engine turns it into the transaction's Error
// without sending (docs/scripting.md, "Errors").
const StageScriptError = "_script_error"
