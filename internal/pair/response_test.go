package pair_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/pair"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/store"
)

// TestTwoInstancesResponseMessage: both instances give their Create message
// a Response message that maps the ticket's number (ticket_number) and the
// assignment group (team, "Second line" when empty) both ways. B answers A's
// Create with its new ticket's number and group in the answer's data; A maps
// the number onto its bond as the external reference and the group onto its
// ticket, without sending the change back.
func TestTwoInstancesResponseMessage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := startPair(t)
	for _, i := range []*pair.Instance{a, b} {
		resp := models.Message{IntegrationID: i.Integration.ID, Name: "IncidentResponse", Type: models.MessageResponse,
			Direction: models.Bidirectional, Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore,
			AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{}}}
		require.NoError(t, i.DB.Create(&resp).Error)
		for n, f := range []models.Field{
			{TicketField: models.NumberField, Property: "ticket_number"},
			// Sent as "Second line" when the ticket has no group: what the
			// answer sets on A's ticket.
			{TicketField: "assignment_group", Property: "team", Default: "Second line"},
		} {
			f.MessageID, f.Position, f.Direction, f.ValueMap.V = resp.ID, n, models.Bidirectional, map[string]string{}
			require.NoError(t, i.DB.Create(&f).Error)
		}
		require.NoError(t, i.DB.Model(&models.Message{}).Where("integration_id = ? AND name = ?", i.Integration.ID,
			"CreateIncident").Update("response_message_id", resp.ID).Error)
		// The change notifies every process within a second; dropped here
		// at once, so that the Create below is sent under it.
		i.Pool.ConfigChanged(ctx)
	}

	// B numbers its tickets from 500: the two numbers differ, so the test
	// tells them apart.
	require.NoError(t, b.DB.Exec("SELECT setval('ticket_number_seq', 500)").Error)

	tkA, err := a.Store.CreateTicket(ctx, models.SystemActor, store.TicketInput{ShortDescription: "Answered with a number",
		Priority: 3, Urgency: 2, Impact: 2})
	require.NoError(t, err)
	wait.For(t, 30*time.Second, bothSettled(t, a, b), "both sides complete")
	tkB, ok := ticketBy(t, b.DB, "short_description = ?", "Answered with a number")
	require.True(t, ok)
	require.NotEqual(t, tkA.Number, tkB.Number, "the two numbers differ, so the test tells them apart")

	bondA := bondOf(t, a.DB, tkA.ID)
	require.Equal(t, tkB.Number, bondA.ExternalReference, "A's bond holds B's ticket number")
	out := transactionsOf(t, a.DB, bondA.ID, models.Outbound)
	require.Len(t, out, 1, "the answer's data sent nothing back")
	var req models.HTTPRequest
	require.NoError(t, a.DB.Where("transaction_id = ? AND response_status = 200", out[0].ID).Order("id").First(&req).Error)
	var answer struct {
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(req.ResponseBody), &answer), req.ResponseBody)
	require.Equal(t, map[string]any{"ticket_number": tkB.Number, "team": "Second line"}, answer.Data,
		"B's answer carried its number and group")
	got, err := a.Store.GetTicket(ctx, tkA.ID)
	require.NoError(t, err)
	require.Equal(t, tkA.Number, got.Number, "A's ticket keeps its own number")
	require.Equal(t, "Second line", got.AssignmentGroup, "the answer's data landed on A's ticket")
	require.Empty(t, tkB.AssignmentGroup, "B's own ticket has no group: the default is the answer's")
}
