package models

import "time"

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
