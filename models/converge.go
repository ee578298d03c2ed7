package models

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Concurrent edits converge (docs/domain.md, "Concurrent edits"): every
// ticket field carries a stamp, the sender's time of its last change. A
// message carries the stamps of its fields; the receiver merges field by
// field: the later stamp wins, and on an exact tie the bond owner's value
// wins. Both sides apply the same rule to the same two stamps, so after the
// messages settle they hold the same value. A change that loses, on either
// side, is a FieldConflict, recorded and shown (models/converge).

// StampResolution is the precision of stamps: PostgreSQL's timestamptz keeps
// microseconds, so a stamp survives a round trip through the database
// exactly.
const StampResolution = time.Microsecond

// FieldStamp is when a ticket field was last changed, by the clock of the
// instance where the change was made, and by whom (informational).
type FieldStamp struct {
	At time.Time `json:"at"`
	By string    `json:"by,omitempty"`
}

// IsZero reports whether the field has no stamp (never changed since
// stamps exist, or a sender that sends none).
func (s FieldStamp) IsZero() bool { return s.At.IsZero() }

// Same reports whether s and o are the same change's stamp.
func (s FieldStamp) Same(o FieldStamp) bool { return s.At.Equal(o.At) && s.By == o.By }

// FieldStamps are a ticket's stamps by ticket field (tickets.field_stamps).
type FieldStamps map[string]FieldStamp

// WireStamp is a field's stamp on the wire (the envelope's "stamps", by
// payload property). Was is the value, as the payload maps it, the change
// overwrote on the sender; it is present only for fields this message
// changed.
type WireStamp struct {
	At  time.Time `json:"at"`
	By  string    `json:"by,omitempty"`
	Was *string   `json:"was,omitempty"`
}

// NextStamp is the stamp of a local change made at now to a field stamped
// prev: now, but always after prev, so that a change made after seeing a
// value wins over it even when that value came from a clock running ahead.
func NextStamp(prev FieldStamp, now time.Time, by string) FieldStamp {
	at := now.UTC().Truncate(StampResolution)
	if !at.After(prev.At) {
		at = prev.At.Add(StampResolution)
	}
	return FieldStamp{At: at, By: by}
}

// MessageStamp is the envelope time_stamp of an outbound message made at
// now on a bond whose last message was stamped last (zero: none yet), carrying
// the field stamps wire: now, but always after last and never before a
// stamp it carries. The receiver does not apply a message older than the
// newest it applied on the bond (docs/inbound.md, "Order"), so a bond's
// stamps must only go up: a clock stepped back (NTP at a restart) or two
// server processes whose clocks disagree would otherwise have every later
// message accepted and not applied. The stamp is the change's (given under
// the bond's lock when the change is saved, kept with the Stage), so the
// bond's order (seq) and its stamps agree.
func MessageStamp(last, now time.Time, wire map[string]WireStamp) time.Time {
	at := now.UTC().Truncate(StampResolution)
	for _, ws := range wire {
		if f := ws.At.UTC().Truncate(StampResolution); f.After(at) {
			at = f
		}
	}
	if !last.IsZero() && !at.After(last) {
		at = last.UTC().Truncate(StampResolution).Add(StampResolution)
	}
	return at
}

// FieldDecision is what the receiver does with an incoming field.
type FieldDecision int

const (
	// TakeField: the incoming value wins; it and its stamp replace ours.
	TakeField FieldDecision = iota
	// KeepField: our value is newer (or wins the tie); the incoming one is dropped.
	KeepField
)

func (d FieldDecision) String() string {
	if d == KeepField {
		return "keep"
	}
	return "take"
}

// DecideField is the rule: the later stamp wins; on an exact tie between two
// different changes the bond owner's value wins (weOwn: we own the bond);
// the same stamp on both sides is the same change, taken.
func DecideField(local, incoming FieldStamp, weOwn bool) FieldDecision {
	switch {
	case incoming.At.After(local.At):
		return TakeField
	case incoming.At.Before(local.At):
		return KeepField
	case incoming.Same(local):
		return TakeField
	case weOwn:
		return KeepField
	}
	return TakeField
}

