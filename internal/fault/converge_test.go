package fault_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fault"
	"unifi/internal/wait"
	"unifi/models"
)

// Concurrent edits converge (docs/domain.md, "Concurrent edits converge";
// docs/reliability.md): two real instances bonded to each other, the same
// tickets edited on both sides at once.

// apiTicket is a ticket as the tickets API shows it.
type apiTicket struct {
	Number           string `json:"number"`
	ShortDescription string `json:"short_description"`
	Description      string `json:"description"`
	State            string `json:"state"`
	Priority         int    `json:"priority"`
	Urgency          int    `json:"urgency"`
	Impact           int    `json:"impact"`
	AssignmentGroup  string `json:"assignment_group"`
	WorkNotes        string `json:"work_notes"`
	Version          int    `json:"version"`
}

// field is a ticket field as text, by its API name.
func (k apiTicket) field(name string) string {
	switch name {
	case "short_description":
		return k.ShortDescription
	case "description":
		return k.Description
	case "assignment_group":
		return k.AssignmentGroup
	case "work_notes":
		return k.WorkNotes
	case "priority":
		return fmt.Sprint(k.Priority)
	case "urgency":
		return fmt.Sprint(k.Urgency)
	}
	panic("no field " + name)
}

func (k apiTicket) values() []any {
	return []any{k.ShortDescription, k.Description, k.State, k.Priority, k.Urgency, k.Impact, k.AssignmentGroup, k.WorkNotes}
}

// twinPair is one ticket: its number on A and on B.
type twinPair struct{ a, b string }

// bondedTickets creates n tickets on A through its tickets API and waits
// until B has each (bonded to A's) and both sides are at rest.
func bondedTickets(t *testing.T, ctx context.Context, a, b *fault.Twin, api *ticketAPI, n int) []twinPair {
	t.Helper()
	pairs := make([]twinPair, n)
	for i := range pairs {
		var out apiTicket
		require.NoError(t, api.call(ctx, http.MethodPost, "/api/v1/tickets",
			map[string]any{"short_description": fmt.Sprintf("converge ticket %d", i), "description": "base"}, &out))
		pairs[i].a = out.Number
	}
	wait.For(t, 30*time.Second, func() (bool, error) {
		return fault.Settled(t, a, b)
	}, "the creates to settle")
	for i := range pairs {
		require.NoError(t, b.DB.Raw(`SELECT k.number FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = ? AND b.external_reference = ?`, b.Integration.ID, pairs[i].a).Scan(&pairs[i].b).Error)
		require.NotEmpty(t, pairs[i].b, "B has no ticket bonded to %s", pairs[i].a)
		var st models.BondState
		require.NoError(t, a.DB.Raw(`SELECT b.state FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = ? AND k.number = ?`, a.Integration.ID, pairs[i].a).Scan(&st).Error)
		require.Equal(t, models.BondOpen, st, "A's bond of %s", pairs[i].a)
	}
	return pairs
}

// sentStamps are the wire stamps of the newest outbound message tw made for
// its ticket numbered number.
func sentStamps(t *testing.T, tw *fault.Twin, number string) map[string]models.WireStamp {
	t.Helper()
	var st models.Stage
	require.NoError(t, tw.DB.Raw(`SELECT s.* FROM stages s JOIN transactions t ON t.id = s.transaction_id
		JOIN tickets k ON k.id = t.ticket_id WHERE k.number = ? AND t.direction = 'Outbound'
		ORDER BY t.id DESC LIMIT 1`, number).Scan(&st).Error)
	return st.Stamps.V
}

