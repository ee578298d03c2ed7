package fault_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/failmode"
	"unifi/internal/fault"
	"unifi/internal/sim"
	"unifi/internal/sim/jira"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// jiraWorld is server processes on one database, the Jira simulator and an
// integration made from the "Jira (poll)" template through the server's
// form, as an admin would: the simulator's URL, account and API token.
type jiraWorld struct {
	*fault.World
	sim    *fault.SimProcess
	in     *models.Integration
	poller int64
}

func newJiraWorld(t *testing.T, servers int) *jiraWorld {
	t.Helper()
	ctx := context.Background()
	w := fault.New(t, fault.Opts{Servers: servers})
	require.NoError(t, w.DB.Exec("UPDATE integrations SET state = ? WHERE name = ?", models.IntegrationOff, models.DemoIntegrationName).Error)
	acc := account.New(w.DB, nil)
	u, err := acc.CreateUser(ctx, models.Actor{Name: "test", Role: models.RoleAdmin},
		account.NewUserOpts{Name: "jira-in", Password: "jira-in-password", Role: models.RoleIntegration})
	require.NoError(t, err)
	s := fault.StartSim(t, fault.SimJira, fault.SimOpts{})
	admin := w.Servers[0].Login(t, "admin", "admin-demo-1")
	code, body := admin.PostForm("/integrations/new/template", "/integrations/new/template", url.Values{
		"template": {"jira-poll"}, "name": {"jira"}, "environment": {"Test"},
		"endpoint_url": {s.URL()}, "username": {s.User}, "token": {s.Secret},
		"inbound_user_id": {fmt.Sprint(u.ID)}})
	require.Equal(t, http.StatusSeeOther, code, body)
	in, err := w.Store.GetIntegrationByName(ctx, "jira")
	require.NoError(t, err)
	jw := &jiraWorld{World: w, sim: s, in: in}
	// Poll every second (the template's 10 s is for people).
	require.NoError(t, w.DB.Raw(`UPDATE pollers SET every_s = 1, next_run_at = now() WHERE integration_id = ? RETURNING id`,
		in.ID).Scan(&jw.poller).Error)
	require.NotZero(t, jw.poller, "the template made its poller")
	return jw
}

// issues is every issue there: key -> summary.
func (w *jiraWorld) issues(t *testing.T) map[string]string {
	t.Helper()
	var recs struct {
		Issues []struct {
			Key    string
			Fields struct{ Summary string }
		}
	}
	w.sim.Records(t, &recs)
	out := map[string]string{}
	for _, is := range recs.Issues {
		out[is.Key] = is.Fields.Summary
	}
	return out
}

// bonded is every bond of the integration: their key -> our ticket's short description.
func (w *jiraWorld) bonded(t *testing.T) map[string]string {
	t.Helper()
	var rows []struct{ ExternalReference, ShortDescription string }
	require.NoError(t, w.DB.Raw(`SELECT b.external_reference, k.short_description FROM bonds b JOIN tickets k ON k.id = b.ticket_id
		WHERE b.integration_id = ?`, w.in.ID).Scan(&rows).Error)
	out := map[string]string{}
	for _, r := range rows {
		out[r.ExternalReference] = r.ShortDescription
	}
	return out
}

// caughtUp waits until every issue there is bonded here with its last summary.
// When it gives up it says what became of the issue it waited for: its
// inbound transactions here and the poller's stored mark.
func (w *jiraWorld) caughtUp(t *testing.T, timeout time.Duration) {
	t.Helper()
	want := w.issues(t)
	var missing string
	err := wait.Until(timeout, func() (bool, error) {
		got := w.bonded(t)
		for k, v := range want {
			if got[k] != v {
				missing = k
				return false, fmt.Errorf("%d of %d bonded; %s is %q here, %q there", len(got), len(want), k, got[k], v)
			}
		}
		return len(got) == len(want), nil
	})
	if err == nil {
		return
	}
	var txs []struct {
		Number, ExternalMessageID, Name, Error string
		State                                  models.TransportState
		ProcessState                           models.ProcessState
	}
	require.NoError(t, w.DB.Raw(`SELECT t.number, t.external_message_id, m.name, t.state, t.process_state, t.error
		FROM transactions t JOIN bonds b ON b.id = t.bond_id JOIN messages m ON m.id = t.message_id
		WHERE b.integration_id = ? AND b.external_reference = ? ORDER BY t.seq`, w.in.ID, missing).Scan(&txs).Error)
	var mark string
	require.NoError(t, w.DB.Raw(`SELECT mark::text FROM pollers WHERE id = ?`, w.poller).Scan(&mark).Error)
	var recs struct {
		Issues []struct {
			Key    string
			Fields struct{ Updated string }
		}
	}
	w.sim.Records(t, &recs)
	updated := ""
	for _, is := range recs.Issues {
		if is.Key == missing {
			updated = is.Fields.Updated
		}
	}
	t.Fatalf("wait: every issue and its last change polled: %v\n%s updated there %s; its transactions here: %+v\n"+
		"poller's mark: %s\nruns: %+v", err, missing, updated, txs, mark, w.runs(t))
}