// FieldConflict is a change that lost: two changes of one field made without
// seeing each other, one kept on both sides, the other overwritten.
type FieldConflict struct {
	Field      string // the ticket field
	Kept, Lost string // ticket values
	KeptStamp  FieldStamp
	LostStamp  FieldStamp
	KeptLocal  bool // the kept value is ours (the incoming change lost); false: ours was overwritten
}

// Merged is what MergeInbound made of an incoming message.
type Merged struct {
	Ticket    Ticket // the ticket with the winning values and their stamps
	Changed   bool   // a value or a stamp changed
	Conflicts []FieldConflict
}

// MergeInbound applies an incoming message's data onto ticket t (stamped
// t.FieldStamps) field by field through the message's fields. wire is the
// envelope's stamps: nil for a sender that sends none (no "stamps" in the
// envelope; an empty object is a sender that stamps, with no field stamped yet), whose data is applied
// as it is (MapInbound, the behaviour before stamps) and leaves the stamps as
// they are. With stamps, a field missing from wire has the zero stamp (older
// than every change). A process's own field (custom.<name>, defined in defs)
// is merged like a built-in one, stamped under its ticket field name. The
// error is the process error in plain words (MapInbound's).
func MergeInbound(t *Ticket, fields []Field, data map[string]any, wire map[string]WireStamp,
	weOwn bool, defs []ProcessField) (Merged, error) {
	m := Merged{Ticket: *t}
	stamps := make(FieldStamps, len(t.FieldStamps.V))
	for k, v := range t.FieldStamps.V {
		stamps[k] = v
	}
	m.Ticket.FieldStamps = JSON[FieldStamps]{V: stamps}
	custom := make(map[string]any, len(t.Custom.V)) // written on a copy: t stays as it is
	for k, v := range t.Custom.V {
		custom[k] = v
	}
	m.Ticket.Custom = JSON[map[string]any]{V: custom}
	if wire == nil {
		if err := MapInbound(&m.Ticket, fields, data, defs); err != nil {
			return Merged{}, err
		}
		m.Changed = !SameValues(&m.Ticket, t)
		return m, nil
	}
	mapsCustom := false
	for _, f := range fields {
		if !f.Receives() || f.TicketField == NumberField {
			// An outbound-only field is not applied here, as MapInbound
			// skips it; the remote's number is the bond's (RemoteNumber).
			continue
		}
		raw, present := data[f.Property]
		if !present || raw == nil {
			if f.Required {
				return Merged{}, fmt.Errorf("required field %q is missing", f.Property)
			}
			continue
		}
		in, err := inboundValue(f, raw)
		if err != nil {
			return Merged{}, err
		}
		// Checks type and range, and gives the value as the ticket holds
		// it (a custom number 7.0 is "7"), so that equal values compare equal.
		in, err = normalTicketValue(f.TicketField, in, defs)
		if err != nil {
			return Merged{}, err
		}
		mapsCustom = mapsCustom || strings.HasPrefix(f.TicketField, CustomPrefix)
		ours, _ := ticketValue(&m.Ticket, f.TicketField)
		local, ws := stamps[f.TicketField], wire[f.Property]
		incoming := FieldStamp{At: ws.At.UTC().Truncate(StampResolution), By: ws.By}
		var was *string
		if ws.Was != nil {
			w, err := inboundValue(f, *ws.Was)
			if err != nil {
				w = *ws.Was // an unmapped old value: compared as it is
			}
			was = &w
		}
		switch DecideField(local, incoming, weOwn) {
		case TakeField:
			// Ours is overwritten unseen when it was a change (stamped) and
			// the sender's change did not start from it: its old value is
			// not ours, or it sent no old value (the change came in a
			// message we did not apply, so nothing says it saw ours).
			if in != ours && !local.IsZero() && !incoming.Same(local) && (was == nil || *was != ours) {
				m.Conflicts = append(m.Conflicts, FieldConflict{Field: f.TicketField, Kept: in, Lost: ours,
					KeptStamp: incoming, LostStamp: local})
			}
			if in != ours || !incoming.Same(local) {
				m.Changed = true
			}
			_ = setFieldValue(&m.Ticket, f.TicketField, in, defs) // checked above
			if incoming.IsZero() {
				delete(stamps, f.TicketField) // both unstamped: no zero entries stored
			} else {
				stamps[f.TicketField] = incoming
			}
		case KeepField:
			// The sender's change of this field loses.
			if in != ours && was != nil {
				m.Conflicts = append(m.Conflicts, FieldConflict{Field: f.TicketField, Kept: ours, Lost: in,
					KeptStamp: local, LostStamp: incoming, KeptLocal: true})
			}
		}
	}
	if mapsCustom {
		// The merged custom values as a whole: a required field of the
		// process still empty refuses the message, as MapInbound does.
		vals, err := ValidateCustom(defs, m.Ticket.Custom.V, nil)
		if err != nil {
			return Merged{}, customProblem(err)
		}
		m.Ticket.Custom.V = vals
	}
	return m, nil
}

