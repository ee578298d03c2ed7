package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/modelstest"
	"unifi/models/store"
)

// The Designer's message rules where tickets change: the "fields" trigger and
// required outbound fields (docs/designer-messages.md).
func TestTicketMessageRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (*store.Store, *modelstest.Fixture) {
		db := testdb.New(t)
		fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})
		return store.NewStore(db, account.New(db, nil), nil), fx
	}
	messagesOf := func(t *testing.T, s *store.Store, ticketID int64) []int64 {
		var ids []int64
		require.NoError(t, s.DB(ctx).Model(&models.Transaction{}).Where("ticket_id = ?", ticketID).Order("seq").
			Pluck("message_id", &ids).Error)
		return ids
	}

	t.Run("FieldsTrigger", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		// Only the watched fields send PriorityChanged; UpdateIncident goes on every update.
		pc := models.Message{IntegrationID: fx.Integration.ID, Name: "PriorityChanged", Type: models.MessageUpdate,
			Direction: models.Outbound, Path: "priority", Trigger: models.TriggerFields, BondOwnership: models.OwnershipIgnore,
			TriggerFields: models.JSON[[]string]{V: []string{"priority", "urgency"}}}
		require.NoError(t, s.DB(ctx).Create(&pc).Error)
		require.NoError(t, s.DB(ctx).Create(&models.Field{MessageID: pc.ID, TicketField: "priority", Property: "p",
			ValueMap: models.JSON[map[string]string]{V: map[string]string{"1": "P1"}}}).Error)
		create, update, resolve := fx.Messages["CreateIncident"].ID, fx.Messages["UpdateIncident"].ID, fx.Messages["ResolveIncident"].ID

		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "watch me", Priority: 3})
		require.NoError(t, err)
		require.Equal(t, []int64{create}, messagesOf(t, s, tk.ID), "create is not a change of a field")

		in := store.TicketInputOf(tk)
		in.WorkNotes = "not watched"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		require.Equal(t, []int64{create, update}, messagesOf(t, s, tk.ID))

		in.Priority = 1
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		require.Equal(t, []int64{create, update, update, pc.ID}, messagesOf(t, s, tk.ID))

		in.State, in.Urgency = "Resolved", 1
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		require.Equal(t, []int64{create, update, update, pc.ID, resolve, pc.ID}, messagesOf(t, s, tk.ID))

		var stage models.Stage
		var txID int64
		require.NoError(t, s.DB(ctx).Model(&models.Transaction{}).Where("ticket_id = ? AND message_id = ?", tk.ID, pc.ID).
			Order("seq").Limit(1).Pluck("id", &txID).Error)
		require.NoError(t, s.DB(ctx).Where("transaction_id = ?", txID).Take(&stage).Error)
		require.Equal(t, map[string]any{"p": "P1"}, stage.Data.V)
	})

	t.Run("RequiredOutboundField", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		require.NoError(t, s.DB(ctx).Create(&models.Field{MessageID: fx.Messages["UpdateIncident"].ID,
			TicketField: "assignment_group", Property: "group", Required: true, Direction: models.Outbound}).Error)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "no group"})
		require.NoError(t, err, "the create message does not need the group")
		in := store.TicketInputOf(tk)
		in.WorkNotes = "update without a group"
		_, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "The remote system needs assignment_group (payload property group); fill it in.", ve.Fields["assignment_group"])
		got, err := s.GetTicket(ctx, tk.ID)
		require.NoError(t, err)
		require.Equal(t, 1, got.Version, "nothing stored")
		require.Len(t, messagesOf(t, s, tk.ID), 1)

		in.AssignmentGroup = "Network"
		_, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		require.Len(t, messagesOf(t, s, tk.ID), 2)
	})
}
