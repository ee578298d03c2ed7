package handlers_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
	"unifi/models/designer"
	"unifi/models/script"
)

// A ServiceNow-like business-rule webhook, in ServiceNow's shape, becomes an
// inbound CreateIncident or UpdateIncident through the demo integration's
// inbound scripts. A Stage to Target's reject(...) rejects an update (a
// Rejected transaction whose process error the analyst sees) or refuses a
// create (422, no ticket); the scripts' log lines are in the transaction's
// log, at most 100 a message.
func TestWebhook(t *testing.T) {
	t.Parallel()
	// The Logs case logs 150 lines of 2,100 characters: under -race that
	// takes more than the default 50 ms of CPU, and the time limit is not
	// what this test is about (models/script tests it).
	app := handlerstest.New(t, &handlerstest.Opts{ScriptLimits: script.Limits{Timeout: 5 * time.Second}})
	ctx := t.Context()
	var create, update models.Message
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = 1 AND name = 'CreateIncident'").Take(&create).Error)
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = 1 AND name = 'UpdateIncident'").Take(&update).Error)
	var admin models.User
	require.NoError(t, app.Store.DB(ctx).Where("name = 'admin'").Take(&admin).Error)
	actor := models.ActorOf(&admin, "test")
	lookup := "const r = request.body.record;\nreturn {source_reference: r.number, message_id: r.sys_id + ':' + r.sys_mod_count};"
	for _, sc := range []struct {
		msg    models.Message
		point  script.Point
		source string
	}{
		{create, script.Identify, "return request.body !== null && request.body.event === 'incident.inserted';"},
		{create, script.ReferenceLookup, lookup},
		{create, script.PayloadToStage, "log('payload', request.body.record.number);\nreturn {short_description: request.body.record.short_description};"},
		{create, script.StageToTarget, "if (stage.short_description === 'reject me') { reject('Incidents named so are refused here'); return; }\nreturn stage;"},
		{update, script.Identify, "return request.body !== null && request.body.event === 'incident.updated';"},
		{update, script.ReferenceLookup, lookup},
		{update, script.PayloadToStage, `log('update of', request.body.record.number, '\u0000');
if (request.body.noisy) { const long = 'é'.repeat(2100); for (let i = 0; i < 150; i++) { log(i, long); } }
return {short_description: request.body.record.short_description};`},
		{update, script.StageToTarget, "log('target');\nif (stage.short_description === '') { reject('The short description is empty'); return; }\nreturn stage;"},
	} {
		_, err := designer.New(app.Store, nil).SaveScript(ctx, actor, sc.msg.ID, sc.point, 0, sc.source)
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

	analyst := app.Login(t, "analyst", "analyst-demo-1")
	changed := func(n int, summary string, noisy bool) string {
		return fmt.Sprintf(`{"event": "incident.updated", "noisy": %t, "record": {"sys_id": "46d44a5c", "sys_mod_count": %d,
			"number": "INC0010001", "short_description": %q}}`, noisy, n, summary)
	}
	latest := func(t *testing.T) (models.Transaction, models.Ticket, models.Bond) {
		var bond models.Bond
		require.NoError(t, app.Store.DB(ctx).Where("integration_id = 1 AND external_reference = 'INC0010001'").Take(&bond).Error)
		var tr models.Transaction
		require.NoError(t, app.Store.DB(ctx).Where("bond_id = ? AND direction = ?", bond.ID, models.Inbound).Order("id DESC").Take(&tr).Error)
		var tk models.Ticket
		require.NoError(t, app.Store.DB(ctx).Take(&tk, bond.TicketID).Error)
		return tr, tk, bond
	}

	t.Run("UpdateRejected", func(t *testing.T) {
		res := post(changed(1, "", false), auth)
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		require.Contains(t, res.Body, `"process_state":"Rejected"`)
		tr, tk, bond := latest(t)
		require.Equal(t, update.ID, tr.MessageID)
		require.Equal(t, models.ProcessRejected, tr.ProcessState)
		require.Equal(t, "The short description is empty", tr.ProcessError)
		require.Equal(t, "The short description is empty", bond.ProcessError)
		require.Equal(t, "Email is down", tk.ShortDescription, "a rejected update changes nothing")

		page := analyst.Get(fmt.Sprintf("/tickets/%d", tk.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "ticket-process-error").Text(), "The short description is empty")
		page = analyst.Get(fmt.Sprintf("/transactions/%d", tr.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "process-error-banner").Text(), "The short description is empty")

		again := post(changed(1, "", false), auth)
		require.Equal(t, http.StatusConflict, again.StatusCode, "a rejected message is a message received: %s", again.Body)
	})

	t.Run("CreateRejected", func(t *testing.T) {
		res := post(`{"event": "incident.inserted", "record": {"sys_id": "x1", "sys_mod_count": 0, "number": "INC0010002",
			"short_description": "reject me"}}`, auth)
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, res.Body)
		require.Contains(t, res.Body, "Message rejected: Incidents named so are refused here")
		var n int64
		require.NoError(t, app.Store.DB(ctx).Model(&models.Ticket{}).Where("short_description = 'reject me'").Count(&n).Error)
		require.Zero(t, n, "nothing stored")
	})

	t.Run("Logs", func(t *testing.T) {
		res := post(changed(2, "Email is back", true), auth)
		require.Equal(t, http.StatusOK, res.StatusCode, res.Body)
		tr, tk, _ := latest(t)
		require.Equal(t, models.ProcessAccepted, tr.ProcessState, tr.ProcessError)
		require.Equal(t, "Email is back", tk.ShortDescription)
		var logs []models.TransactionLog
		require.NoError(t, app.Store.DB(ctx).Where("transaction_id = ?", tr.ID).Order("id").Find(&logs).Error)
		var lines []string
		for _, l := range logs {
			if l.Kind == models.LogScript {
				lines = append(lines, l.Line)
			}
		}
		require.Len(t, lines, 100, "at most 100 script lines a message (Payload to Stage logged 151, Stage to Target 1)")
		require.Equal(t, "update of INC0010001 \uFFFD", lines[0], "a NUL is stored as U+FFFD")
		for i, l := range lines[1:] {
			require.True(t, strings.HasPrefix(l, fmt.Sprint(i, " é")), l[:10])
			require.Equal(t, 2000, utf8.RuneCountInString(l), "line %d: at most 2,000 characters", i+1)
			require.True(t, strings.HasSuffix(l, "é…"), "cut on a character, marked")
		}
		require.Equal(t, models.LogTransactionRecv, logs[len(logs)-1].Kind, "the outcome after the scripts' lines")
		page := analyst.Get(fmt.Sprintf("/transactions/%d", tr.ID))
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Contains(t, page.TestID(t, "logs").Text(), "update of INC0010001")
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