// OutboundStamps are the wire stamps of a message built from ticket t
// through fields: the stamp of every field t.FieldStamps stamps, and for
// each field whose value differs in before (the ticket before this change;
// nil on a create) the value it overwrote, mapped as the payload maps it.
func OutboundStamps(t, before *Ticket, fields []Field) map[string]WireStamp {
	out := make(map[string]WireStamp, len(fields))
	for _, f := range fields {
		if !f.Sends() {
			continue // not in the data either
		}
		s, ok := t.FieldStamps.V[f.TicketField]
		if !ok || s.IsZero() {
			continue
		}
		ws := WireStamp{At: s.At, By: s.By}
		if before != nil {
			now, _ := ticketValue(t, f.TicketField)
			old, _ := ticketValue(before, f.TicketField)
			if old != now {
				if mapped, ok := f.ValueMap.V[old]; ok {
					old = mapped
				}
				ws.Was = &old
			}
		}
		out[f.Property] = ws
	}
	return out
}

// StampChanges stamps the fields of after whose values differ from before
// (a local change at now by by), a process's own fields (custom.<name>)
// included, on a copy of after's stamps, which it then holds; before nil (a
// create) stamps every built-in field and every custom field with a value.
func StampChanges(before, after *Ticket, now time.Time, by string) {
	out := make(FieldStamps, len(TicketFields))
	for k, v := range after.FieldStamps.V {
		out[k] = v
	}
	for _, f := range ticketFieldsOf(before, after) {
		nv, _ := ticketValue(after, f)
		if before != nil {
			if ov, _ := ticketValue(before, f); ov == nv {
				continue
			}
		}
		out[f] = NextStamp(out[f], now, by)
	}
	after.FieldStamps = JSON[FieldStamps]{V: out}
}

// SameValues reports whether a and b hold the same value in every ticket
// field, a process's own fields included.
func SameValues(a, b *Ticket) bool {
	for _, f := range ticketFieldsOf(a, b) {
		x, _ := ticketValue(a, f)
		y, _ := ticketValue(b, f)
		if x != y {
			return false
		}
	}
	return true
}

// TicketValue reads a ticket field by its column name, as text (the form a
// FieldConflict keeps).
func TicketValue(t *Ticket, field string) string {
	v, _ := ticketValue(t, field)
	return v
}

// inboundValue is a payload value as the ticket field takes it: text, then
// through the field's value map (payload value -> ticket value).
func inboundValue(f Field, raw any) (string, error) {
	v, ok := PayloadText(raw)
	if !ok {
		return "", fmt.Errorf("field %q must be text or a number", f.Property)
	}
	if m := f.inboundMap(); len(m) > 0 {
		ticketV, found := m[v]
		if !found {
			return "", fmt.Errorf("value %q of field %q has no mapping", v, f.Property)
		}
		return ticketV, nil
	}
	return v, nil
}

// PayloadText is a decoded JSON payload value as text: a string as it is, a
// number in its shortest form, true or false; ok is false for anything else.
func PayloadText(raw any) (text string, ok bool) {
	switch x := raw.(type) {
	case string:
		return x, true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}
