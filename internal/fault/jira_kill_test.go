package fault_test

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/sim/jira"
	"unifi/internal/wait"
	"unifi/models"
)

// sqlPageInFlight finds the poller's page transaction while it is open with
// items written: the one backend of the test's database that holds both
// pollers (its first statement checks and renews the lease) and transactions
// (an item applied) for writing. Its transaction id tells afterwards whether
// the page committed or was rolled back. A fresh cluster is in xid epoch 0,
// so the 32-bit xid is the 64-bit one txid_status reads.
const sqlPageInFlight = `
SELECT a.backend_xid::text::bigint FROM pg_stat_activity a
WHERE a.datname = current_database() AND a.backend_xid IS NOT NULL
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
              AND l.relation = 'pollers'::regclass AND l.mode = 'RowExclusiveLock')
  AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.granted AND l.locktype = 'relation'
              AND l.relation = 'transactions'::regclass AND l.mode = 'RowExclusiveLock')
LIMIT 1`

// TestJiraPollKilled: the `unifi serve` process running the Jira poller is
// killed with kill -9 while a page is in flight (its database transaction
// open with items applied), several times over a run of 2,000 issues (pages
// of 100) while issues keep changing in Jira, and started again with the
// same command each time. Every page in flight was rolled back with the
// process; the next process resumed from the stored mark. Against the
// simulator's records: every issue arrived once as a create, every change
// made during the run once as an update after it, no message twice, none
// skipped, each issue's changes in order.
func TestJiraPollKilled(t *testing.T) {
	t.Parallel()
	w := newJiraWorld(t, 1)
	srv := w.Servers[0]
	agent := func(method, path string, body any) int {
		return w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, method, path, body, nil)
	}
	edit := func(key, summary string) {
		require.Equal(t, http.StatusNoContent, agent("PUT", "/rest/api/2/issue/"+key,
			map[string]any{"fields": map[string]any{"summary": summary}}))
	}

	// 2,000 issues made in Jira over the last hours; every 20th changed
	// before the first poll (it arrives once, as a create with the change).
	const issues = 2000
	w.pause(t)
	w.sim.Seed(t, jira.SeedOpts{Count: issues, Summary: "Seeded", UpdatedFrom: time.Now().UTC().Add(-3 * time.Hour), StepMS: 1000})
	for i := 20; i <= issues; i += 20 {
		edit(fmt.Sprintf("SIM-%d", i), fmt.Sprintf("Changed before the poll %d", i))
	}
	w.resume(t)

	// Kill the server while a page is in flight, start it again, and again.
	// A kill that lands just after the page committed proves nothing about
	// rollback: it is counted apart and the test kills again.
	editedDuring := map[string]bool{}
	var midPage, afterCommit int
	for midPage < 3 {
		require.Less(t, midPage+afterCommit, 10, "could not kill the poller with a page in flight")
		// Spread the kills over the run: the first after 300 issues are
		// here, the next 500 later, so that each resumes from a later mark.
		atLeast := 300 + 500*(midPage+afterCommit)
		wait.For(t, 2*time.Minute, func() (bool, error) {
			var n int
			err := w.DB.Raw(`SELECT count(*) FROM bonds WHERE integration_id = ?`, w.in.ID).Scan(&n).Error
			return err == nil && n >= atLeast, fmt.Errorf("%d issues here (%v)", n, err)
		}, "%d issues polled", atLeast)
		var xid int64
		wait.For(t, 30*time.Second, func() (bool, error) {
			err := w.DB.Raw(sqlPageInFlight).Scan(&xid).Error
			return err == nil && xid != 0, err
		}, "a page in flight")
		srv.Kill(t)
		var status string
		wait.For(t, 30*time.Second, func() (bool, error) {
			err := w.DB.Raw(`SELECT txid_status(?)`, xid).Scan(&status).Error
			return err == nil && status != "in progress", fmt.Errorf("page transaction %d: %s (%v)", xid, status, err)
		}, "the killed process's page transaction ended")
		if status == "committed" {
			afterCommit++
		} else {
			require.Equal(t, "aborted", status)
			midPage++
		}
		var stored string
		require.NoError(t, w.DB.Raw(`SELECT mark::text FROM pollers WHERE id = ?`, w.poller).Scan(&stored).Error)
		var before int64
		require.NoError(t, w.DB.Raw(`SELECT coalesce(max(id), 0) FROM poll_requests WHERE poller_id = ?`, w.poller).Scan(&before).Error)
		srv.Start(t)
		// The next run starts from the mark the last committed page stored.
		var resumed string
		wait.For(t, time.Minute, func() (bool, error) {
			err := w.DB.Raw(`SELECT mark_before::text FROM poll_requests WHERE poller_id = ? AND parent_id IS NULL AND id > ?
				ORDER BY id LIMIT 1`, w.poller, before).Scan(&resumed).Error
			return err == nil && resumed != "", err
		}, "the restarted server's first run")
		require.JSONEq(t, stored, resumed, "the restarted server resumed from the stored mark")

		// Meanwhile people change issues already polled here: each change
		// is to arrive once, as an update after the issue's create.
		var keys []string
		require.NoError(t, w.DB.Raw(`SELECT external_reference FROM bonds WHERE integration_id = ? ORDER BY id`, w.in.ID).
			Scan(&keys).Error)
		changed := 0
		for _, k := range keys {
			if changed == 40 {
				break
			}
			if !editedDuring[k] {
				editedDuring[k] = true
				edit(k, "Changed during the run "+k)
				changed++
			}
		}
	}
	w.caughtUp(t, 5*time.Minute)

	// Against the simulator's records.
	var recs struct {
		Issues []struct {
			Key    string
			Fields struct{ Summary, Updated string }
		}
	}
	w.sim.Records(t, &recs)
	require.Len(t, recs.Issues, issues)
	var rows []struct {
		ExternalReference, ExternalMessageID, Name string
		ProcessState                               models.ProcessState
	}
	require.NoError(t, w.DB.Raw(`SELECT b.external_reference, t.external_message_id, m.name, t.process_state
		FROM transactions t JOIN bonds b ON b.id = t.bond_id JOIN messages m ON m.id = t.message_id
		WHERE t.integration_id = ? AND t.direction = ? ORDER BY b.external_reference, t.seq`, w.in.ID, models.Inbound).
		Scan(&rows).Error)
	byIssue := map[string][]string{} // key -> message name @ message ID, in the bond's order
	seenID := map[string]int{}
	for _, r := range rows {
		byIssue[r.ExternalReference] = append(byIssue[r.ExternalReference], r.Name+" "+r.ExternalMessageID)
		seenID[r.ExternalMessageID]++
		require.Equal(t, models.ProcessAccepted, r.ProcessState, "%s %s", r.ExternalReference, r.ExternalMessageID)
	}
	for id, n := range seenID {
		require.Equal(t, 1, n, "message %s applied once", id)
	}
	var wrong []string
	for _, is := range recs.Issues {
		got := byIssue[is.Key]
		last := is.Key + "@" + is.Fields.Updated
		want := 1
		if editedDuring[is.Key] {
			want = 2
		}
		ok := len(got) == want && strings.HasPrefix(got[0], "CreateIncident ") && strings.HasSuffix(got[len(got)-1], " "+last)
		if want == 2 {
			ok = ok && strings.HasPrefix(got[1], "UpdateIncident ")
		}
		// Each issue's changes in the order they were made (Jira's times
		// are written in one zone and width, so they order as text).
		ok = ok && sort.SliceIsSorted(got, func(i, j int) bool {
			return strings.SplitN(got[i], "@", 2)[1] < strings.SplitN(got[j], "@", 2)[1]
		})
		if !ok {
			wrong = append(wrong, fmt.Sprintf("%s (last change %s): %v", is.Key, last, got))
		}
	}
	require.Empty(t, wrong, "issues whose changes did not arrive exactly once, in order")
	var bonds int
	require.NoError(t, w.DB.Raw(`SELECT count(*) FROM bonds WHERE integration_id = ?`, w.in.ID).Scan(&bonds).Error)
	require.Equal(t, issues, bonds, "one bond per issue")

	r := w.runs(t)
	t.Logf("%d kills with a page in flight (%d more just after a commit), %d runs, %d abandoned, %d items processed, %d changes during the run",
		midPage, afterCommit, r.Runs, r.Abandoned, r.Processed, len(editedDuring))
	require.Zero(t, r.Duplicate, "no item offered twice")
	require.Zero(t, r.Refused, "no item refused")
	require.Equal(t, issues+len(editedDuring), r.Processed, "each change processed once")
	require.GreaterOrEqual(t, r.Abandoned, midPage+afterCommit, "each killed run ended as abandoned by the next process")
}
