package worker

import (
	"log/slog"
	"sync"
	"time"

	"unifi/worker/enginedb"
)

// surplus is work a recording released and leased to this process beyond
// what its worker chains (four fifths of a batch): the claiming workers
// send it in what their chains leave of a batch, taking it before their
// claim in every other round and after it in the others (runWorker). Before
// it, the release left that rest unleased for any engine's claim: a fifth of
// every transaction of a long queue paid a claim (a walk of the due work and
// an update of the row) on top of its release; leased to the process it
// pays neither (docs/engine.md, "Thirteenth round").
//
// It holds about what the workers' batches hold (surplusRoom, read by each
// recording before its release leases: recordings at the same time may each
// fill the same room), so that an engine that has every bond of a drain in
// hand keeps them all, and the claims find nothing due. An entry
// waits at most half the engine's lease: an older one is given back to the
// database rather than sent, so no send can outlive the lease and meet
// another engine's claim of the same transaction.
type surplus struct {
	mu   sync.Mutex
	work []surplusWork
}

type surplusWork struct {
	w  *enginedb.Work
	at time.Time // leased to this process
}

// chainShare is how much of a batch a worker chains; the rest of what a
// recording releases goes to the surplus.
func chainShare(batch int) int { return batch - max(batch/5, 1) }

// surplusRoom is how many more released transactions the surplus takes.
func (p *Pool) surplusRoom() int {
	p.surplus.mu.Lock()
	defer p.surplus.mu.Unlock()
	return max(p.opts.Workers*p.opts.Batch-len(p.surplus.work), 0)
}

// keepChain keeps a worker's share of what its recording leased to it and
// puts the rest in the surplus, waking a worker to send it.
func (p *Pool) keepChain(chained []*enginedb.Work) []*enginedb.Work {
	share := chainShare(p.opts.Batch)
	if len(chained) <= share {
		return chained
	}
	now := time.Now()
	p.surplus.mu.Lock()
	for _, w := range chained[share:] {
		p.surplus.work = append(p.surplus.work, surplusWork{w: w, at: now})
	}
	p.surplus.mu.Unlock()
	p.wakeOne()
	return chained[:share]
}

// takeSurplus takes up to n surplus transactions to send, oldest first.
// Those leased more than half the lease ago are given back instead.
func (p *Pool) takeSurplus(log *slog.Logger, n int) []*enginedb.Work {
	if n <= 0 {
		return nil
	}
	var taken []*enginedb.Work
	var stale []int64
	oldest := time.Now().Add(-p.opts.Lease / 2)
	p.surplus.mu.Lock()
	i := 0
	for ; i < len(p.surplus.work) && len(taken) < n; i++ {
		s := p.surplus.work[i]
		if s.at.Before(oldest) {
			stale = append(stale, s.w.Transaction.ID)
			continue
		}
		taken = append(taken, s.w)
	}
	p.surplus.work = p.surplus.work[i:]
	left := len(p.surplus.work)
	p.surplus.mu.Unlock()
	if left > 0 {
		p.wakeOne()
	}
	p.giveBackIDs(log, stale)
	return taken
}

// giveBackSurplus gives back every surplus lease (a stopping engine's).
func (p *Pool) giveBackSurplus() {
	p.surplus.mu.Lock()
	ids := make([]int64, len(p.surplus.work))
	for i, s := range p.surplus.work {
		ids[i] = s.w.Transaction.ID
	}
	p.surplus.work = nil
	p.surplus.mu.Unlock()
	p.giveBackIDs(p.log, ids)
}