// runs sums the poller's runs.
type runs struct {
	Runs, Processed, Duplicate, Refused, Abandoned int
	Owners                                         int
}

func (w *jiraWorld) runs(t *testing.T) runs {
	t.Helper()
	var r runs
	require.NoError(t, w.DB.Raw(`SELECT count(*) AS runs, coalesce(sum(items_processed), 0) AS processed,
		coalesce(sum(items_duplicate), 0) AS duplicate, coalesce(sum(items_refused), 0) AS refused,
		count(*) FILTER (WHERE error LIKE '%stopped before it finished%') AS abandoned, count(DISTINCT owner) AS owners
		FROM poll_requests WHERE poller_id = ? AND parent_id IS NULL`, w.poller).Scan(&r).Error)
	return r
}

// pause stops the poller and waits until no process runs it.
func (w *jiraWorld) pause(t *testing.T) {
	t.Helper()
	require.NoError(t, w.DB.Exec(`UPDATE pollers SET active = false WHERE id = ?`, w.poller).Error)
	wait.For(t, time.Minute, func() (bool, error) {
		var held bool
		err := w.DB.Raw(`SELECT lease_owner IS NOT NULL FROM pollers WHERE id = ?`, w.poller).Scan(&held).Error
		return err == nil && !held, err
	}, "the poller's run in progress ended")
}

// resume starts the poller again, due at once.
func (w *jiraWorld) resume(t *testing.T) {
	t.Helper()
	require.NoError(t, w.DB.Exec(`UPDATE pollers SET active = true, next_run_at = now() WHERE id = ?`, w.poller).Error)
}

// inboundMessages is the names of the inbound transactions of the bond of
// their issue key, in the bond's order.
func (w *jiraWorld) inboundMessages(t *testing.T, key string) []string {
	t.Helper()
	var names []string
	require.NoError(t, w.DB.Raw(`SELECT m.name FROM transactions t JOIN bonds b ON b.id = t.bond_id JOIN messages m ON m.id = t.message_id
		WHERE b.integration_id = ? AND b.external_reference = ? AND t.direction = ? ORDER BY t.seq`, w.in.ID, key, models.Inbound).
		Scan(&names).Error)
	return names
}

func (w *jiraWorld) inboundTransactions(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, w.DB.Raw(`SELECT count(*) FROM transactions WHERE integration_id = ? AND direction = ?`,
		w.in.ID, models.Inbound).Scan(&n).Error)
	return n
}

// TestJiraPollTwoServers: two `unifi serve` processes run the same poller
// while people create and change issues in the simulator: never two runs at
// once (the runs do not overlap), no item applied twice (each change is one
// inbound transaction, none offered again), none missed (every issue here
// with its last summary).
func TestJiraPollTwoServers(t *testing.T) {
	t.Parallel()
	w := newJiraWorld(t, 2)
	w.sim.Seed(t, jira.SeedOpts{Count: 500, Summary: "Seeded", UpdatedFrom: time.Now().UTC().Add(-2 * time.Hour), StepMS: 5000})
	w.caughtUp(t, 2*time.Minute)

	// 20 s of changes, one every 25 ms: new issues, edits, comments.
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	end := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		<-tick.C
		switch i % 4 {
		case 0:
			w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, "POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{
				"project": map[string]any{"key": "SIM"}, "summary": fmt.Sprintf("New %d", i), "issuetype": map[string]any{"name": "Task"}}}, nil)
		default:
			key := fmt.Sprintf("SIM-%d", 1+(i*37)%500)
			w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, "PUT", "/rest/api/2/issue/"+key,
				map[string]any{"fields": map[string]any{"summary": fmt.Sprintf("Change %d", i)}}, nil)
		}
	}
	w.caughtUp(t, 2*time.Minute)
	r := w.runs(t)
	t.Logf("%d runs on %d server processes, %d items processed, %d offered again, %d refused", r.Runs, r.Owners, r.Processed, r.Duplicate, r.Refused)
	require.Equal(t, 2, r.Owners, "both servers ran the poller")
	require.Zero(t, r.Duplicate, "no item was offered twice")
	require.Zero(t, r.Refused)
	require.Equal(t, r.Processed, w.inboundTransactions(t), "each item processed is one inbound transaction")
	var overlaps int
	require.NoError(t, w.DB.Raw(`SELECT count(*) FROM poll_requests a JOIN poll_requests b ON a.id < b.id
		AND a.poller_id = b.poller_id AND b.started_at < a.finished_at WHERE a.poller_id = ?`, w.poller).Scan(&overlaps).Error)
	require.Zero(t, overlaps, "never two runs at once")
}

