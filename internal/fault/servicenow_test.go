package fault_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/failmode"
	"unifi/internal/fault"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// snIncident is an incident as the simulator's /records lists it.
type snIncident map[string]string

// snWorld is a server process, the ServiceNow simulator (its webhook aimed
// at the server's raw route) and an integration made from the "ServiceNow
// Table API (webhook)" template through the server's form, as an admin would.
type snWorld struct {
	*fault.World
	sim *fault.SimProcess
	in  *models.Integration
}

func newSNWorld(t *testing.T) *snWorld {
	t.Helper()
	ctx := context.Background()
	w := fault.New(t, fault.Opts{})
	// Only the ServiceNow integration sends: the demo peer's stays out of it.
	require.NoError(t, w.DB.Exec("UPDATE integrations SET state = ? WHERE name = ?", models.IntegrationOff, models.DemoIntegrationName).Error)
	srv := w.Servers[0]
	const inUser, inPassword = "servicenow-in", "servicenow-in-password"
	acc := account.New(w.DB, nil)
	u, err := acc.CreateUser(ctx, models.Actor{Name: "test", Role: models.RoleAdmin},
		account.NewUserOpts{Name: inUser, Password: inPassword, Role: models.RoleIntegration})
	require.NoError(t, err)

	sim := fault.StartSim(t, fault.SimServiceNow, fault.SimOpts{Args: []string{
		"-webhook-url", srv.URL() + "/api/v1/integrations/servicenow/raw",
		"-webhook-user", inUser, "-webhook-password", inPassword, "-webhook-backoff", "20ms"}})

	admin := srv.Login(t, "admin", "admin-demo-1")
	code, body := admin.PostForm("/integrations/new/template", "/integrations/new/template", url.Values{
		"template": {"servicenow-table-api"}, "name": {"servicenow"}, "environment": {"Test"},
		"endpoint_url": {sim.URL()}, "username": {sim.User}, "token": {sim.Secret},
		"inbound_user_id": {fmt.Sprint(u.ID)}})
	require.Equal(t, http.StatusSeeOther, code, body)
	in, err := w.Store.GetIntegrationByName(ctx, "servicenow")
	require.NoError(t, err)
	// Quick retries, so the outage below ends in Error soon.
	require.NoError(t, w.DB.Exec("UPDATE integrations SET retry_delay_s = 1, retry_limit = 2 WHERE id = ?", in.ID).Error)
	return &snWorld{World: w, sim: sim, in: in}
}

// incident returns the simulator's incident with sys_id (with display values
// of the journal), or nil.
func (w *snWorld) incident(t *testing.T, sysID string) snIncident {
	t.Helper()
	var recs struct {
		Result []snIncident `json:"result"`
	}
	w.sim.Records(t, &recs)
	for _, r := range recs.Result {
		if r["sys_id"] == sysID {
			return r
		}
	}
	return nil
}

// bond is the ticket's bond on the ServiceNow integration.
func (w *snWorld) bond(t *testing.T, ticketID int64) models.Bond {
	t.Helper()
	var b models.Bond
	require.NoError(t, w.DB.Where("integration_id = ? AND ticket_id = ?", w.in.ID, ticketID).Take(&b).Error)
	return b
}

// settled waits until every transaction of the integration is finished and
// none is in Error.
func (w *snWorld) settled(t *testing.T, what string) {
	t.Helper()
	wait.For(t, time.Minute, func() (bool, error) {
		var open []string
		err := w.DB.Raw(`SELECT number || ' ' || state || ' ' || error FROM transactions WHERE integration_id = ?
			AND state NOT IN (?, ?)`, w.in.ID, models.Complete, models.Ignored).Scan(&open).Error
		return err == nil && len(open) == 0, fmt.Errorf("unfinished: %v (%v)", open, err)
	}, what)
}

func (w *snWorld) ticket(t *testing.T, id int64) *models.Ticket {
	t.Helper()
	var tk models.Ticket
	require.NoError(t, w.DB.Take(&tk, id).Error)
	return &tk
}

func (w *snWorld) update(t *testing.T, tk *models.Ticket, change func(*store.TicketInput)) *models.Ticket {
	t.Helper()
	in := store.TicketInputOf(tk)
	change(&in)
	out, err := w.Store.UpdateTicket(context.Background(), w.Analyst, tk.ID, tk.Version, in)
	require.NoError(t, err)
	return out
}

// agent changes an incident there as a service-desk agent (the webhook fires).
func (w *snWorld) agent(t *testing.T, sysID string, fields map[string]any) {
	t.Helper()
	require.Equal(t, http.StatusOK, w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, "PATCH",
		"/api/now/table/incident/"+sysID, fields, nil))
}

