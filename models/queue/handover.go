package queue

import (
	"time"

	"unifi/models"
)

// A Taker is the engine running in this process. A ticket change made here
// writes the outbound transactions it can send at once (Sending) leased to
// the Taker and hands them over after its commit, so that they are sent
// without a NOTIFY, a claim or a read: the claim was most of "commit to request",
// about 1 ms of the 1.2 ms on an idle machine (docs/engine.md, "Handed over
// at commit").
// A process without an engine has no Taker; its changes wake every engine
// with a NOTIFY as before.
type Taker interface {
	// Lease is the owner and length (the integration's sync timeout is
	// added, as to a claim's) of the leases handed transactions are written
	// with.
	Lease() (owner string, seconds float64)
	// Take hands over the committed transactions, leased to the owner.
	// Should the engine have stopped meanwhile, it gives them back.
	Take(handed []Handed)
	// Editing says a ticket change of this process runs until done is
	// called (after Take): an engine with slack gives way to it.
	Editing() (done func())
}

// Handed is a transaction handed over at commit with what a claim reads of
// it (the engine's workSelect): the row, its Stage as stored and its bond's
// references. The statement that wrote them returns them, so the engine
// sends it without reading it back: under the latency bench's load that
// read-back alone took 1.6 ms of the 1.9 ms from commit to request, a round
// trip waiting for a core.
type Handed struct {
	Transaction       models.Transaction
	StageData         []byte // JSON, as stored
	StageStamps       []byte // JSON, as stored; nil: none
	StageTimeStamp    *time.Time
	InternalReference string
	ExternalReference string
}
