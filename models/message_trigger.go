package models

import "slices"

// TicketChange is what happened to a ticket, for deciding which outbound
// messages it sends: the event (TriggerCreate, TriggerUpdate or
// TriggerResolve: an update that moves the ticket to Resolved) and, for
// updates, the ticket fields whose value changed.
type TicketChange struct {
	Event   Trigger
	Changed []string
}

// Fires reports whether a message with trigger (and, for TriggerFields, the
// watched fields) is sent for change (docs/designer-messages.md, "Triggers"):
// create, update and resolve fire on their own event; TriggerFields fires on
// any update (resolve included) that changes at least one watched field, and
// never on create, which is not a change of a field.
func Fires(trigger Trigger, watched []string, change TicketChange) bool {
	switch trigger {
	case TriggerCreate, TriggerUpdate, TriggerResolve:
		return trigger == change.Event
	case TriggerFields:
		if change.Event != TriggerUpdate && change.Event != TriggerResolve {
			return false
		}
		for _, f := range change.Changed {
			if slices.Contains(watched, f) {
				return true
			}
		}
	}
	return false
}

// ChangedFields lists the ticket fields whose value differs between before
// and after: the built-in ones in TicketFields' order, then a process's own
// (custom.<name>) by name.
func ChangedFields(before, after *Ticket) []string {
	var out []string
	for _, f := range ticketFieldsOf(before, after) {
		b, _ := ticketValue(before, f)
		a, _ := ticketValue(after, f)
		if a != b {
			out = append(out, f)
		}
	}
	return out
}
