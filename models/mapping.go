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
// outbound fields (docs/designer-messages.md, "Fields"): an empty ticket
// value takes the field's default, then goes through the outbound value map;
// a value with no row in the map is sent as it is. A required field still
// empty refuses the ticket change: the error names the ticket field, so the
// ticket form shows it next to that field.
func MapOutbound(t *Ticket, fields []Field) (map[string]any, error) {
	data := make(map[string]any, len(fields))
	v := &ValidationError{}
	for _, f := range fields {
		if !f.Sends() {
			continue
		}
		val, ok := ticketValue(t, f.TicketField)
		if !ok {
			continue
		}
		if val == "" {
			val = f.Default
		}
		if val == "" && f.Required {
			v.Add(f.TicketField, fmt.Sprintf("The remote system needs %s (payload property %s); fill it in.", f.TicketField, f.Property))
			continue
		}
		if mapped, ok := f.ValueMap.V[val]; ok {
			val = mapped
		}
		data[f.Property] = val
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return data, nil
}

// inboundMap is the field's payload value -> ticket value map: its inbound
// map, or, for a field stored before inbound maps existed (or created by code
// that sets only the outbound map), the inverse of its outbound map.
func (f *Field) inboundMap() map[string]string {
	if len(f.InboundMap.V) > 0 || len(f.ValueMap.V) == 0 {
		return f.InboundMap.V
	}
	inv := make(map[string]string, len(f.ValueMap.V))
	for t, p := range f.ValueMap.V {
		if prev, dup := inv[p]; !dup || t < prev { // ambiguous: the smallest, every time
			inv[p] = t
		}
	}
	return inv
}

// MapInbound applies a message's payload data onto a ticket through its
// inbound fields and inbound value maps (payload value -> ticket value). An
// absent property takes the field's default (a ticket value). It returns the
// process error in plain words when business rules refuse the data: a
// required field missing, a value with no mapping, a value of the wrong type.
func MapInbound(t *Ticket, fields []Field, data map[string]any) error {
	for _, f := range fields {
		if !f.Receives() {
			continue
		}
		raw, present := data[f.Property]
		if !present || raw == nil {
			switch {
			case f.Default != "":
				if err := setTicketValue(t, f.TicketField, f.Default); err != nil {
					return err
				}
			case f.Required:
				return fmt.Errorf("required field %q is missing", f.Property)
			}
			continue
		}
		v, err := inboundValue(f, raw)
		if err != nil {
			return err
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
