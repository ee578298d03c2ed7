package models

import "fmt"

// Event is something that happens to a transaction.
type Event string

// Transaction events. Outbound: Release, Retry, Delivered, DeliveredAsync,
// Fail, ReceiptArrived, ReceiptProcessed, ReceiptOverdue. Inbound: Processed,
// ProcessedWantsReceipt, ReceiptSent, Fail. Operator: Ignore, Replay.
const (
	EventRelease               Event = "release"                  // Queued: its turn has come
	EventRetry                 Event = "retry"                    // a send failed; another attempt waits
	EventDelivered             Event = "delivered"                // 2xx for a synchronous message
	EventDeliveredAsync        Event = "delivered async"          // 2xx for an asynchronous message
	EventFail                  Event = "fail"                     // retries exhausted or not retryable
	EventReceiptArrived        Event = "receipt arrived"          // the remote receipt came in
	EventReceiptProcessed      Event = "receipt processed"        // the receipt was applied
	EventReceiptOverdue        Event = "receipt overdue"          // Receipt due by has passed
	EventProcessed             Event = "processed"                // an inbound message was applied
	EventProcessedWantsReceipt Event = "processed, wants receipt" // applied; an async receipt must go back
	EventReceiptSent           Event = "receipt sent"             // our receipt was delivered
	EventIgnore                Event = "ignore"                   // operator: Ignore
	EventReplay                Event = "replay"                   // operator: Replay (the original)
)

// Events lists every event, for table tests and documentation.
var Events = []Event{EventRelease, EventRetry, EventDelivered, EventDeliveredAsync, EventFail, EventReceiptArrived,
	EventReceiptProcessed, EventReceiptOverdue, EventProcessed, EventProcessedWantsReceipt, EventReceiptSent,
	EventIgnore, EventReplay}

// transitions is the whole transaction state machine (docs/domain.md, "Transaction states").
var transitions = map[TransportState]map[Event]TransportState{
	Queued: {
		EventRelease: Sending,
		EventIgnore:  Ignored,
		EventReplay:  Ignored,
	},
	Sending: {
		EventRetry:          Sending,
		EventDelivered:      Complete,
		EventDeliveredAsync: AwaitingReceipt,
		EventFail:           Error,
		EventIgnore:         Ignored,
	},
	AwaitingReceipt: {
		EventReceiptArrived: ReceivedReceipt,
		EventReceiptOverdue: TimedOut,
		EventIgnore:         Ignored,
		EventReplay:         Ignored,
	},
	ReceivedReceipt: {
		EventReceiptProcessed: Complete,
		EventIgnore:           Ignored,
		EventReplay:           Ignored,
	},
	Received: {
		EventProcessed:             Complete,
		EventProcessedWantsReceipt: SendingReceipt,
		EventFail:                  Error,
		EventIgnore:                Ignored,
		EventReplay:                Ignored,
	},
	SendingReceipt: {
		EventRetry:       SendingReceipt,
		EventReceiptSent: Complete,
		EventFail:        Error,
		EventIgnore:      Ignored,
	},
	TimedOut: {
		EventReceiptArrived: ReceivedReceipt, // a late receipt still completes it (docs/inbound.md)
		EventIgnore:         Ignored,
		EventReplay:         Ignored,
	},
	Error: {
		EventIgnore: Ignored,
		EventReplay: Ignored,
	},
	Complete: {
		EventReplay: Ignored,
	},
	Ignored: {
		EventReplay: Ignored,
	},
}

// Next returns the state a transaction in state from moves to on event, or an
// error saying in plain words why the event cannot happen in that state.
func Next(from TransportState, event Event) (TransportState, error) {
	if to, ok := transitions[from][event]; ok {
		return to, nil
	}
	if !from.Valid() {
		return from, fmt.Errorf("%w: unknown transaction state %d", ErrInvalidTransition, int16(from))
	}
	return from, fmt.Errorf("%w: a transaction in state %s cannot %s", ErrInvalidTransition, from, event)
}
