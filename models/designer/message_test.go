package designer_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/designer"
	"unifi/models/store"
)

func TestMessageDesigner(t *testing.T) {
	t.Parallel()
	newDesigner := func(b *bundle) *designer.Designer {
		return designer.New(store.NewStore(b.db, account.New(b.db, nil), nil), nil)
	}

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		f := designer.NewMessageForm()
		f.Name, f.Path, f.Trigger, f.TriggerFields = "PriorityChanged", "priority", "fields", []string{"priority"}
		f.AllowedBondStates = []string{"Open"}
		m, err := d.CreateMessage(b.ctx, b.f.Admin, b.f.Integration.ID, f)
		require.NoError(t, err)
		require.Equal(t, 1, m.Version)

		ff := designer.NewFieldForm()
		ff.TicketField, ff.Property = "priority", "prio"
		ff.Rows = []models.ValueRow{{Ticket: "1", Payload: "Critical", Direction: models.Bidirectional},
			{Ticket: "4", Payload: "Low", Direction: models.Bidirectional}, {Ticket: "5", Payload: "Low", Direction: models.Outbound},
			{}}
		fl, err := d.CreateField(b.ctx, b.f.Admin, m.ID, ff)
		require.NoError(t, err)
		stored, err := d.GetField(b.ctx, fl.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"1": "Critical", "4": "Low", "5": "Low"}, stored.ValueMap.V)
		require.Equal(t, map[string]string{"Critical": "1", "Low": "4"}, stored.InboundMap.V)

		// Edit: the trigger now fires on update; the audit has the before and after.
		f.Trigger = "update"
		m, err = d.UpdateMessage(b.ctx, b.f.Admin, m.ID, 1, f)
		require.NoError(t, err)
		require.Equal(t, 2, m.Version)
		require.Empty(t, m.TriggerFields.V, "trigger fields of another trigger are cleared")
		var acts []models.ActivityLog
		require.NoError(t, b.db.Where("record_type = ? AND record_id = ?", "message", m.ID).Order("id").Find(&acts).Error)
		require.Len(t, acts, 2)
		require.Equal(t, "fields", acts[1].Before.V["trigger"])
		require.Equal(t, "update", acts[1].After.V["trigger"])

		_, err = d.UpdateMessage(b.ctx, b.f.Admin, m.ID, 1, f)
		var stale *designer.StaleVersionError
		require.ErrorAs(t, err, &stale)

		set, err := d.Messages(b.ctx, b.f.Integration.ID)
		require.NoError(t, err)
		require.Len(t, set.Fields[m.ID], 1)

		// Delete: refused while another message names it, or once a transaction used it.
		af := designer.NewMessageForm()
		af.Name, af.Async, af.ReceiptMessageID = "AsyncOne", true, fmt.Sprint(b.f.Messages["Receipt"].ID)
		_, err = d.CreateMessage(b.ctx, b.f.Admin, b.f.Integration.ID, af)
		require.NoError(t, err)
		_, err = d.DeleteMessage(b.ctx, b.f.Admin, b.f.Messages["Receipt"].ID, 1)
		var ce *models.ConflictError
		require.ErrorAs(t, err, &ce)
		require.Contains(t, ce.Reason, "names it as its receipt or response message")
		st := store.NewStore(b.db, account.New(b.db, nil), nil)
		_, err = st.CreateTicket(b.ctx, b.f.Analyst, store.TicketInput{ShortDescription: "history"})
		require.NoError(t, err)
		_, err = d.DeleteMessage(b.ctx, b.f.Admin, b.f.Messages["CreateIncident"].ID, 1)
		require.ErrorAs(t, err, &ce)
		require.Contains(t, ce.Reason, "1 transactions used it")
		_, err = d.DeleteMessage(b.ctx, b.f.Admin, m.ID, m.Version)
		require.NoError(t, err)
		var left int64
		require.NoError(t, b.db.Model(&models.Field{}).Where("message_id = ?", m.ID).Count(&left).Error)
		require.Zero(t, left, "its fields went with it")
	})

	t.Run("RefusedStoresNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		f := designer.NewMessageForm()
		f.Name, f.Async, f.ReceiptMessageID = "UpdateIncident", true, "abc"
		_, err := d.CreateMessage(b.ctx, b.f.Admin, b.f.Integration.ID, f)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "This integration has a message named UpdateIncident already.", ve.Fields["name"])
		require.Equal(t, "Choose a message of type Receipt of this integration.", ve.Fields["receipt_message"])

		ff := designer.NewFieldForm()
		ff.TicketField, ff.Property = "priority", "prio2"
		ff.Rows = []models.ValueRow{{Ticket: "1", Payload: "Critical", Direction: models.Bidirectional},
			{Ticket: "2", Payload: "Critical", Direction: models.Bidirectional}}
		_, err = d.CreateField(b.ctx, b.f.Admin, b.f.Messages["UpdateIncident"].ID, ff)
		require.ErrorAs(t, err, &ve)
		require.Contains(t, ve.Fields["value_map"], `Payload value "Critical" is in two rows`)
		require.Equal(t, "This message maps priority already (to priority).", ve.Fields["ticket_field"])

		var n int64
		require.NoError(t, b.db.Model(&models.ActivityLog{}).Where("record_type IN ('message', 'field')").Count(&n).Error)
		require.Zero(t, n)
	})

	// A message maps its process's own fields (custom.<name>) and watches
	// them in its trigger; a name that is no field of the process is refused.
	t.Run("ProcessField", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		ff := designer.NewFieldForm()
		ff.TicketField, ff.Property = "custom.risk", "risk"
		_, err := d.CreateField(b.ctx, b.f.Admin, b.f.Messages["UpdateIncident"].ID, ff)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "Choose a ticket field of this process.", ve.Fields["ticket_field"])

		require.NoError(t, b.db.Create(&models.ProcessField{ProcessID: b.f.Integration.ProcessID, Name: "risk",
			Label: "Risk", Type: models.FieldText, Version: 1}).Error)
		set, err := d.Messages(b.ctx, b.f.Integration.ID)
		require.NoError(t, err)
		require.Equal(t, "custom.risk", set.TicketFields[len(set.TicketFields)-1])
		fl, err := d.CreateField(b.ctx, b.f.Admin, b.f.Messages["UpdateIncident"].ID, ff)
		require.NoError(t, err)
		ff.Property = "risk_level"
		_, err = d.UpdateField(b.ctx, b.f.Admin, fl.ID, fl.Version, ff)
		require.NoError(t, err)

		f := designer.NewMessageForm()
		f.Name, f.Trigger, f.TriggerFields = "RiskChanged", "fields", []string{"custom.risk"}
		_, err = d.CreateMessage(b.ctx, b.f.Admin, b.f.Integration.ID, f)
		require.NoError(t, err)
	})

	t.Run("ResponseAction", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		f := designer.ResponseActionForm{StatusCode: "409", SetTransactionState: "5", SetProcessState: "2",
			BondNote: "exists already", MessageID: "", SetIntegrationState: "Paused"}
		a, err := d.CreateResponseAction(b.ctx, b.f.Admin, b.f.Integration.ID, f)
		require.NoError(t, err)
		require.Equal(t, models.Complete, *a.SetTransactionState)
		_, err = d.CreateResponseAction(b.ctx, b.f.Admin, b.f.Integration.ID, f)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "There is a response action for this status and message already; edit that one.", ve.Fields["status_code"])
		f.Retry = true
		_, err = d.UpdateResponseAction(b.ctx, b.f.Admin, a.ID, 1, f)
		require.ErrorAs(t, err, &ve)
		require.Contains(t, ve.Fields["set_transaction_state"], "untick Retry")
	})

	// Delete: versioned (a form opened before an edit gets the 409 with
	// what changed), audited with the whole record as before, and only an
	// integration's own action (the global default is not the Designer's).
	t.Run("ResponseActionDelete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		f := designer.ResponseActionForm{StatusCode: "503", Retry: true, SetIntegrationStatus: "Down", Description: "maintenance"}
		a, err := d.CreateResponseAction(b.ctx, b.f.Admin, b.f.Integration.ID, f)
		require.NoError(t, err)
		f.Description = "maintenance window"
		_, err = d.UpdateResponseAction(b.ctx, b.f.Admin, a.ID, 1, f)
		require.NoError(t, err)

		_, err = d.DeleteResponseAction(b.ctx, b.f.Admin, a.ID, 1)
		var stale *designer.StaleVersionError
		require.ErrorAs(t, err, &stale, "deleting what was shown before the edit")
		require.Equal(t, 2, stale.Current)
		require.ErrorIs(t, err, models.ErrConflict)
		_, err = d.GetResponseAction(b.ctx, a.ID)
		require.NoError(t, err, "a refused delete leaves it")

		gone, err := d.DeleteResponseAction(b.ctx, b.f.Admin, a.ID, 2)
		require.NoError(t, err)
		require.Equal(t, 503, gone.StatusCode)
		_, err = d.GetResponseAction(b.ctx, a.ID)
		require.ErrorIs(t, err, models.ErrNotFound)
		var log models.ActivityLog
		require.NoError(t, b.db.Where("action = ? AND record_id = ?", "delete response_action", a.ID).Take(&log).Error)
		require.Equal(t, b.f.Admin.Name, log.UserName)
		require.Equal(t, "maintenance window", log.Before.V["description"])
		require.EqualValues(t, 503, log.Before.V["status_code"])
		require.Empty(t, log.After.V)

		var global models.ResponseAction
		require.NoError(t, b.db.Where("integration_id IS NULL").Take(&global).Error)
		_, err = d.DeleteResponseAction(b.ctx, b.f.Admin, global.ID, global.Version)
		require.ErrorIs(t, err, models.ErrNotFound, "the global default is not the Designer's to delete")
		_, err = d.DeleteResponseAction(b.ctx, b.f.Admin, a.ID, 2)
		require.ErrorIs(t, err, models.ErrNotFound, "deleted twice")
	})
}
