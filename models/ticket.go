package models

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Ticket is a local Incident.
type Ticket struct {
	ID               int64
	ProcessID        int64
	Number           string
	ShortDescription string
	Description      string
	State            string
	Priority         int
	Urgency          int
	Impact           int
	AssignmentGroup  string
	WorkNotes        string
	Custom           JSON[map[string]any] // values of the process's own fields, by name (ProcessField)
	Version          int
	FieldStamps      JSON[FieldStamps] // when each field last changed (docs/domain.md, "Concurrent edits converge")
	CreatedByID      *int64
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// TicketStates are the states an Incident moves through.
var TicketStates = []string{"New", "In Progress", "On Hold", "Resolved", "Closed", "Cancelled"}

// TicketFields are the ticket fields a local change stamps and an inbound
// message writes; with NumberField they are the built-in fields a message
// Field may map (MappableFields).
var TicketFields = []string{"short_description", "description", "state", "priority", "urgency", "impact",
	"assignment_group", "work_notes"}

// NumberField is the ticket's number as a message Field maps it. It is ours
// and never changes: outbound it is sent like any field (a Response message
// tells the sender our number); inbound it is the remote ticket's number,
// which becomes the bond's external reference (RemoteNumber), never our
// ticket's number.
const NumberField = "number"

// MappableFields are the built-in ticket fields a message Field may map.
var MappableFields = append(append(make([]string, 0, len(TicketFields)+1), TicketFields...), NumberField)

// Bond links one local ticket and one remote ticket on one Integration.
type Bond struct {
	ID                int64
	IntegrationID     int64
	TicketID          int64
	InternalReference string
	ExternalReference string
	State             BondState
	Owner             bool
	History           string
	ProcessError      string
	NextSeq           int64
	LastInboundAt     *time.Time
	LastOutboundAt    *time.Time // the newest time stamp given to a message we send on it (models.MessageStamp)
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// TicketLimits checks a ticket against its columns' limits (the CHECKs of
// migration 00001); the error is a process error in plain words. A value
// from another system is checked before it is written, so that one value
// too long refuses its message and not the statement around it.
func TicketLimits(t *Ticket) error {
	n := utf8.RuneCountInString
	switch {
	case n(strings.TrimSpace(t.ShortDescription)) == 0:
		return errors.New("the short description is empty")
	case n(t.ShortDescription) > 160:
		return fmt.Errorf("the short description has %d characters; at most 160 fit", n(t.ShortDescription))
	case n(t.Description) > 32000:
		return fmt.Errorf("the description has %d characters; at most 32000 fit", n(t.Description))
	case n(t.WorkNotes) > 32000:
		return fmt.Errorf("the work notes have %d characters; at most 32000 fit", n(t.WorkNotes))
	case n(t.AssignmentGroup) > 100:
		return fmt.Errorf("the assignment group has %d characters; at most 100 fit", n(t.AssignmentGroup))
	}
	return nil
}
