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
// receipts. 10 tickets get 50 PATCHes each through A's tickets API. Once the
// load runs, the test locks A's http_requests so that A cannot record its
// attempts while B still accepts them; when B has accepted a message A has
// not recorded, A is killed with kill -9, the lock released and A restarted
// at once. B applied A's in-flight messages whose answers A never recorded
// (asserted, not hoped for): B's receipts for
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

	// Force the crash the test is about, whatever the machine's speed: once
	// the load runs, a transaction of the test holds a SHARE lock on A's
	// http_requests, which every RecordAttempts needs (it inserts A's attempts
	// there), so A's engine keeps sending and B keeps accepting, but A records
	// no answer. Once B has accepted messages that A has not recorded, A is
	// killed; only then is the lock released (the killed process's blocked
	// transactions roll back) and A restarted.
	wait.For(t, 60*time.Second, func() (bool, error) {
		return done.Load() >= tickets, fmt.Errorf("%d PATCHes done", done.Load())
	}, "the load to start")
	lock := a.DB.Begin()
	require.NoError(t, lock.Error)
	lockHeld := true
	defer func() {
		if lockHeld {
			lock.Rollback()
		}
	}()
	require.NoError(t, lock.Exec(`LOCK TABLE http_requests IN SHARE MODE`).Error)
	locked := time.Now()
	// inFlight: messages B has accepted (an inbound transaction) that A has
	// not recorded (its transaction still Sending).
	var inFlight []string
	wait.For(t, 30*time.Second, func() (bool, error) {
		var accepted []string
		if err := b.DB.Raw(`SELECT external_message_id FROM transactions WHERE integration_id = ? AND direction = ?`,
			b.Integration.ID, models.Inbound).Scan(&accepted).Error; err != nil {
			return false, err
		}
		inFlight = nil
		if err := a.DB.Raw(`SELECT message_ident FROM transactions WHERE integration_id = ? AND direction = ?
			AND state = ? AND message_ident IN (?) ORDER BY id`, a.Integration.ID, models.Outbound, models.Sending,
			append(accepted, "")).Scan(&inFlight).Error; err != nil {
			return false, err
		}
		return len(inFlight) > 0, fmt.Errorf("B accepted %d messages, none unrecorded on A", len(accepted))
	}, "B to accept a message of A that A has not recorded")
	a.Server.Kill(t)
	killed := time.Now()
	var leased []string
	require.NoError(t, a.DB.Raw(`SELECT message_ident FROM transactions WHERE lease_owner IS NOT NULL ORDER BY id`).
		Scan(&leased).Error)
	require.NoError(t, lock.Rollback().Error)
	lockHeld = false
	t.Logf("killed A after %d PATCHes, %s after locking http_requests; %d messages accepted by B and not recorded "+
		"by A: %v; %d transactions leased by A: %v", done.Load(), killed.Sub(locked).Round(time.Millisecond),
		len(inFlight), inFlight, len(leased), leased)
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
	// The crash happened as claimed: every message B had accepted and A had
	// not recorded was sent again by the restarted A and refused by B, and
	// only messages leased by the killed process were sent twice.
	require.NotEmpty(t, inFlight, "no message in flight at the kill")
	require.NotEmpty(t, dupIDs, "B refused no duplicate from the restarted A")
	require.Subset(t, dupIDs, inFlight, "messages in flight at the kill that were not sent again and refused")
	require.Subset(t, leased, dupIDs, "only messages in flight in the killed process were sent twice")
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
	fault.Report(t, "TestTwinCrashDuplicate", "patches", done.Load(), "in_flight_at_kill", len(inFlight), "leased_at_kill", len(leased),
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
