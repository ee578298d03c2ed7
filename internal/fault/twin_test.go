package fault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fault"
	"unifi/internal/wait"
	"unifi/models"
)

// TestTwinCrashDuplicate is the two-instance crash (docs/inbound.md, "After a
// crash: duplicates and owed receipts"): A and B are two `unifi serve`
// processes with their own databases, bonded to each other with async
// receipts. 10 tickets get 50 PATCHes each through A's tickets API; A is
// killed with kill -9 four seconds in and restarted at once. B applied some
// of A's in-flight messages whose answers A never recorded: B's receipts for
// them fail (A down, then A still sending them), and when A's lease expires
// A sends them again and B refuses them as duplicates. Within a lease plus a
// receipt retry cycle after the last PATCH every transaction on both sides
// must be Complete, the tickets equal field by field, no message applied
// twice and each bond's order kept.
func TestTwinCrashDuplicate(t *testing.T) {
	const (
		tickets      = 10
		patches      = 50
		leaseS       = 6
		asyncS       = 6
		killAfter    = 4 * time.Second
		settleBudget = (leaseS+asyncS)*time.Second + 8*time.Second
	)
	a, b := fault.NewTwins(t, fault.TwinOpts{SyncTimeoutS: 2, RetryLimit: 1, RetryDelayS: 1, AsyncTimeoutS: asyncS,
		Env: map[string]string{"LEASE_SECONDS": fmt.Sprint(leaseS), "API_RATE": "0"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	api := &ticketAPI{base: a.Server.URL(), client: &http.Client{Timeout: 5 * time.Second}}
	start := time.Now()
	numbers := make([]string, tickets)
	for i := range numbers {
		var out struct{ Number string }
		require.NoError(t, api.call(ctx, http.MethodPost, "/api/v1/tickets",
			map[string]any{"short_description": fmt.Sprintf("twin ticket %d", i)}, &out))
		numbers[i] = out.Number
	}
	var wg sync.WaitGroup
	var done atomic.Int64
	errs := make(chan error, tickets)
	for i, n := range numbers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for u := range patches {
				body := map[string]any{"description": fmt.Sprintf("ticket %d update %d", i, u+1),
					"priority": 1 + (i+u)%5, "urgency": 1 + u%3, "assignment_group": fmt.Sprintf("group %d", u%4),
					"work_notes": fmt.Sprintf("note %d", u+1)}
				if err := api.call(ctx, http.MethodPatch, "/api/v1/tickets/"+n, body, nil); err != nil {
					errs <- err
					return
				}
				done.Add(1)
			}
		}()
	}

	time.Sleep(time.Until(start.Add(killAfter)))
	a.Server.Kill(t)
	killed := time.Now()
	var inFlight []string
	require.NoError(t, a.DB.Raw(`SELECT message_ident FROM transactions WHERE lease_owner IS NOT NULL ORDER BY id`).
		Scan(&inFlight).Error)
	t.Logf("killed A after %d PATCHes; %d transactions leased by it: %v", done.Load(), len(inFlight), inFlight)
	a.Server.Start(t)
	restarted := time.Now()
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	loadEnd := time.Now()
	t.Logf("load done: %d PATCHes in %s; A down for %s", done.Load(), loadEnd.Sub(start).Round(time.Millisecond),
		restarted.Sub(killed).Round(time.Millisecond))

	// Settled: every transaction on both sides Complete (none Timed Out,
	// Error, Queued or still waiting).
	settled := func() (bool, error) {
		sa, sb := a.States(t, models.Outbound), b.States(t, models.Inbound)
		ok := fault.Count(sa, models.Complete) == fault.Total(sa) && fault.Count(sb, models.Complete) == fault.Total(sb) &&
			fault.Total(sa) == fault.Total(sb) && fault.Total(sa) >= tickets*(patches+1)
		return ok, fmt.Errorf("A outbound %v; B inbound %v", sa, sb)
	}
	wait.For(t, settleBudget, settled, "both sides settled within a lease and a receipt retry cycle")
	t.Logf("settled %s after the last PATCH", time.Since(loadEnd).Round(time.Millisecond))

	// Nothing applied twice on B, and every message of A applied once.
	var twice []string
	require.NoError(t, b.DB.Raw(`SELECT external_message_id FROM transactions WHERE integration_id = ? AND direction = ?
		GROUP BY external_message_id HAVING count(*) > 1`, b.Integration.ID, models.Inbound).Scan(&twice).Error)
	require.Empty(t, twice, "messages applied twice on B")
	var dupIDs []string
	require.NoError(t, b.DB.Raw(`SELECT request_body::jsonb -> 'message' ->> 'source_id' FROM http_requests
		WHERE direction = 'Inbound' AND response_status = 409 AND response_body LIKE '%already been processed%'`).
		Scan(&dupIDs).Error)
	require.Subset(t, inFlight, dupIDs, "only messages in flight in the killed process were sent twice")
	dups := len(dupIDs)

	// Per bond: A's outbound order is B's arrival order; the tickets are equal.
	for _, n := range numbers {
		var ak models.Ticket
		require.NoError(t, a.DB.Where("number = ?", n).Take(&ak).Error)
		var ab, bb models.Bond
		require.NoError(t, a.DB.Where("ticket_id = ? AND integration_id = ?", ak.ID, a.Integration.ID).Take(&ab).Error)
		require.NoError(t, b.DB.Where("external_reference = ? AND integration_id = ?", n, b.Integration.ID).Take(&bb).Error)
		var sent, arrived []string
		require.NoError(t, a.DB.Raw(`SELECT message_ident FROM transactions WHERE bond_id = ? AND direction = ? AND state <> ?
			ORDER BY seq, id`, ab.ID, models.Outbound, models.Ignored).Scan(&sent).Error)
		require.NoError(t, b.DB.Raw(`SELECT external_message_id FROM transactions WHERE bond_id = ? AND direction = ?
			ORDER BY id`, bb.ID, models.Inbound).Scan(&arrived).Error)
		require.Equal(t, sent, arrived, "bond of %s: B applied A's messages in another order", n)
		var bk models.Ticket
		require.NoError(t, b.DB.Take(&bk, bb.TicketID).Error)
		require.Equal(t, ticketFields(ak), ticketFields(bk), "ticket %s on A and %s on B differ", n, bk.Number)
	}
	fault.Report(t, "TestTwinCrashDuplicate", "patches", done.Load(), "in_flight_at_kill", len(inFlight),
		"duplicates_refused_by_B", dups, "settled_after_load_s", time.Since(loadEnd).Seconds())
}

func ticketFields(k models.Ticket) []any {
	return []any{k.ShortDescription, k.Description, k.State, k.Priority, k.Urgency, k.Impact, k.AssignmentGroup, k.WorkNotes}
}

// ticketAPI calls A's tickets API as the demo analyst, trying again while the
// server is down (bounded by ctx).
type ticketAPI struct {
	base   string
	client *http.Client
}

func (c *ticketAPI) call(ctx context.Context, method, path string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var last string
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("analyst", "analyst-demo-1")
		res, err := c.client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode/100 == 2 {
				if out != nil {
					return json.Unmarshal(b, out)
				}
				return nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, b)
			if res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests {
				return fmt.Errorf("%s %s: %s", method, path, last)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s %s: gave up: %s", method, path, last)
}