// TestServiceNowTemplate: an admin makes the integration from the template
// with the simulator's URL and credentials, and tickets flow both ways
// (docs/scripting.md, "ServiceNow").
func TestServiceNowTemplate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newSNWorld(t)

	// Create here -> an incident there, with priority and state through the value maps.
	tk, err := w.Store.CreateTicket(ctx, w.Analyst, store.TicketInput{ShortDescription: "Mail server down",
		Description: "No mail since 9:00", Priority: 2, AssignmentGroup: "Messaging", WorkNotes: "Checked the queue"})
	require.NoError(t, err)
	w.settled(t, "the create delivered")
	b := w.bond(t, tk.ID)
	require.Len(t, b.ExternalReference, 32, "the Response script stored the incident's sys_id")
	require.Equal(t, models.BondOpen, b.State)
	inc := w.incident(t, b.ExternalReference)
	require.Equal(t, "Mail server down", inc["short_description"])
	require.Equal(t, "No mail since 9:00", inc["description"])
	require.Equal(t, "1", inc["impact"])
	require.Equal(t, "2", inc["urgency"])
	require.Equal(t, "2", inc["priority"], "our priority 2 is ServiceNow's, derived from impact 1 and urgency 2")
	require.Equal(t, "1", inc["state"])
	require.Equal(t, tk.Number, inc["correlation_id"])
	require.Equal(t, "Messaging", inc["assignment_group"])
	require.Contains(t, inc["work_notes"], "Checked the queue")

	// Update here -> PATCH there; the work note goes once, not again with a later change.
	tk = w.update(t, tk, func(in *store.TicketInput) { in.State, in.Priority, in.WorkNotes = "In Progress", 1, "Restarted postfix" })
	tk = w.update(t, tk, func(in *store.TicketInput) { in.ShortDescription = "Mail server down (all sites)" })
	w.settled(t, "the updates delivered")
	inc = w.incident(t, b.ExternalReference)
	require.Equal(t, "2", inc["state"])
	require.Equal(t, "1", inc["priority"])
	require.Equal(t, "Mail server down (all sites)", inc["short_description"])
	require.Equal(t, 1, strings.Count(inc["work_notes"], "Restarted postfix"), inc["work_notes"])
	require.Equal(t, "3", inc["sys_mod_count"], "one change there per transaction, in order")

	// Updates there -> webhook -> here, in order; the last one wins.
	w.agent(t, b.ExternalReference, map[string]any{"work_notes": "Agent: disk full on mx1", "state": "3"})
	w.agent(t, b.ExternalReference, map[string]any{"impact": "2", "urgency": "2"})
	w.agent(t, b.ExternalReference, map[string]any{"short_description": "Mail down: disk full", "state": "2"})
	wait.For(t, 30*time.Second, func() (bool, error) {
		got := w.ticket(t, tk.ID)
		return got.ShortDescription == "Mail down: disk full", fmt.Errorf("ticket %+v", got)
	}, "the agent's changes applied here")
	got := w.ticket(t, tk.ID)
	require.Equal(t, "In Progress", got.State)
	require.Equal(t, 3, got.Priority, "impact 2 / urgency 2 is priority 3 there and here")
	require.Equal(t, "Agent: disk full on mx1", got.WorkNotes)
	var seqs []string
	require.NoError(t, w.DB.Raw(`SELECT message_ident FROM transactions WHERE bond_id = ? AND direction = ? ORDER BY seq`,
		b.ID, models.Inbound).Scan(&seqs).Error)
	require.Equal(t, []string{b.ExternalReference + ":4", b.ExternalReference + ":5", b.ExternalReference + ":6"}, seqs,
		"the webhook's changes in their order on the bond")
	w.settled(t, "nothing echoed back")
	require.Equal(t, "6", w.incident(t, b.ExternalReference)["sys_mod_count"], "our applying their change sent nothing back")

	// A change there our rules refuse: Rejected, with its process error on the bond for the analyst.
	w.agent(t, b.ExternalReference, map[string]any{"short_description": ""})
	wait.For(t, 30*time.Second, func() (bool, error) {
		return w.bond(t, tk.ID).ProcessError != "", nil
	}, "the process error")
	require.Equal(t, "The short description is empty.", w.bond(t, tk.ID).ProcessError)
	analyst := w.Servers[0].Login(t, "analyst", "analyst-demo-1")
	code, page := analyst.Get(fmt.Sprintf("/tickets/%d", tk.ID))
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, "The short description is empty.")
	require.Equal(t, "Mail down: disk full", w.ticket(t, tk.ID).ShortDescription, "nothing of it applied")

	// Resolve here -> resolved there, with the resolution code and notes the data policy asks for.
	tk = w.ticket(t, tk.ID)
	w.update(t, tk, func(in *store.TicketInput) { in.State, in.WorkNotes = "Resolved", "Freed 20 GB on mx1" })
	w.settled(t, "the resolve delivered")
	inc = w.incident(t, b.ExternalReference)
	require.Equal(t, "6", inc["state"])
	require.Equal(t, "Solved (Permanently)", inc["close_code"], "from the connection variable")
	require.Equal(t, "Freed 20 GB on mx1", inc["close_notes"])

	// Created and resolved there -> created and resolved here.
	var created struct {
		Result snIncident `json:"result"`
	}
	require.Equal(t, http.StatusCreated, w.sim.CallAs(t, w.sim.AgentUser, w.sim.AgentSecret, "POST", "/api/now/table/incident",
		map[string]any{"short_description": "VPN drops", "impact": "3", "urgency": "3", "work_notes": "User reports"}, &created))
	sysID := created.Result["sys_id"]
	var theirs models.Bond
	wait.For(t, 30*time.Second, func() (bool, error) {
		err := w.DB.Where("integration_id = ? AND external_reference = ?", w.in.ID, sysID).Take(&theirs).Error
		return err == nil, err
	}, "the incident's ticket here")
	vpn := w.ticket(t, theirs.TicketID)
	require.Equal(t, "VPN drops", vpn.ShortDescription)
	require.Equal(t, 5, vpn.Priority)
	require.Equal(t, "New", vpn.State)
	w.agent(t, sysID, map[string]any{"state": "6", "close_code": "Solved (Work Around)", "close_notes": "Reinstalled client",
		"work_notes": "Closing"})
	wait.For(t, 30*time.Second, func() (bool, error) {
		return w.ticket(t, vpn.ID).State == "Resolved", nil
	}, "resolved here")
	require.Equal(t, "Closing", w.ticket(t, vpn.ID).WorkNotes)
}

