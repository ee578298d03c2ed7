package models

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ticketValue reads a ticket field by its column name, as text; a process's
// own field is "custom.<name>".
func ticketValue(t *Ticket, field string) (string, bool) {
	if name, ok := strings.CutPrefix(field, CustomPrefix); ok {
		return CustomText(t.Custom.V[name]), true
	}
	switch field {
	case NumberField:
		return t.Number, true
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

// MapResponse is the data of a synchronous answer to a message whose
// response message has fields: the ticket as the message left it, through
// the response message's outbound fields (MapOutbound). A required field
// left empty does not refuse the answer (the message was applied already):
// its property is sent empty.
func MapResponse(t *Ticket, fields []Field) map[string]any {
	lenient := make([]Field, len(fields))
	for i, f := range fields {
		f.Required = false
		lenient[i] = f
	}
	data, _ := MapOutbound(t, lenient) // nothing is required: no error
	return data
}

// RemoteNumber is the remote ticket's number an answer's data gives through
// a response message's inbound field mapping NumberField, through its
// inbound value map; "" when no field maps it or the property is absent.
func RemoteNumber(fields []Field, data map[string]any) (string, error) {
	for _, f := range fields {
		if f.TicketField != NumberField || !f.Receives() {
			continue
		}
		raw, present := data[f.Property]
		if !present || raw == nil {
			return f.Default, nil
		}
		v, err := inboundValue(f, raw)
		return strings.TrimSpace(v), err
	}
	return "", nil
}

// InboundValues is the map an inbound message's values go through
// (inboundMap); a package checks a field's value maps with it.
func (f *Field) InboundValues() map[string]string { return f.inboundMap() }

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
// absent property takes the field's default (a ticket value). defs are the own
// fields of the ticket's process, which "custom.<name>" ticket fields map to.
// It returns the
// process error in plain words when business rules refuse the data: a
// required field missing, a value with no mapping, a value of the wrong type.
func MapInbound(t *Ticket, fields []Field, data map[string]any, defs []ProcessField) error {
	custom := map[string]string{}
	for _, f := range fields {
		if !f.Receives() || f.TicketField == NumberField {
			continue // the remote's number is the bond's, not the ticket's (RemoteNumber)
		}
		raw, present := data[f.Property]
		var v string
		switch {
		case present && raw != nil:
			var err error
			if v, err = inboundValue(f, raw); err != nil {
				return err
			}
		case f.Default != "":
			v = f.Default
		case f.Required:
			return fmt.Errorf("required field %q is missing", f.Property)
		default:
			continue
		}
		if name, ok := strings.CutPrefix(f.TicketField, CustomPrefix); ok {
			custom[name] = v
			continue
		}
		if err := setTicketValue(t, f.TicketField, v); err != nil {
			return err
		}
	}
	if len(custom) == 0 {
		return nil
	}
	vals, err := ValidateCustom(defs, t.Custom.V, custom)
	if err != nil {
		return customProblem(err)
	}
	t.Custom.V = vals
	return nil
}

// StageScriptError is the Stage key under which a failed Source to Stage
// script's error is kept: the engine turns it into the transaction's Error
// without sending (docs/scripting.md, "Errors").
const StageScriptError = "_script_error"

// normalTicketValue checks text v for ticket field field (a built-in one, or a
// process's own "custom.<name>" defined in defs) and returns it as the
// ticket holds it: a custom value parsed and written back (CustomText), so
// that "7.0" and "7" compare equal. The error is in plain words.
func normalTicketValue(field, v string, defs []ProcessField) (string, error) {
	name, ok := strings.CutPrefix(field, CustomPrefix)
	if !ok {
		var probe Ticket
		return v, setTicketValue(&probe, field, v)
	}
	d := processFieldNamed(defs, name)
	if d == nil {
		return "", fmt.Errorf("%q is not a field of this process", name)
	}
	val, err := d.ParseValue(v)
	if err != nil {
		return "", errors.New(strings.TrimSuffix(err.Error(), "."))
	}
	return CustomText(val), nil
}

// setFieldValue writes ticket field field from text, a process's own field
// into t.Custom (whose map it then changes in place) parsed by its
// definition in defs.
func setFieldValue(t *Ticket, field, v string, defs []ProcessField) error {
	name, ok := strings.CutPrefix(field, CustomPrefix)
	if !ok {
		return setTicketValue(t, field, v)
	}
	d := processFieldNamed(defs, name)
	if d == nil {
		return fmt.Errorf("%q is not a field of this process", name)
	}
	val, err := d.ParseValue(v)
	if err != nil {
		return err
	}
	if t.Custom.V == nil {
		t.Custom.V = map[string]any{}
	}
	if val == nil {
		delete(t.Custom.V, name)
	} else {
		t.Custom.V[name] = val
	}
	return nil
}

func processFieldNamed(defs []ProcessField, name string) *ProcessField {
	for i := range defs {
		if defs[i].Name == name {
			return &defs[i]
		}
	}
	return nil
}

// ticketFieldsOf lists the ticket fields of a and b (either may be nil): the
// built-in TicketFields, then "custom.<name>" for every custom value either
// holds, by name.
func ticketFieldsOf(a, b *Ticket) []string {
	names := map[string]bool{}
	for _, t := range []*Ticket{a, b} {
		if t != nil {
			for n := range t.Custom.V {
				names[n] = true
			}
		}
	}
	if len(names) == 0 {
		return TicketFields
	}
	out := append(make([]string, 0, len(TicketFields)+len(names)), TicketFields...)
	custom := make([]string, 0, len(names))
	for n := range names {
		custom = append(custom, CustomPrefix+n)
	}
	sort.Strings(custom)
	return append(out, custom...)
}

// customProblem turns the per-field problems of custom values into one
// process error, in a stable order.
func customProblem(err error) error {
	v, ok := err.(*ValidationError)
	if !ok {
		return err
	}
	return errors.New(v.join(func(_, msg string) string { return strings.TrimSuffix(msg, ".") }))
}
