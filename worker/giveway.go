package worker

import (
	"context"
	"sync"
	"time"
)

// giveWayFor bounds how long a worker waits for the ticket edits of its
// process before its next claim or recording: the engine gives way to
// people, but a long edit cannot stall it.
const giveWayFor = 10 * time.Millisecond

// edits counts the ticket changes of this process in flight (queue.Taker's
// Editing). A worker with slack (its last claim came back short) gives way
// to them before it claims and before it records: under the latency bench's
// half load the edit's round trips waited behind the engine's backends for a
// core (4-10 runnable on 2 CPUs; docs/engine.md, "Fifth round"). Six
// alternating runs: p99 26.7 against 32.6 ms and the edit's median 4.25
// against 4.64 ms (medians of the runs), p50 and delivery unchanged. A
// worker with a backlog (full claims) never waits.
type edits struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n falls back to 0; nil while none runs
}

// Editing implements queue.Taker: a ticket change of this process runs
// until done is called.
func (p *Pool) Editing() (done func()) {
	e := &p.edits
	e.mu.Lock()
	if e.n == 0 {
		e.idle = make(chan struct{})
	}
	e.n++
	e.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			e.mu.Lock()
			if e.n--; e.n == 0 {
				close(e.idle)
				e.idle = nil
			}
			e.mu.Unlock()
		})
	}
}

// giveWay waits while ticket changes of this process run, up to
// giveWayFor, and counts it when it waited.
func (p *Pool) giveWay(ctx context.Context) {
	p.edits.mu.Lock()
	idle := p.edits.idle
	p.edits.mu.Unlock()
	if idle == nil {
		return
	}
	p.counts.gaveWay.Add(1)
	t := time.NewTimer(giveWayFor)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	case <-p.stopping:
	case <-ctx.Done():
	}
}
