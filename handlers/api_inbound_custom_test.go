package handlers_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
)

// TestInboundCustomField: a Create message whose field maps custom.risk
// stores the value on the new ticket (through the value map); a value that
// does not fit the process field is refused with the reason; an Update
// changes it, or is Rejected with the field's reason as its process error;
// an outbound message maps the same field back.
func TestInboundCustomField(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	var incident models.Process
	require.NoError(t, b.db.Where("name = ?", "Incident").Take(&incident).Error)
	require.NoError(t, b.db.Create(&models.ProcessField{ProcessID: incident.ID, Name: "risk", Label: "Risk",
		Type: models.FieldChoice, Choices: models.JSON[[]string]{V: []string{"Low", "High"}}, Version: 1}).Error)
	var create models.Message
	require.NoError(t, b.db.Where("integration_id = ? AND name = ?", b.in.ID, "CreateIncident").Take(&create).Error)
	require.NoError(t, b.db.Create(&models.Field{MessageID: create.ID, TicketField: "custom.risk", Property: "risk",
		ValueMap: models.JSON[map[string]string]{V: map[string]string{"High": "H", "Low": "L"}}, Position: 99}).Error)

	t.Run("Success", func(t *testing.T) {
		d := createData("With risk")
		d["risk"] = "H"
		a := b.post(t, envelope("CreateIncident", "CR-1", "EXT-CR-1", "", time.Now(), d))
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		var tk models.Ticket
		require.NoError(t, b.db.Where("number = ?", a.Message.SourceReference).Take(&tk).Error)
		require.Equal(t, map[string]any{"risk": "High"}, tk.Custom.V)

		out, err := models.MapOutbound(&tk, []models.Field{{TicketField: "custom.risk", Property: "risk",
			ValueMap: models.JSON[map[string]string]{V: map[string]string{"High": "H"}}}})
		require.NoError(t, err)
		require.Equal(t, map[string]any{"risk": "H"}, out)
	})
	t.Run("ValueDoesNotFit", func(t *testing.T) {
		// The value map lets "Medium" through untouched only when the map
		// is empty; make the map pass it, so the process field refuses it.
		require.NoError(t, b.db.Model(&models.Field{}).Where("message_id = ? AND ticket_field = ?", create.ID, "custom.risk").
			Update("value_map", `{"High":"H","Low":"L","Medium":"M"}`).Error)
		d := createData("Bad risk")
		d["risk"] = "M"
		before := b.snapshot(t)
		a := b.post(t, envelope("CreateIncident", "CR-2", "EXT-CR-2", "", time.Now(), d))
		require.Equal(t, http.StatusUnprocessableEntity, a.Status, a.Raw)
		require.Contains(t, a.Error, `Risk must be one of Low, High (not "Medium")`)
		require.Equal(t, before.Fingerprint, b.snapshot(t).Fingerprint, "no ticket stored")
	})
	t.Run("Update", func(t *testing.T) {
		var update models.Message
		require.NoError(t, b.db.Where("integration_id = ? AND name = ?", b.in.ID, "UpdateIncident").Take(&update).Error)
		require.NoError(t, b.db.Create(&models.Field{MessageID: update.ID, TicketField: "custom.risk", Property: "risk",
			ValueMap: models.JSON[map[string]string]{V: map[string]string{"High": "H", "Low": "L", "Medium": "M"}}, Position: 99}).Error)
		d := createData("Will update")
		d["risk"] = "H"
		a := b.post(t, envelope("CreateIncident", "CR-3", "EXT-CR-3", "", time.Now(), d))
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		ours := a.Message.SourceReference

		d["risk"] = "L"
		a = b.post(t, envelope("UpdateIncident", "UP-1", "EXT-CR-3", ours, time.Now(), d))
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		var tk models.Ticket
		require.NoError(t, b.db.Where("number = ?", ours).Take(&tk).Error)
		require.Equal(t, map[string]any{"risk": "Low"}, tk.Custom.V)
		require.Equal(t, "Will update", tk.ShortDescription)

		d["risk"] = "M"
		d["short_description"] = "Not applied"
		a = b.post(t, envelope("UpdateIncident", "UP-2", "EXT-CR-3", ours, time.Now(), d))
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		require.Equal(t, "Rejected", a.Stat.ProcessState)
		require.Contains(t, a.Stat.Error, `Risk must be one of Low, High (not "Medium")`)
		var tx models.Transaction
		require.NoError(t, b.db.Where("external_message_id = ?", "UP-2").Take(&tx).Error)
		require.Contains(t, tx.ProcessError, "Risk must be one of")
		require.NoError(t, b.db.Where("number = ?", ours).Take(&tk).Error)
		require.Equal(t, map[string]any{"risk": "Low"}, tk.Custom.V, "a rejected update changes nothing")
		require.Equal(t, "Will update", tk.ShortDescription)
	})
}
