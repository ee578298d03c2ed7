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
// does not fit the process field is refused with the reason, and an outbound
// message maps the same field back.
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

		out := models.MapOutbound(&tk, []models.Field{{TicketField: "custom.risk", Property: "risk",
			ValueMap: models.JSON[map[string]string]{V: map[string]string{"High": "H"}}}})
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
}
