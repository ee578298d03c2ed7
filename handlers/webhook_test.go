package handlers_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
	"unifi/models/designer"
	"unifi/models/script"
)

// A ServiceNow-like business-rule webhook, in ServiceNow's shape, becomes an
// inbound CreateIncident through the demo integration's inbound scripts.
func TestWebhook(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := t.Context()
	var msg models.Message
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = 1 AND name = 'CreateIncident'").Take(&msg).Error)
	var admin models.User
	require.NoError(t, app.Store.DB(ctx).Where("name = 'admin'").Take(&admin).Error)
	actor := models.ActorOf(&admin, "test")
	for point, src := range map[script.Point]string{
		script.Identify:        "return request.body !== null && request.body.event === 'incident.inserted';",
		script.ReferenceLookup: "const r = request.body.record;\nreturn {source_reference: r.number, message_id: r.sys_id + ':' + r.sys_mod_count};",
		script.PayloadToStage:  "log('payload', request.body.record.number);\nreturn {short_description: request.body.record.short_description};",
		script.StageToTarget:   "if (stage.short_description === 'reject me') { reject('Incidents named so are refused here'); return; }\nreturn stage;",
	} {
		_, err := designer.New(app.Store, nil).SaveScript(ctx, actor, msg.ID, point, 0, src)
		require.NoError(t, err)
	}
	auth := http.Header{"Authorization": {"Bearer " + models.DemoPeerToken}}
	post := func(body string, h http.Header) handlerstest.Response {
		return app.Client(t).Do(http.MethodPost, "/api/v1/integrations/demo/raw", body, "application/json", h)
	}
	snow := `{"event": "incident.inserted", "record": {"sys_id": "46d44a5c", "sys_mod_count": 0,
		"number": "INC0010001", "short_description": "Email is down"}}`

	t.Run("Success", func(t *testing.T) {
		res := post(snow, auth)
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		var tk models.Ticket
		require.NoError(t, app.Store.DB(ctx).Where("short_description = 'Email is down'").Take(&tk).Error)
		var bond models.Bond
		require.NoError(t, app.Store.DB(ctx).Where("ticket_id = ?", tk.ID).Take(&bond).Error)
		require.Equal(t, "INC0010001", bond.ExternalReference)

		again := post(snow, auth)
		require.Equal(t, http.StatusConflict, again.StatusCode, again.Body)
		require.Contains(t, again.Body, "Message has already been processed")
	})

	t.Run("Rejected", func(t *testing.T) {
		res := post(`{"event": "incident.inserted", "record": {"sys_id": "x1", "sys_mod_count": 0, "number": "INC0010002",
			"short_description": "reject me"}}`, auth)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
		require.Contains(t, res.Body, "Error processing request: Incidents named so are refused here")
		var n int64
		require.NoError(t, app.Store.DB(ctx).Model(&models.Ticket{}).Where("short_description = 'reject me'").Count(&n).Error)
		require.Zero(t, n, "nothing stored")
	})

	t.Run("NotIdentified", func(t *testing.T) {
		res := post(`{"event": "problem.inserted"}`, auth)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, res.Body)
		require.Contains(t, res.Body, "Unable to identify message name from request")
	})

	t.Run("ScriptError", func(t *testing.T) {
		res := post(`{"event": "incident.inserted"}`, auth)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
		require.Contains(t, res.Body, `Script \"CreateIncident / Reference lookup\" line 2: TypeError`)
	})

	t.Run("Unauthenticated", func(t *testing.T) {
		res := post(snow, nil)
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, res.Body)
	})
}
