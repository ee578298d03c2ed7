package handlers_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/models"
)

// addResponseMessage gives the messages named of integration integrationID
// a response message that maps our number out (ticket_number), the state
// both ways (status, "In Progress" as "WIP") and the short description in
// only (never in an answer).
func addResponseMessage(t *testing.T, db *gorm.DB, integrationID int64, names ...string) models.Message {
	t.Helper()
	resp := models.Message{IntegrationID: integrationID, Name: "IncidentResponse", Type: models.MessageResponse,
		Direction: models.Bidirectional, Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore,
		AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{}}}
	require.NoError(t, db.Create(&resp).Error)
	for i, f := range []models.Field{
		{TicketField: models.NumberField, Property: "ticket_number", Direction: models.Outbound},
		{TicketField: "state", Property: "status", Direction: models.Bidirectional,
			ValueMap: models.JSON[map[string]string]{V: map[string]string{"In Progress": "WIP"}}},
		{TicketField: "short_description", Property: "title", Direction: models.Inbound},
	} {
		f.MessageID, f.Position = resp.ID, i
		if f.ValueMap.V == nil {
			f.ValueMap.V = map[string]string{}
		}
		require.NoError(t, db.Create(&f).Error)
	}
	require.NoError(t, db.Model(&models.Message{}).Where("integration_id = ? AND name IN ?", integrationID, names).
		Update("response_message_id", resp.ID).Error)
	return resp
}

// TestInboundAnswerData: a message whose response message has fields is
// answered with the ticket as the message left it, through the response
// message's outbound fields; a rejected message, and a message with no
// response message, with empty data. The answer stored in the HTTP Request
// record is the one sent.
func TestInboundAnswerData(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	addResponseMessage(t, b.db, b.in.ID, "CreateIncident", "UpdateIncident")

	a := b.post(t, envelope("CreateIncident", "RESP-C1", "EXT-R1", "", time.Now(), createData("Answered")))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	ours := a.Message.SourceReference
	require.Equal(t, map[string]any{"ticket_number": ours, "status": "New"}, a.Data,
		"our number and state; the inbound-only field is not in the answer")
	var stored struct {
		Data map[string]any `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(b.lastRequest(t).ResponseBody), &stored))
	require.Equal(t, a.Data, stored.Data, "the HTTP Request record holds the answer sent")

	d := createData("Answered")
	d["state"] = "in_progress"
	a = b.post(t, envelope("UpdateIncident", "RESP-U1", "EXT-R1", ours, time.Now(), d))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	require.Equal(t, "Accepted", a.Stat.ProcessState)
	require.Equal(t, map[string]any{"ticket_number": ours, "status": "WIP"}, a.Data, "the ticket after the update")

	d["priority"] = "Nonsense"
	a = b.post(t, envelope("UpdateIncident", "RESP-U2", "EXT-R1", ours, time.Now(), d))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	require.Equal(t, "Rejected", a.Stat.ProcessState)
	require.Empty(t, a.Data, "a rejected message changed nothing to tell")

	require.NoError(t, b.db.Model(&models.Message{}).Where("integration_id = ? AND name = ?", b.in.ID, "UpdateIncident").
		Update("response_message_id", nil).Error)
	delete(d, "priority")
	a = b.post(t, envelope("UpdateIncident", "RESP-U3", "EXT-R1", ours, time.Now(), d))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	require.Equal(t, "Accepted", a.Stat.ProcessState)
	require.Empty(t, a.Data, "no response message: empty data")
}
