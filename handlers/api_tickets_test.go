package handlers_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
)

func TestAPITickets(t *testing.T) {
	t.Parallel()
	b := setupInboundOn(t, seededDB(t), 1<<20)
	base := b.srv.URL + "/api/v1/tickets"
	call := func(method, url, user, pw, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewBufferString(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pw)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}
	analyst := models.DemoLogins[2]
	require.Equal(t, models.RoleAnalyst, analyst.Role)

	t.Run("Unauthorized", func(t *testing.T) {
		status, _ := call(http.MethodPost, base, "", "", `{"short_description":"x"}`)
		require.Equal(t, http.StatusUnauthorized, status)
		status, _ = call(http.MethodPost, base, analyst.Name, "wrong-password", `{"short_description":"x"}`)
		require.Equal(t, http.StatusUnauthorized, status)
	})
	t.Run("RoleRefusedLikeWrongPassword", func(t *testing.T) {
		// A right password for a role that may not work tickets is answered
		// exactly like a wrong one (TestLoginThrottleEveryWayIn/NoPasswordOracle).
		manager := models.DemoLogins[1]
		status, body := call(http.MethodPost, base, manager.Name, manager.Password, `{"short_description":"x"}`)
		require.Equal(t, http.StatusUnauthorized, status)
		require.Equal(t, "Wrong user name or password.", body["error"])
		status, _ = call(http.MethodPost, base, models.DemoPeerAccount.Name, models.DemoPeerAccount.Password, `{"short_description":"x"}`)
		require.Equal(t, http.StatusUnauthorized, status)
	})
	t.Run("Success", func(t *testing.T) {
		status, body := call(http.MethodPost, base, analyst.Name, analyst.Password,
			`{"short_description":"Mail down","priority":2}`)
		require.Equal(t, http.StatusCreated, status, "%v", body)
		number := body["number"].(string)
		require.Regexp(t, `^INC\d{7}$`, number)
		require.Equal(t, float64(2), body["priority"])
		require.Equal(t, "New", body["state"])

		status, body = call(http.MethodPatch, base+"/"+number, analyst.Name, analyst.Password, `{"state":"In Progress"}`)
		require.Equal(t, http.StatusOK, status, "%v", body)
		require.Equal(t, "In Progress", body["state"])
		require.Equal(t, "Mail down", body["short_description"], "fields not given are kept")
		require.Equal(t, float64(2), body["version"])

		status, body = call(http.MethodGet, base+"/"+number, analyst.Name, analyst.Password, "")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "In Progress", body["state"])

		// The demo integration is Active: the create and the update are on the wire's queue.
		var states []models.TransportState
		require.NoError(t, b.db.Model(&models.Transaction{}).Joins("JOIN tickets ON tickets.id = transactions.ticket_id").
			Where("tickets.number = ?", number).Order("seq").Pluck("transactions.state", &states).Error)
		require.Equal(t, []models.TransportState{models.Sending, models.Queued}, states)

		status, body = call(http.MethodPatch, base+"/"+number, analyst.Name, analyst.Password, `{"state":"On Hold","version":1}`)
		require.Equal(t, http.StatusConflict, status)
		require.Contains(t, body["error"], "changed by someone else meanwhile")
	})
	t.Run("Invalid", func(t *testing.T) {
		status, body := call(http.MethodPost, base, analyst.Name, analyst.Password, `{"short_description":"","priority":9}`)
		require.Equal(t, http.StatusUnprocessableEntity, status)
		fields := body["fields"].(map[string]any)
		require.Contains(t, fields, "short_description")
		require.Contains(t, fields, "priority")
		status, _ = call(http.MethodPost, base, analyst.Name, analyst.Password, `{"nonsense":1}`)
		require.Equal(t, http.StatusBadRequest, status)
	})
	t.Run("NotFound", func(t *testing.T) {
		status, _ := call(http.MethodGet, base+"/INC9999999", analyst.Name, analyst.Password, "")
		require.Equal(t, http.StatusNotFound, status)
	})
	t.Run("CustomFields", func(t *testing.T) {
		// Runs last: it gives the Incident process a required field.
		var incident models.Process
		require.NoError(t, b.db.Where("name = ?", "Incident").Take(&incident).Error)
		require.NoError(t, b.db.Create(&[]models.ProcessField{
			{ProcessID: incident.ID, Name: "risk", Label: "Risk", Type: models.FieldChoice,
				Choices: models.JSON[[]string]{V: []string{"Low", "High"}}, Required: true, Version: 1},
			{ProcessID: incident.ID, Name: "cost", Label: "Cost", Type: models.FieldNumber, Version: 1},
		}).Error)

		status, body := call(http.MethodPost, base, analyst.Name, analyst.Password,
			`{"short_description":"Custom","custom":{"cost":"ten","colour":"red"}}`)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
		fields := body["fields"].(map[string]any)
		require.Contains(t, fields["custom.risk"], "Risk is required")
		require.Contains(t, fields["custom.cost"], "must be a number")
		require.Contains(t, fields["custom.colour"], "not a field of this process")
		status, body = call(http.MethodPost, base, analyst.Name, analyst.Password,
			`{"short_description":"Custom","custom":{"risk":["High"]}}`)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
		require.Contains(t, body["fields"].(map[string]any)["custom.risk"], "not a list")

		status, body = call(http.MethodPost, base, analyst.Name, analyst.Password,
			`{"short_description":"Custom","custom":{"risk":"High","cost":12.5}}`)
		require.Equal(t, http.StatusCreated, status, "%v", body)
		require.Equal(t, map[string]any{"risk": "High", "cost": 12.5}, body["custom"])
		number := body["number"].(string)

		status, body = call(http.MethodPatch, base+"/"+number, analyst.Name, analyst.Password, `{"custom":{"cost":null}}`)
		require.Equal(t, http.StatusOK, status, "%v", body)
		require.Equal(t, map[string]any{"risk": "High"}, body["custom"], "null clears a value; absent keeps it")
		var stored models.Ticket
		require.NoError(t, b.db.Where("number = ?", number).Take(&stored).Error)
		require.Equal(t, map[string]any{"risk": "High"}, stored.Custom.V)
		status, body = call(http.MethodPatch, base+"/"+number, analyst.Name, analyst.Password, `{"custom":{"risk":""}}`)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)

		// Another process: its own prefix and fields (none: risk is refused).
		require.NoError(t, b.db.Create(&models.Process{Name: "Change", TicketTable: "tickets", ReferenceField: "number", NumberPrefix: "CHG"}).Error)
		status, body = call(http.MethodPost, base, analyst.Name, analyst.Password, `{"process":"Change","short_description":"Upgrade","custom":{"risk":"High"}}`)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
		require.Contains(t, body["fields"].(map[string]any)["custom.risk"], "not a field of this process")
		status, body = call(http.MethodPost, base, analyst.Name, analyst.Password, `{"process":"Change","short_description":"Upgrade"}`)
		require.Equal(t, http.StatusCreated, status, "%v", body)
		require.Regexp(t, `^CHG\d{7}$`, body["number"])
		// An update works in the ticket's own process too: its fields, and
		// no Incident integration's message.
		change := body["number"].(string)
		status, body = call(http.MethodPatch, base+"/"+change, analyst.Name, analyst.Password, `{"custom":{"risk":"High"}}`)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
		require.Contains(t, body["fields"].(map[string]any)["custom.risk"], "not a field of this process")
		status, body = call(http.MethodPatch, base+"/"+change, analyst.Name, analyst.Password, `{"work_notes":"Planned"}`)
		require.Equal(t, http.StatusOK, status, "%v", body)
		var sent int64
		require.NoError(t, b.db.Model(&models.Transaction{}).Joins("JOIN tickets k ON k.id = transactions.ticket_id").
			Where("k.number = ?", change).Count(&sent).Error)
		require.Zero(t, sent, "the Change process has no integration")
		status, body = call(http.MethodPost, base, analyst.Name, analyst.Password, `{"process":"Nope","short_description":"x"}`)
		require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
		require.Contains(t, body["fields"].(map[string]any)["process"], `no process named "Nope"`)
	})
}
