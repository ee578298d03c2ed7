package inbound_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/inbound"
)

// TestInboundGroupAnswerData: updates applied in a group are answered, each,
// with the ticket as that message left it, through the response message's
// outbound fields, as the one-message path answers (TestInboundAnswerData
// in handlers).
func TestInboundGroupAnswerData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	b := setupGroup(t)
	var in models.Integration
	require.NoError(t, b.db.Where("name = ?", models.DemoIntegrationName).Take(&in).Error)
	resp := models.Message{IntegrationID: in.ID, Name: "IncidentResponse", Type: models.MessageResponse,
		Direction: models.Bidirectional, Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore,
		AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{}}}
	require.NoError(t, b.db.Create(&resp).Error)
	for i, f := range []models.Field{
		{TicketField: models.NumberField, Property: "ticket_number", Direction: models.Outbound},
		{TicketField: "short_description", Property: "title", Direction: models.Outbound},
	} {
		f.MessageID, f.Position, f.ValueMap.V = resp.ID, i, map[string]string{}
		require.NoError(t, b.db.Create(&f).Error)
	}
	require.NoError(t, b.db.Model(&models.Message{}).Where("integration_id = ? AND name = ?", in.ID, "UpdateIncident").
		Update("response_message_id", resp.ID).Error)
	ours := b.prepare(t, t0)

	res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "RU-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one")),
		inboundReq(t, "UpdateIncident", "RU-2", "EXT-A", ours["EXT-A"], t0.Add(20*time.Second), groupData("A two")),
		inboundReq(t, "UpdateIncident", "RU-3", "EXT-B", ours["EXT-B"], t0.Add(10*time.Second), groupData("B one")),
	})
	require.Equal(t, []bool{true, true, true}, byGroup, "the group decided them")
	for i, want := range []map[string]any{
		{"ticket_number": ours["EXT-A"], "title": "A one"},
		{"ticket_number": ours["EXT-A"], "title": "A two"},
		{"ticket_number": ours["EXT-B"], "title": "B one"},
	} {
		require.NoError(t, errs[i])
		require.Equal(t, want, res[i].Response.Data, "answer %d", i)
		require.Contains(t, string(res[i].Body), `"title":"`+want["title"].(string)+`"`, "the answer as sent and stored")
	}
}
