package models

import (
	"database/sql/driver"
	"fmt"
)

// TransportState is a transaction's transport state. The values are the
// sequence numbers of docs/domain.md and are stored as they are.
type TransportState int16

// Transport states, labels and sequence numbers exactly as in docs/domain.md.
const (
	Sending         TransportState = 0
	Received        TransportState = 1
	AwaitingReceipt TransportState = 2
	SendingReceipt  TransportState = 3
	ReceivedReceipt TransportState = 4
	Complete        TransportState = 5
	Queued          TransportState = 6
	TimedOut        TransportState = 7
	Error           TransportState = 8
	Ignored         TransportState = 9
)

// TransportStates lists every transport state in sequence order.
var TransportStates = []TransportState{Sending, Received, AwaitingReceipt, SendingReceipt, ReceivedReceipt,
	Complete, Queued, TimedOut, Error, Ignored}

var transportLabels = [...]string{"Sending", "Received", "Awaiting Receipt", "Sending Receipt", "Received Receipt",
	"Complete", "Queued", "Timed Out", "Error", "Ignored"}

func (s TransportState) String() string {
	if s < 0 || int(s) >= len(transportLabels) {
		return fmt.Sprintf("TransportState(%d)", int16(s))
	}
	return transportLabels[s]
}

// Valid reports whether s is one of the ten states.
func (s TransportState) Valid() bool { return s >= Sending && s <= Ignored }

// Finished reports whether the transaction no longer holds its bond's queue.
func (s TransportState) Finished() bool { return s == Complete || s == Ignored }

// Broken reports whether the transaction stopped and needs an operator (Repair's targets).
func (s TransportState) Broken() bool { return s == Error || s == TimedOut }