// TestServiceNowOutage: the simulator refuses connections while tickets are
// created and changed here; each bond's head ends in Error and the rest wait;
// after it is back, one Repair delivers everything, in order.
func TestServiceNowOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	w := newSNWorld(t)
	w.sim.SetMode(t, failmode.Refuse)
	var tks []*models.Ticket
	for i := range 3 {
		tk, err := w.Store.CreateTicket(ctx, w.Analyst, store.TicketInput{ShortDescription: fmt.Sprintf("Outage ticket %d", i), Priority: 3})
		require.NoError(t, err)
		tk = w.update(t, tk, func(in *store.TicketInput) { in.WorkNotes = "first note" })
		tk = w.update(t, tk, func(in *store.TicketInput) { in.WorkNotes, in.State = "second note", "In Progress" })
		tks = append(tks, tk)
	}
	wait.For(t, 2*time.Minute, func() (bool, error) {
		s := w.States(t)
		return s[models.Error] == 3 && s[models.Queued] == 6, fmt.Errorf("states %v", s)
	}, "every bond's head in Error, the rest Queued")
	var errs []string
	require.NoError(t, w.DB.Raw(`SELECT error FROM transactions WHERE integration_id = ? AND state = ?`, w.in.ID, models.Error).Scan(&errs).Error)
	for _, e := range errs {
		require.Contains(t, e, "Could not reach")
	}
	var none struct {
		Total int `json:"total"`
	}
	w.sim.Records(t, &none)
	require.Zero(t, none.Total, "nothing got through")

	w.sim.SetMode(t, failmode.OK)
	admin := w.Servers[0].Login(t, "admin", "admin-demo-1")
	page := fmt.Sprintf("/integrations/%d", w.in.ID)
	code, body := admin.PostForm(page, page+"/repair", url.Values{})
	require.Equal(t, http.StatusSeeOther, code, body)
	w.settled(t, "one Repair: everything delivered")
	for _, tk := range tks {
		b := w.bond(t, tk.ID)
		require.NotEmpty(t, b.ExternalReference, "the replayed create stored the sys_id")
		inc := w.incident(t, b.ExternalReference)
		require.Equal(t, tk.ShortDescription, inc["short_description"])
		require.Equal(t, "2", inc["state"])
		require.Equal(t, "2", inc["sys_mod_count"], "create, then the two updates")
		notes := inc["work_notes"] // newest first
		require.Less(t, strings.Index(notes, "second note"), strings.Index(notes, "first note"), notes)
	}
}