// TestJiraTemplate: an admin makes the integration from "Jira (poll)" with
// the simulator's URL and credentials, and tickets flow both ways: create
// here -> an issue there with mapped fields; changes there -> polled here in
// order; comments both ways; resolve both ways; a 429 with Retry-After is
// waited out.
func TestJiraTemplate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newJiraWorld(t, 1)
	agent := func(method, path string, body any) int {
		return w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, method, path, body, nil)
	}
	type issue struct {
		Key    string
		Fields struct {
			Summary, Description string
			Priority             struct{ Name string }
			Status               struct{ Name string }
			Labels               []string
			Comment              struct{ Comments []struct{ Body string } }
		}
	}
	get := func(key string) issue {
		var is issue
		require.Equal(t, http.StatusOK, w.sim.Call(t, "GET", "/rest/api/2/issue/"+key, nil, &is))
		return is
	}
	ticket := func(id int64) *models.Ticket {
		var tk models.Ticket
		require.NoError(t, w.DB.Take(&tk, id).Error)
		return &tk
	}
	settled := func(what string) {
		wait.For(t, time.Minute, func() (bool, error) {
			var open []string
			err := w.DB.Raw(`SELECT number || ' ' || state || ' ' || error FROM transactions WHERE integration_id = ?
				AND direction = ? AND state NOT IN (?, ?)`, w.in.ID, models.Outbound, models.Complete, models.Ignored).Scan(&open).Error
			return err == nil && len(open) == 0, fmt.Errorf("unfinished: %v (%v)", open, err)
		}, what)
	}

	// Made in Jira and changed before the poller first saw it -> one create
	// here with the latest values (Identify asks findBond, not created =
	// updated); a change after that -> an update of the same bond.
	w.pause(t)
	var made struct{ Key string }
	require.Equal(t, http.StatusCreated, w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, "POST", "/rest/api/2/issue",
		map[string]any{"fields": map[string]any{"project": map[string]any{"key": "SIM"}, "summary": "VPN drops",
			"issuetype": map[string]any{"name": "Task"}, "priority": map[string]any{"name": "Low"}}}, &made))
	for changed := false; !changed; {
		require.Equal(t, http.StatusNoContent, agent("PUT", "/rest/api/2/issue/"+made.Key, map[string]any{"fields": map[string]any{
			"summary": "VPN drops every hour", "priority": map[string]any{"name": "High"}}}))
		var is struct {
			Fields struct{ Created, Updated string }
		}
		require.Equal(t, http.StatusOK, w.sim.Call(t, "GET", "/rest/api/2/issue/"+made.Key, nil, &is))
		changed = is.Fields.Created != is.Fields.Updated // a change in the create's millisecond would not test it
	}
	require.Equal(t, http.StatusCreated, agent("POST", "/rest/api/2/issue/"+made.Key+"/comment", map[string]any{"body": "Seen in Lyon"}))
	w.resume(t)
	var madeTicket int64
	wait.For(t, time.Minute, func() (bool, error) {
		err := w.DB.Raw(`SELECT ticket_id FROM bonds WHERE integration_id = ? AND external_reference = ?`, w.in.ID, made.Key).
			Scan(&madeTicket).Error
		return err == nil && madeTicket != 0, err
	}, "the issue made in Jira polled here")
	got := ticket(madeTicket)
	require.Equal(t, "VPN drops every hour", got.ShortDescription)
	require.Equal(t, 2, got.Priority)
	require.Equal(t, "Seen in Lyon", got.WorkNotes)
	require.Equal(t, []string{"CreateIncident"}, w.inboundMessages(t, made.Key), "one create, with the latest values")
	require.Zero(t, w.runs(t).Refused, "no item refused")
	require.Equal(t, http.StatusNoContent, agent("PUT", "/rest/api/2/issue/"+made.Key, map[string]any{"fields": map[string]any{
		"summary": "VPN drops every two hours"}}))
	wait.For(t, time.Minute, func() (bool, error) {
		got := ticket(madeTicket)
		return got.ShortDescription == "VPN drops every two hours", fmt.Errorf("ticket: %q", got.ShortDescription)
	}, "the later change polled here")
	require.Equal(t, []string{"CreateIncident", "UpdateIncident"}, w.inboundMessages(t, made.Key))

	// Create here -> an issue there, priority through the value map.
	tk, err := w.Store.CreateTicket(ctx, w.Analyst, store.TicketInput{ShortDescription: "Mail server down",
		Description: "No mail since 9:00", Priority: 2})
	require.NoError(t, err)
	settled("the create delivered")
	var key string
	require.NoError(t, w.DB.Raw(`SELECT external_reference FROM bonds WHERE integration_id = ? AND ticket_id = ?`, w.in.ID, tk.ID).
		Scan(&key).Error)
	require.Regexp(t, `^SIM-\d+$`, key, "the Response script stored the issue key as the bond's reference")
	is := get(key)
	require.Equal(t, "Mail server down", is.Fields.Summary)
	require.Equal(t, "No mail since 9:00", is.Fields.Description)
	require.Equal(t, "High", is.Fields.Priority.Name)
	require.Contains(t, is.Fields.Labels, "unifi")

	// Changes there, in order -> polled here.
	require.Equal(t, http.StatusNoContent, agent("PUT", "/rest/api/2/issue/"+key, map[string]any{"fields": map[string]any{
		"summary": "Mail server down (first)", "priority": map[string]any{"name": "Highest"}}}))
	require.Equal(t, http.StatusNoContent, agent("PUT", "/rest/api/2/issue/"+key, map[string]any{"fields": map[string]any{
		"summary": "Mail server down in Paris"}}))
	require.Equal(t, http.StatusCreated, agent("POST", "/rest/api/2/issue/"+key+"/comment", map[string]any{"body": "Rebooted the relay"}))
	wait.For(t, time.Minute, func() (bool, error) {
		got := ticket(tk.ID)
		return got.ShortDescription == "Mail server down in Paris" && got.Priority == 1 && got.WorkNotes == "Rebooted the relay",
			fmt.Errorf("ticket: %q priority %d notes %q", got.ShortDescription, got.Priority, got.WorkNotes)
	}, "the changes there polled here")

	// A work note here -> a comment there.
	cur := ticket(tk.ID)
	in := store.TicketInputOf(cur)
	in.WorkNotes = "Users told"
	_, err = w.Store.UpdateTicket(ctx, w.Analyst, cur.ID, cur.Version, in)
	require.NoError(t, err)
	settled("the update delivered")
	is = get(key)
	last := is.Fields.Comment.Comments[len(is.Fields.Comment.Comments)-1]
	require.Equal(t, "[Unifi] Users told", last.Body)

	// Resolved there -> resolved here.
	require.Equal(t, http.StatusNoContent, agent("POST", "/rest/api/2/issue/"+key+"/transitions",
		map[string]any{"transition": map[string]any{"id": "31"}}))
	wait.For(t, time.Minute, func() (bool, error) {
		got := ticket(tk.ID)
		return got.State == "Resolved", fmt.Errorf("state %q", got.State)
	}, "the resolve there polled here")

	// Resolved here -> Done there (a second ticket), through a 429 rate limit.
	tk2, err := w.Store.CreateTicket(ctx, w.Analyst, store.TicketInput{ShortDescription: "Printer jam", Priority: 4})
	require.NoError(t, err)
	settled("the second create delivered")
	var key2 string
	require.NoError(t, w.DB.Raw(`SELECT external_reference FROM bonds WHERE integration_id = ? AND ticket_id = ?`, w.in.ID, tk2.ID).
		Scan(&key2).Error)
	require.Equal(t, "Low", get(key2).Fields.Priority.Name)
	// Jira answers 429 with Retry-After until the poller has met it, then
	// lets requests through again. (Met through a rate limit of one request a
	// second instead, the 429 depended on when the poller's requests fell:
	// on a busy machine they came a second apart and never met it.)
	require.Equal(t, http.StatusCreated, agent("POST", "/rest/api/2/issue/"+key2+"/comment", map[string]any{"body": "Paper loaded"}))
	retryAfter := 1
	w.sim.SetControl(t, sim.Control{Control: failmode.Control{Mode: failmode.Fail429, RetryAfterS: &retryAfter}})
	wait.For(t, time.Minute, func() (bool, error) {
		var limited int
		err := w.DB.Raw(`SELECT count(*) FROM http_requests h JOIN poll_requests p ON p.id = h.poll_request_id
			WHERE p.poller_id = ? AND h.response_status = 429`, w.poller).Scan(&limited).Error
		return limited > 0, err
	}, "the poller met 429")
	w.sim.SetMode(t, failmode.OK)
	wait.For(t, time.Minute, func() (bool, error) {
		return ticket(tk2.ID).WorkNotes == "Paper loaded", nil
	}, "the comment polled after the 429s")
	cur = ticket(tk2.ID)
	in = store.TicketInputOf(cur)
	in.State = "Resolved"
	_, err = w.Store.UpdateTicket(ctx, w.Analyst, cur.ID, cur.Version, in)
	require.NoError(t, err)
	settled("the resolve delivered")
	require.Equal(t, "Done", get(key2).Fields.Status.Name)
}