// ParseTransportState accepts a label ("Awaiting Receipt") or a sequence number ("2").
func ParseTransportState(v string) (TransportState, error) {
	for _, s := range TransportStates {
		if v == s.String() || v == fmt.Sprint(int16(s)) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%q is not a transaction state", v)
}

// ProcessState is a transaction's business-logic state (docs/domain.md).
type ProcessState int16

// Process states.
const (
	ProcessPending  ProcessState = 0
	ProcessAccepted ProcessState = 1
	ProcessRejected ProcessState = 2
)

// ProcessStates lists every process state in sequence order.
var ProcessStates = []ProcessState{ProcessPending, ProcessAccepted, ProcessRejected}

func (s ProcessState) String() string {
	switch s {
	case ProcessPending:
		return "Pending"
	case ProcessAccepted:
		return "Accepted"
	case ProcessRejected:
		return "Rejected"
	}
	return fmt.Sprintf("ProcessState(%d)", int16(s))
}

// ParseProcessState accepts a label or a sequence number.
func ParseProcessState(v string) (ProcessState, error) {
	for _, s := range ProcessStates {
		if v == s.String() || v == fmt.Sprint(int16(s)) {
			return s, nil
		}
	}
	return 0, fmt.Errorf("%q is not a process state", v)
}

// HTTPRequestState is the state of one wire request.
type HTTPRequestState int16

// HTTP request states (docs/domain.md, "Records").
const (
	RequestPending   HTTPRequestState = 0 // waiting out a retry delay
	RequestReady     HTTPRequestState = 1
	RequestOK        HTTPRequestState = 2
	RequestError     HTTPRequestState = 3
	RequestCancelled HTTPRequestState = 4
)

// HTTPRequestStates lists every HTTP request state.
var HTTPRequestStates = []HTTPRequestState{RequestPending, RequestReady, RequestOK, RequestError, RequestCancelled}

func (s HTTPRequestState) String() string {
	switch s {
	case RequestPending:
		return "Pending"
	case RequestReady:
		return "Ready"
	case RequestOK:
		return "OK"
	case RequestError:
		return "Error"
	case RequestCancelled:
		return "Cancelled"
	}
	return fmt.Sprintf("HTTPRequestState(%d)", int16(s))
}

// Direction is the way a transaction or request travels.
type Direction string

// Directions. Messages may also be Bidirectional.
const (
	Inbound       Direction = "Inbound"
	Outbound      Direction = "Outbound"
	Bidirectional Direction = "Bidirectional"
)

// IntegrationState is whether an integration sends.
type IntegrationState string

// Integration states.
const (
	IntegrationActive IntegrationState = "Active"
	IntegrationPaused IntegrationState = "Paused"
	IntegrationOff    IntegrationState = "Off"
)

// IntegrationStates lists every integration state.
var IntegrationStates = []IntegrationState{IntegrationActive, IntegrationPaused, IntegrationOff}

func (s IntegrationState) String() string { return string(s) }

// IntegrationStatus is how the remote system last answered.
type IntegrationStatus string

// Integration statuses.
const (
	StatusUp       IntegrationStatus = "Up"
	StatusDown     IntegrationStatus = "Down"
	StatusAwaiting IntegrationStatus = "Awaiting"
)

// BondState is the state of the link between two tickets.
type BondState string

// Bond states.
const (
	BondPending         BondState = "Pending"
	BondOpen            BondState = "Open"
	BondSuspended       BondState = "Suspended"
	BondVendorSuspended BondState = "Vendor suspended"
	BondClosed          BondState = "Closed"
)

// BondStates lists every bond state.
var BondStates = []BondState{BondPending, BondOpen, BondSuspended, BondVendorSuspended, BondClosed}

// Valid reports whether s is a bond state.
func (s BondState) Valid() bool {
	for _, b := range BondStates {
		if s == b {
			return true
		}
	}
	return false
}

// BondStatus says what holds a bond: OK when every transaction is finished,
// otherwise the state of the transaction at the head of its queue.
type BondStatus string

// Bond statuses.
const (
	BondOK       BondStatus = "OK"
	BondQueued   BondStatus = "Queued"
	BondSending  BondStatus = "Sending"
	BondAwaiting BondStatus = "Awaiting receipt"
	BondError    BondStatus = "Error"
	BondTimedOut BondStatus = "Timed out"
)

// BlockingStates are the head states that hold a bond's queue until an
// operator acts (Replay, Ignore, Repair): a bond whose head is in one of them
// and that has transactions Queued behind it is stuck, and says so on the
// operations view, the bonds list and in the metrics.
var BlockingStates = []TransportState{TimedOut, Error}

// BondStatusOf derives a bond's status from the state of its oldest unfinished
// outbound transaction (nil when there is none).
func BondStatusOf(head *TransportState) BondStatus {
	if head == nil {
		return BondOK
	}
	switch *head {
	case Sending, SendingReceipt:
		return BondSending
	case AwaitingReceipt, ReceivedReceipt:
		return BondAwaiting
	case Queued:
		return BondQueued
	case TimedOut:
		return BondTimedOut
	case Error:
		return BondError
	}
	return BondOK
}

// Value stores the state as its sequence number.
func (s TransportState) Value() (driver.Value, error) { return int64(s), nil }

// Scan reads a sequence number.
func (s *TransportState) Scan(v any) error {
	n, err := scanInt(v)
	*s = TransportState(n)
	return err
}

// Value stores the state as its sequence number.
func (s ProcessState) Value() (driver.Value, error) { return int64(s), nil }

// Scan reads a sequence number.
func (s *ProcessState) Scan(v any) error {
	n, err := scanInt(v)
	*s = ProcessState(n)
	return err
}

// Value stores the state as its number.
func (s HTTPRequestState) Value() (driver.Value, error) { return int64(s), nil }

// Scan reads a number.
func (s *HTTPRequestState) Scan(v any) error {
	n, err := scanInt(v)
	*s = HTTPRequestState(n)
	return err
}

func scanInt(v any) (int16, error) {
	switch n := v.(type) {
	case int64:
		return int16(n), nil
	case int32:
		return int16(n), nil
	case int16:
		return n, nil
	}
	return 0, fmt.Errorf("scan state: unexpected %T", v)
}
