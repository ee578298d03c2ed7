package inbound

import (
	"errors"
	"time"

	"unifi/models"
	"unifi/models/inbound/envelope"
)

// The exact refusal texts of docs/domain.md ("The wire protocol"). A refused
// inbound request stores nothing but its HTTP Request record.
const (
	TextNoMessageName      = "Unable to identify message name from request"
	TextUnknownMessageName = "Message name not recognised"
	TextNoTargetID         = "Message ID not found; it is expected in a receipt"
	TextNoInitiating       = "Initiating transaction not found for inbound receipt"
	TextProcessedAlready   = "Error processing request: Transaction Error: Request rejected; the transaction has been processed already"
	TextDuplicate          = "Message has already been processed"
	TextNotValidForBond    = "Message is not valid for this bond"
)

// RefusalKind says why an inbound request was refused. The HTTP layer maps
// each kind to a status in one place (handlers/errors.go); the domain only
// says what went wrong.
type RefusalKind string

// Refusal kinds.
const (
	RefusalMalformed          RefusalKind = "malformed"           // not JSON, not an object
	RefusalMediaType          RefusalKind = "media type"          // not application/json
	RefusalTooLarge           RefusalKind = "too large"           // over INBOUND_MAX_BYTES
	RefusalUnauthenticated    RefusalKind = "unauthenticated"     // no or wrong credentials
	RefusalThrottled          RefusalKind = "throttled"           // too many failed logins (RetryAfter)
	RefusalForbidden          RefusalKind = "forbidden"           // not this integration's inbound account
	RefusalUnavailable        RefusalKind = "unavailable"         // no active connection, or integration Off
	RefusalUnknownIntegration RefusalKind = "unknown integration" // no integration by that name
	RefusalNoName             RefusalKind = "no name"
	RefusalUnknownName        RefusalKind = "unknown name"
	RefusalNoTargetID         RefusalKind = "no target id"
	RefusalNoInitiating       RefusalKind = "no initiating transaction"
	RefusalProcessedAlready   RefusalKind = "processed already"
	RefusalInFlight           RefusalKind = "in flight" // the initiating transaction is still being sent
	RefusalDuplicate          RefusalKind = "duplicate"
	RefusalNotValidForBond    RefusalKind = "not valid for bond"
	RefusalNoBond             RefusalKind = "no bond"
	RefusalCreateRejected     RefusalKind = "create rejected" // a Create business rules refuse: no ticket to hold it
	RefusalScript             RefusalKind = "script"          // a message script failed or rejected the request (inbound_script.go)
)

// Refusal is an inbound request refused as a whole: nothing of it is
// stored but its HTTP Request record.
type Refusal struct {
	Kind   RefusalKind
	Reason string // for the sender; the exact text of docs/domain.md where there is one
	Detail string // optional plain-words detail, kept apart so Reason stays exact
	// Original is what we answered when the message was first received (a
	// duplicate), so a sender that lost our answer still learns our reference.
	Original *models.EnvelopeHeader
	// RetryAfter is when a throttled sender may try again.
	RetryAfter time.Duration
}

func (e *Refusal) Error() string {
	if e.Detail != "" {
		return e.Reason + " (" + e.Detail + ")"
	}
	return e.Reason
}

func refuse(kind RefusalKind, reason string) *Refusal {
	return &Refusal{Kind: kind, Reason: reason}
}

func refuseDetail(kind RefusalKind, reason, detail string) *Refusal {
	return &Refusal{Kind: kind, Reason: reason, Detail: detail}
}

// parseEnvelope reads a request body (envelope.Parse); a body that is no
// envelope at all is refused: malformed, or with the texts of a missing or
// impossible message name.
func parseEnvelope(raw []byte) (*envelope.Envelope, *models.ValidationError, error) {
	env, problems, err := envelope.Parse(raw)
	var fault *envelope.Fault
	if !errors.As(err, &fault) {
		return env, problems, err
	}
	switch fault.Kind {
	case envelope.NoName:
		return nil, nil, refuse(RefusalNoName, TextNoMessageName)
	case envelope.BadName:
		return nil, nil, refuse(RefusalUnknownName, TextUnknownMessageName)
	}
	return nil, nil, refuseDetail(RefusalMalformed, "The request body is not a valid message envelope", fault.Detail)
}
