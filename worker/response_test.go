package worker_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/modelstest"
)

// TestResponseMessageData: a 2xx answer to a message that names a response
// message lands on the ticket through the response message's inbound fields,
// and its mapped number becomes the bond's reference, in the database
// transaction that records the attempt; the change sends nothing back.
// Data that does not fit changes nothing and leaves a note on the bond.
func TestResponseMessageData(t *testing.T) {
	t.Parallel()

	// answering is a remote that answers every message with data, and with
	// a source_reference that is not its number (a remote not of this
	// product): the response message's mapping decides the bond's reference.
	answering := func(t *testing.T, data map[string]any) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var env models.Envelope
			if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(models.Envelope{Message: models.EnvelopeHeader{Name: "Response",
				TimeStamp: time.Now().UTC(), SourceReference: "sys_id-0001", TargetReference: env.Message.SourceReference,
				SourceID: "R-" + env.Message.SourceID, TargetID: env.Message.SourceID}, Data: data,
				Status: &models.EnvelopeStatus{ProcessState: "Accepted"}})
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	withResponse := func(t *testing.T, data map[string]any) *testBundle {
		b := setup(t, &modelstest.IntegrationOpts{EndpointURL: answering(t, data)})
		resp := models.Message{IntegrationID: b.fx.Integration.ID, Name: "IncidentResponse", Type: models.MessageResponse,
			Direction: models.Bidirectional, Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore,
			AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{}}}
		require.NoError(t, b.db.Create(&resp).Error)
		for i, f := range []models.Field{
			{TicketField: models.NumberField, Property: "ticket_number", Direction: models.Inbound},
			{TicketField: "assignment_group", Property: "team", Direction: models.Inbound},
			{TicketField: "state", Property: "status",
				InboundMap: models.JSON[map[string]string]{V: map[string]string{"WIP": "In Progress"}}},
			{TicketField: "work_notes", Property: "notes", Direction: models.Outbound},
		} {
			f.MessageID, f.Position, f.ValueMap.V = resp.ID, i, map[string]string{}
			require.NoError(t, b.db.Create(&f).Error)
		}
		require.NoError(t, b.db.Model(&models.Message{}).Where("id = ?", b.fx.Messages["CreateIncident"].ID).
			Update("response_message_id", resp.ID).Error)
		return b
	}

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := withResponse(t, map[string]any{"ticket_number": "REM-0042", "team": "Network", "status": "WIP",
			"notes": "outbound only: not applied"})
		tk := b.createTicket(t, "answered with data")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})

		got, err := b.store.GetTicket(b.ctx, tk.ID)
		require.NoError(t, err)
		require.Equal(t, "Network", got.AssignmentGroup)
		require.Equal(t, "In Progress", got.State)
		require.Equal(t, tk.WorkNotes, got.WorkNotes, "an outbound-only field is not applied")
		require.Equal(t, tk.Number, got.Number, "the remote's number is not our ticket's")
		require.Equal(t, tk.Version+1, got.Version)
		txs := b.bondTransactions(t, tk.ID)
		require.Len(t, txs, 1, "the change from the answer sends nothing back")
		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.Equal(t, "REM-0042", bond.ExternalReference, "the mapped number, not the answer's source_reference")
		require.Equal(t, models.BondOpen, bond.State)
	})

	t.Run("DataDoesNotFit", func(t *testing.T) {
		t.Parallel()
		b := withResponse(t, map[string]any{"ticket_number": "REM-0043", "team": "Network", "status": "Exploded"})
		tk := b.createTicket(t, "answered with bad data")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})

		got, err := b.store.GetTicket(b.ctx, tk.ID)
		require.NoError(t, err)
		require.Equal(t, tk.AssignmentGroup, got.AssignmentGroup, "nothing applied")
		require.Equal(t, tk.Version, got.Version)
		txs := b.bondTransactions(t, tk.ID)
		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.Equal(t, "sys_id-0001", bond.ExternalReference, "the answer's source_reference, as without a response message")
		require.Contains(t, bond.History, txs[0].MessageIdent+`: the answer's data was not applied: value "Exploded" of field "status" has no mapping`)
	})
}
