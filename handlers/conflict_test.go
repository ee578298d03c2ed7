package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
	"unifi/models/store"
)

// postEnvelope sends env to the app's demo inbound endpoint as the demo peer.
func postEnvelope(t *testing.T, app *handlerstest.App, env models.Envelope) models.Envelope {
	t.Helper()
	body, err := json.Marshal(env)
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, app.Server.URL+"/api/v1/integrations/demo/messages", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	var answer models.Envelope
	require.NoError(t, json.NewDecoder(res.Body).Decode(&answer))
	return answer
}

// TestConflictPages: a change of ours that lost to the remote side's later
// change of the same field is shown on the conflicts list, counted on the
// integration page and listed as an overwritten change on the ticket and
// bond pages, for every role that reads transactions.
func TestConflictPages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	app := handlerstest.New(t, nil)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	stamps := map[string]models.WireStamp{"short_description": {At: t0, By: "remote"}, "description": {At: t0, By: "remote"}}
	answer := postEnvelope(t, app, models.Envelope{Message: models.EnvelopeHeader{Name: "CreateIncident", TimeStamp: t0,
		SourceReference: "EXT-9", SourceID: "C-9"}, Data: map[string]any{"short_description": "Scanner jams",
		"description": "base"}, Stamps: &stamps})
	number := answer.Message.SourceReference
	k, err := app.Store.GetTicketByNumber(ctx, number)
	require.NoError(t, err)
	// Ours, now; theirs, made a minute later by their clock from the value
	// before ours: theirs wins and ours is overwritten.
	in := store.TicketInputOf(k)
	in.Description = "our change"
	_, err = app.Store.UpdateTicket(ctx, models.Actor{Name: "ann", Role: models.RoleAnalyst}, k.ID, k.Version, in)
	require.NoError(t, err)
	was := "base"
	later := time.Now().UTC().Add(time.Minute)
	stamps = map[string]models.WireStamp{"short_description": {At: t0, By: "remote"},
		"description": {At: later, By: "remote", Was: &was}}
	postEnvelope(t, app, models.Envelope{Message: models.EnvelopeHeader{Name: "UpdateIncident", TimeStamp: later,
		SourceReference: "EXT-9", TargetReference: number, SourceID: "U-9"},
		Data: map[string]any{"short_description": "Scanner jams", "description": "their change"}, Stamps: &stamps})
	k, err = app.Store.GetTicket(ctx, k.ID)
	require.NoError(t, err)
	require.Equal(t, "their change", k.Description)
	in2, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	var bondID int64
	require.NoError(t, app.Store.DB(ctx).Raw(`SELECT id FROM bonds WHERE ticket_id = ?`, k.ID).Scan(&bondID).Error)

	for _, u := range []struct{ name, password string }{{"admin", "admin-demo-1"}, {"analyst", "analyst-demo-1"}} {
		t.Run(u.name, func(t *testing.T) {
			c := app.Login(t, u.name, u.password)

			page := c.Get("/conflicts")
			require.Equal(t, http.StatusOK, page.StatusCode)
			rows := page.TestID(t, "conflicts").Find(`[data-testid="conflict-row"]`)
			require.Equal(t, 1, rows.Length())
			require.Equal(t, number, rows.Find(`[data-testid="conflict-ticket"]`).Text())
			require.Equal(t, "Description", rows.Find(`[data-testid="conflict-field"]`).Text())
			require.Equal(t, "their change", rows.Find(`[data-testid="conflict-kept"]`).Text())
			require.Equal(t, "our change", rows.Find(`[data-testid="conflict-lost"]`).Text())
			require.Contains(t, rows.Text(), "ours, changed")
			require.Contains(t, rows.Text(), "by ann")
			require.Equal(t, 1, page.TestID(t, "nav-conflicts").Length())

			page = c.Get(fmt.Sprintf("/conflicts?integration=%d", in2.ID+1000))
			require.Equal(t, 1, page.TestID(t, "conflicts-empty").Length(), "another integration has none")

			page = c.Get(fmt.Sprintf("/integrations/%d", in2.ID))
			require.Equal(t, http.StatusOK, page.StatusCode)
			require.Equal(t, "1", page.TestID(t, "conflicts-count").Text())
			require.Contains(t, page.TestID(t, "conflicts-resolved").Text(), "Conflicts resolved: 1")

			page = c.Get(fmt.Sprintf("/tickets/%d", k.ID))
			require.Equal(t, http.StatusOK, page.StatusCode)
			require.Equal(t, 1, page.TestID(t, "ticket-conflicts").Find(`[data-testid="conflict-row"]`).Length())
			require.Contains(t, page.TestID(t, "ticket-overwritten-note").Text(), "overwritten")
			require.Equal(t, "demo", strings.TrimSpace(page.TestID(t, "ticket-conflicts").Find(`[data-testid="conflict-bond"]`).Text()))

			page = c.Get(fmt.Sprintf("/bonds/%d", bondID))
			require.Equal(t, http.StatusOK, page.StatusCode)
			require.Equal(t, "our change", page.TestID(t, "bond-conflicts").Find(`[data-testid="conflict-lost"]`).Text())
			require.Contains(t, page.TestID(t, "bond-history").Text(), `concurrent edit of description: kept "their change" (theirs`)
		})
	}
}
