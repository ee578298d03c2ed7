package worker

import "sync/atomic"

// Stats counts what this engine's workers did since it was made: the
// rounds they sent and how each transaction came to them, and their claims.
// A round is one batch sent and recorded together: its claim and recording
// statements are shared by its transactions, so transactions per round says
// how well a load fills them (3 a round beside the latency bench's half
// load, 200 at full delivery: docs/engine.md). /metrics exports them per
// process (unifi_engine_*_total).
type Stats struct {
	Rounds      int64 // batches sent and recorded
	Claimed     int64 // transactions sent that a claim found
	Chained     int64 // transactions sent that the recording of an earlier round leased to its worker or to the surplus
	Handed      int64 // transactions sent that a ticket change of this process handed over at commit
	Claims      int64 // claims made
	EmptyClaims int64 // claims that found nothing due
	GaveWay     int64 // times a worker with slack waited for a ticket change of this process (giveWay)
}

// Sent is every transaction the workers sent.
func (s Stats) Sent() int64 { return s.Claimed + s.Chained + s.Handed }

// Since is what was counted between earlier and s.
func (s Stats) Since(earlier Stats) Stats {
	return Stats{Rounds: s.Rounds - earlier.Rounds, Claimed: s.Claimed - earlier.Claimed, Chained: s.Chained - earlier.Chained,
		Handed: s.Handed - earlier.Handed, Claims: s.Claims - earlier.Claims, EmptyClaims: s.EmptyClaims - earlier.EmptyClaims,
		GaveWay: s.GaveWay - earlier.GaveWay}
}

// counters is Stats as the workers update it.
type counters struct {
	rounds, claimed, chained, handed, claims, emptyClaims, gaveWay atomic.Int64
}

// Stats returns the engine's counts so far.
func (p *Pool) Stats() Stats {
	c := &p.counts
	return Stats{Rounds: c.rounds.Load(), Claimed: c.claimed.Load(), Chained: c.chained.Load(), Handed: c.handed.Load(),
		Claims: c.claims.Load(), EmptyClaims: c.emptyClaims.Load(), GaveWay: c.gaveWay.Load()}
}

// countRound counts one round sent: chained transactions first in the
// batch, then the claimed or handed-over ones.
func (c *counters) countRound(chained, fresh int, handed bool) {
	c.rounds.Add(1)
	c.chained.Add(int64(chained))
	if handed {
		c.handed.Add(int64(fresh))
	} else {
		c.claimed.Add(int64(fresh))
	}
}

// countClaim counts one claim that found n.
func (c *counters) countClaim(n int) {
	c.claims.Add(1)
	if n == 0 {
		c.emptyClaims.Add(1)
	}
}
