package models

import "time"

// Envelope is the one JSON shape of every message between two systems (docs/domain.md, "The wire protocol").
type Envelope struct {
	Message EnvelopeHeader `json:"message"`
	Data    map[string]any `json:"data"`
	// Stamps are the data's field stamps by property (docs/domain.md,
	// "Concurrent edits converge"); left out by senders that keep none. A
	// pointer so that a sender that stamps but has no field stamped yet
	// still sends "stamps": {}.
	Stamps *map[string]WireStamp `json:"stamps,omitempty"`
	Status *EnvelopeStatus       `json:"status,omitempty"`
}

// EnvelopeHeader identifies a message. SourceID is the sender's Message ID;
// TargetID (in receipts) the Message ID being answered; references are the
// tickets' numbers on each side.
type EnvelopeHeader struct {
	Name            string    `json:"name"`
	TimeStamp       time.Time `json:"time_stamp"`
	SourceReference string    `json:"source_reference"`
	TargetReference string    `json:"target_reference,omitempty"`
	SourceID        string    `json:"source_id"`
	TargetID        string    `json:"target_id,omitempty"`
}

// EnvelopeStatus carries the process outcome in a receipt.
type EnvelopeStatus struct {
	ProcessState string `json:"process_state"` // Pending, Accepted or Rejected
	Error        string `json:"error,omitempty"`
}