// TestConvergeCrossing is item 2 of issue 12: the same ticket's description
// edited on A and on B at the same moment (two goroutines released
// together). When the edits crossed (each made from the value before the
// other arrived, which the stamps' old values tell), both sides must end
// with the same value, the later change's, and both must have recorded the
// other change as lost. Trials go on until three edits crossed.
func TestConvergeCrossing(t *testing.T) {
	a, b := fault.NewTwins(t, fault.TwinOpts{Env: map[string]string{"API_RATE": "0"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	apiA := &ticketAPI{base: a.Server.URL(), client: client}
	apiB := &ticketAPI{base: b.Server.URL(), client: client}
	p := bondedTickets(t, ctx, a, b, apiA, 1)[0]

	const want = 3
	crossed, sequential := 0, 0
	var settle []time.Duration
	for trial := 0; crossed < want; trial++ {
		require.Less(t, trial, 12, "only %d of %d trials crossed", crossed, trial)
		var before apiTicket
		require.NoError(t, apiA.call(ctx, http.MethodGet, "/api/v1/tickets/"+p.a, nil, &before))
		va, vb := fmt.Sprintf("A's change %d", trial), fmt.Sprintf("B's change %d", trial)
		conflictsA, conflictsB := len(a.Conflicts(t, p.a)), len(b.Conflicts(t, p.b))
		start := make(chan struct{})
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, x := range []struct {
			api    *ticketAPI
			number string
			value  string
		}{{apiA, p.a, va}, {apiB, p.b, vb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = x.api.patchRetrying(ctx, x.number, map[string]any{"description": x.value})
			}()
		}
		edited := time.Now()
		close(start)
		wg.Wait()
		require.NoError(t, errors.Join(errs...))
		wait.For(t, 30*time.Second, func() (bool, error) { return fault.Settled(t, a, b) }, "trial %d to settle", trial)
		settle = append(settle, time.Since(edited))

		var ka, kb apiTicket
		require.NoError(t, apiA.call(ctx, http.MethodGet, "/api/v1/tickets/"+p.a, nil, &ka))
		require.NoError(t, apiB.call(ctx, http.MethodGet, "/api/v1/tickets/"+p.b, nil, &kb))
		require.Equal(t, ka.values(), kb.values(), "trial %d: A and B differ", trial)
		sa, sb := sentStamps(t, a, p.a)["description"], sentStamps(t, b, p.b)["description"]
		require.NotNil(t, sa.Was)
		require.NotNil(t, sb.Was)
		ca, cb := a.Conflicts(t, p.a)[conflictsA:], b.Conflicts(t, p.b)[conflictsB:]
		if *sa.Was != before.Description || *sb.Was != before.Description {
			// One edit was made on top of the other: no conflict, the later wins.
			sequential++
			require.Empty(t, ca, "trial %d: a sequential edit is no conflict", trial)
			require.Empty(t, cb, "trial %d: a sequential edit is no conflict", trial)
			continue
		}
		crossed++
		winner, loser := va, vb
		if sb.At.After(sa.At) {
			winner, loser = vb, va
		}
		require.Equal(t, winner, ka.Description, "trial %d: the later change (A %s, B %s) wins", trial, sa.At, sb.At)
		require.Equal(t, []fault.Conflict{{Field: "description", KeptValue: winner, LostValue: loser,
			Kept: map[bool]string{true: "ours", false: "theirs"}[winner == va]}}, ca, "trial %d: A's record", trial)
		require.Equal(t, []fault.Conflict{{Field: "description", KeptValue: winner, LostValue: loser,
			Kept: map[bool]string{true: "ours", false: "theirs"}[winner == vb]}}, cb, "trial %d: B's record", trial)
		var histA, histB string
		require.NoError(t, a.DB.Raw(`SELECT history FROM bonds WHERE external_reference = ?`, p.b).Scan(&histA).Error)
		require.NoError(t, b.DB.Raw(`SELECT history FROM bonds WHERE external_reference = ?`, p.a).Scan(&histB).Error)
		require.Contains(t, histA, fmt.Sprintf("concurrent edit of description: kept %q", winner))
		require.Contains(t, histB, fmt.Sprintf("concurrent edit of description: kept %q", winner))
	}
	fault.Report(t, "TestConvergeCrossing", "crossed", crossed, "sequential", sequential, "settled_after_ms",
		durationsMS(settle))
}

// patchRetrying changes a ticket, again while the answer is 409 (the ticket
// changed between the server's read and its write: an inbound message).
func (c *ticketAPI) patchRetrying(ctx context.Context, number string, body map[string]any) error {
	for {
		err := c.call(ctx, http.MethodPatch, "/api/v1/tickets/"+number, body, nil)
		if err == nil || !strings.Contains(err.Error(), ": 409 ") {
			return err
		}
	}
}

func durationsMS(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = fmt.Sprint(d.Milliseconds())
	}
	return strings.Join(parts, ",")
}

// TestConvergeRandom edits a few tickets on both sides at random for about
// ten seconds; afterwards both sides are equal field by field and every
// value an edit wrote is the final value, or was replaced by an edit made
// on top of it, or is reported as lost on a side.
func TestConvergeRandom(t *testing.T) {
	runConvergeRandom(t, convergeOpts{tickets: 4, workers: 2, duration: 10 * time.Second})
}

type convergeOpts struct {
	tickets, workers int           // tickets edited; workers per side
	duration         time.Duration // how long edits go on
}

// convergeEdit is one edit the test made: on which side, which ticket
// (A's number), which field, the value written and the value it replaced.
type convergeEdit struct {
	side, ticket, field, value, was string
}

func runConvergeRandom(t *testing.T, o convergeOpts) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	a, b := fault.NewTwins(t, fault.TwinOpts{Env: map[string]string{"API_RATE": "0"}})
	ctx, cancel := context.WithTimeout(context.Background(), o.duration+3*time.Minute)
	defer cancel()
	client := &http.Client{Timeout: 5 * time.Second}
	apis := map[string]*ticketAPI{"A": {base: a.Server.URL(), client: client}, "B": {base: b.Server.URL(), client: client}}
	pairs := bondedTickets(t, ctx, a, b, apis["A"], o.tickets)

	textFields := []string{"short_description", "description", "assignment_group", "work_notes"}
	fields := append([]string{"priority", "urgency"}, textFields...)
	var mu sync.Mutex
	var edits []convergeEdit
	conflicts409 := 0
	deadline := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	errs := make(chan error, 2*o.workers)
	for _, side := range []string{"A", "B"} {
		for w := range o.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(w)<<1|map[string]uint64{"A": 0, "B": 1}[side]))
				for n := 0; time.Now().Before(deadline); n++ {
					p := pairs[r.IntN(len(pairs))]
					number := map[string]string{"A": p.a, "B": p.b}[side]
					field := fields[r.IntN(len(fields))]
					var value any = fmt.Sprintf("%s%d-%d", side, w, n)
					if field == "priority" {
						value = 1 + r.IntN(5)
					} else if field == "urgency" {
						value = 1 + r.IntN(3)
					}
					// Read, then change at the version read: the value
					// replaced is then known for sure.
					for {
						var cur apiTicket
						if err := apis[side].call(ctx, http.MethodGet, "/api/v1/tickets/"+number, nil, &cur); err != nil {
							errs <- err
							return
						}
						err := apis[side].call(ctx, http.MethodPatch, "/api/v1/tickets/"+number,
							map[string]any{field: value, "version": cur.Version}, nil)
						if err != nil && strings.Contains(err.Error(), ": 409 ") {
							mu.Lock()
							conflicts409++
							mu.Unlock()
							continue // changed meanwhile (an inbound message): read again
						}
						if err != nil {
							errs <- err
							return
						}
						mu.Lock()
						edits = append(edits, convergeEdit{side: side, ticket: p.a, field: field,
							value: fmt.Sprint(value), was: cur.field(field)})
						mu.Unlock()
						break
					}
					// Pace the load: a person edits now and then, not in a
					// loop; the pause only spreads the edits in time.
					select {
					case <-ctx.Done():
					case <-time.After(time.Duration(10+r.IntN(60)) * time.Millisecond):
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	loadEnd := time.Now()
	// Messages still waiting when the edits stop: a bond sends one message
	// per round trip and receipt, so edits faster than that queue up.
	queued := fault.Count(a.States(t, models.Outbound), models.Queued) + fault.Count(b.States(t, models.Outbound), models.Queued)
	wait.For(t, 2*time.Minute, func() (bool, error) { return fault.Settled(t, a, b) }, "both sides to settle")
	settled := time.Since(loadEnd)

	// Both sides equal, field by field.
	lost := map[string]map[string]bool{} // A's number + field -> values reported lost on either side
	nConflicts := map[string]int{}
	for _, p := range pairs {
		var ka, kb apiTicket
		require.NoError(t, apis["A"].call(ctx, http.MethodGet, "/api/v1/tickets/"+p.a, nil, &ka))
		require.NoError(t, apis["B"].call(ctx, http.MethodGet, "/api/v1/tickets/"+p.b, nil, &kb))
		require.Equal(t, ka.values(), kb.values(), "ticket %s on A and %s on B differ (seed %d)", p.a, p.b, seed)
		for side, cs := range map[string][]fault.Conflict{"A": a.Conflicts(t, p.a), "B": b.Conflicts(t, p.b)} {
			nConflicts[side] += len(cs)
			for _, c := range cs {
				key := p.a + "/" + c.Field
				if lost[key] == nil {
					lost[key] = map[string]bool{}
				}
				lost[key][c.LostValue] = true
			}
		}
		// Every value an edit wrote is final, replaced by an edit made on
		// top of it, or reported lost.
		final := map[string]string{}
		for _, f := range textFields {
			final[f] = ka.field(f)
		}
		replaced := map[string]bool{}
		for _, e := range edits {
			if e.ticket == p.a {
				replaced[e.field+"/"+e.was] = true
			}
		}
		for _, e := range edits {
			if e.ticket != p.a || e.field == "priority" || e.field == "urgency" {
				continue
			}
			ok := final[e.field] == e.value || replaced[e.field+"/"+e.value] || lost[p.a+"/"+e.field][e.value]
			require.True(t, ok, "%s's change of %s on %s to %q was overwritten without a report (seed %d)",
				e.side, e.field, p.a, e.value, seed)
		}
	}
	require.NotZero(t, nConflicts["A"]+nConflicts["B"], "no edits crossed: the test did not test convergence")
	fault.Report(t, "TestConvergeRandom", "seed", seed, "duration_s", o.duration.Seconds(), "tickets", o.tickets,
		"edits", len(edits), "version_conflicts_reread", conflicts409, "conflicts_A", nConflicts["A"],
		"conflicts_B", nConflicts["B"], "queued_at_load_end", queued, "settled_after_load_s", settled.Seconds())
}
