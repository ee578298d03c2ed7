package designer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// messageFixture is the demo integration with its UpdateIncident message and
// that message's priority field, as the seed makes them.
type messageFixture struct {
	integration models.Integration
	update      models.Message
	field       models.Field
}

func demoMessages(t *testing.T, app *handlerstest.App) messageFixture {
	t.Helper()
	ctx := context.Background()
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	fx := messageFixture{integration: *in}
	db := app.Store.DB(ctx)
	require.NoError(t, db.Where("integration_id = ? AND name = 'UpdateIncident'", in.ID).Take(&fx.update).Error)
	require.NoError(t, db.Where("message_id = ? AND ticket_field = 'priority'", fx.update.ID).Take(&fx.field).Error)
	return fx
}

func messageValues(name string) url.Values {
	return url.Values{"name": {name}, "type": {"Update"}, "direction": {"Outbound"}, "path": {"incident/priority"},
		"trigger": {"fields"}, "trigger_fields": {"priority", "urgency"}, "bond_ownership": {"ignore"},
		"allowed_bond_states": {"Open"}, "set_bond_state": {""}, "receipt_message": {""}, "response_message": {""}}
}

func fieldValues(ticketField, property string) url.Values {
	return url.Values{"ticket_field": {ticketField}, "property": {property}, "direction": {"Bidirectional"},
		"default": {""}, "position": {"5"}, "row_count": {"2"},
		"row_ticket_0": {"1"}, "row_payload_0": {"High"}, "row_direction_0": {"Bidirectional"},
		"row_ticket_1": {"3"}, "row_payload_1": {"Low"}, "row_direction_1": {"Bidirectional"}}
}

// TestDesignerMessagePages: an admin creates a message, a field with a value
// map and a response action through the forms; a manager reads every page
// without edit controls and is refused a POST; an analyst sees none of it.
func TestDesignerMessagePages(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	fx := demoMessages(t, app)
	admin := app.Login(t, "admin", "admin-demo-1")

	res := admin.PostForm(fmt.Sprintf("/integrations/%d/messages", fx.integration.ID), messageValues("PriorityChanged"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var m models.Message
	require.NoError(t, db.Where("integration_id = ? AND name = 'PriorityChanged'", fx.integration.ID).Take(&m).Error)
	require.Equal(t, models.TriggerFields, m.Trigger)
	require.Equal(t, []string{"priority", "urgency"}, m.TriggerFields.V)

	// "Add rows" re-renders the form as typed with more blank rows; nothing stored.
	add := fieldValues("urgency", "urgency")
	add.Set("add_rows", "true")
	res = admin.PostForm(fmt.Sprintf("/messages/%d/fields", m.ID), add)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "High", res.TestID(t, "row-payload-0").AttrOr("value", ""))
	require.Equal(t, 1, res.TestID(t, "row-ticket-4").Length(), "two typed rows and three blank ones")

	res = admin.PostForm(fmt.Sprintf("/messages/%d/fields", m.ID), fieldValues("urgency", "urgency"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var f models.Field
	require.NoError(t, db.Where("message_id = ?", m.ID).Take(&f).Error)
	require.Equal(t, map[string]string{"1": "High", "3": "Low"}, f.ValueMap.V)
	require.Equal(t, map[string]string{"High": "1", "Low": "3"}, f.InboundMap.V)

	// An inconsistent map is refused next to the table.
	bad := fieldValues("urgency", "urgency")
	bad.Set("row_payload_1", "High")
	res = admin.PostForm(fmt.Sprintf("/fields/%d", f.ID), withVersion(bad, f.Version))
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-value_map").Text(), `Payload value "High" is in two rows`)

	res = admin.PostForm(fmt.Sprintf("/integrations/%d/response-actions", fx.integration.ID), url.Values{
		"status_code": {"409"}, "message": {fmt.Sprint(m.ID)}, "set_transaction_state": {"5"}, "set_process_state": {"2"},
		"bond_note": {"exists already"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var a models.ResponseAction
	require.NoError(t, db.Where("integration_id = ? AND status_code = 409", fx.integration.ID).Take(&a).Error)

	page := admin.Get(fmt.Sprintf("/integrations/%d/messages", fx.integration.ID))
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, page.TestID(t, "message-row-PriorityChanged").Text(), "when any of priority, urgency changes")
	require.Contains(t, page.TestID(t, "action-row-409").Text(), "transaction Complete, process Rejected")
	page = admin.Get(fmt.Sprintf("/messages/%d/edit", m.ID))
	require.Contains(t, page.TestID(t, "field-map").Text(), "1 ↔ High")

	var acts int64
	require.NoError(t, db.Model(&models.ActivityLog{}).Where("record_type IN ('message', 'field', 'response_action')").Count(&acts).Error)
	require.Equal(t, int64(3), acts, "every change audited")

	pages := map[string]string{
		fmt.Sprintf("/integrations/%d/messages", fx.integration.ID): "new-message",
		fmt.Sprintf("/messages/%d/edit", m.ID):                      "save",
		fmt.Sprintf("/fields/%d/edit", f.ID):                        "save",
		fmt.Sprintf("/response-actions/%d/edit", a.ID):              "save",
	}
	posts := map[string]url.Values{
		fmt.Sprintf("/integrations/%d/messages", fx.integration.ID):         messageValues("ByManager"),
		fmt.Sprintf("/messages/%d", m.ID):                                   withVersion(messageValues("ByManager"), m.Version),
		fmt.Sprintf("/messages/%d/fields", m.ID):                            fieldValues("impact", "impact"),
		fmt.Sprintf("/fields/%d", f.ID):                                     withVersion(fieldValues("urgency", "u2"), f.Version),
		fmt.Sprintf("/fields/%d/delete", f.ID):                              withVersion(url.Values{}, f.Version),
		fmt.Sprintf("/messages/%d/delete", m.ID):                            withVersion(url.Values{}, m.Version),
		fmt.Sprintf("/integrations/%d/response-actions", fx.integration.ID): {"status_code": {"500"}},
		fmt.Sprintf("/response-actions/%d", a.ID):                           withVersion(url.Values{"status_code": {"410"}}, a.Version),
	}
	for _, r := range handlerstest.DemoUsers {
		if r.Role == models.RoleAdmin {
			continue
		}
		c := app.Login(t, r.Name, r.Password)
		for path, control := range pages {
			res := c.Get(path)
			if r.Role == models.RoleAnalyst {
				require.Equal(t, http.StatusForbidden, res.StatusCode, "%s GET %s", r.Name, path)
				continue
			}
			require.Equal(t, http.StatusOK, res.StatusCode, "%s GET %s", r.Name, path)
			require.Zero(t, res.TestID(t, control).Length(), "%s sees no %s on %s", r.Name, control, path)
			require.Equal(t, 1, res.TestID(t, "read-only").Length(), path)
		}
		for path, form := range posts {
			res := c.PostForm(path, form)
			require.Equal(t, http.StatusForbidden, res.StatusCode, "%s POST %s", r.Name, path)
			require.NotEmpty(t, strings.TrimSpace(res.TestID(t, "error-message").Text()))
		}
	}
	require.NoError(t, db.Model(&models.ActivityLog{}).Where("record_type IN ('message', 'field', 'response_action')").Count(&acts).Error)
	require.Equal(t, int64(3), acts, "the refused posts changed nothing")
}

func withVersion(v url.Values, version int) url.Values {
	out := url.Values{}
	for k, x := range v {
		out[k] = x
	}
	out.Set("version", fmt.Sprint(version))
	return out
}

// TestHostileMessageForms posts every message, field and response action
// form with each field, one at a time, set to a hostile value: never a 5xx;
// a refusal is a 4xx naming the field and stores nothing.
func TestHostileMessageForms(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	fx := demoMessages(t, app)
	admin := app.Login(t, "admin", "admin-demo-1")
	res := admin.PostForm(fmt.Sprintf("/integrations/%d/response-actions", fx.integration.ID), url.Values{"status_code": {"409"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var action models.ResponseAction
	require.NoError(t, db.Where("integration_id = ? AND status_code = 409", fx.integration.ID).Take(&action).Error)

	state := func() string {
		var v int
		require.NoError(t, db.Raw(`SELECT coalesce(sum(version), 0) FROM (SELECT version FROM messages
			UNION ALL SELECT version FROM fields UNION ALL SELECT version FROM response_actions) v`).Scan(&v).Error)
		parts := []string{fmt.Sprint("versions=", v)}
		for _, tbl := range []string{"messages", "fields", "response_actions", "activity_logs"} {
			parts = append(parts, fmt.Sprintf("%s=%d", tbl, app.CountRows(t, tbl)))
		}
		return strings.Join(parts, " ")
	}
	version := func(table string, id int64) func() string {
		return func() string {
			var v int
			require.NoError(t, db.Raw("SELECT version FROM "+table+" WHERE id = ?", id).Scan(&v).Error)
			return fmt.Sprint(v)
		}
	}
	updateValues := messageValues("UpdateIncident")
	updateValues.Set("trigger", "update")
	updateValues.Set("direction", "Bidirectional")
	actionValues := url.Values{"status_code": {"409"}, "message": {""}, "retry": {""}, "set_transaction_state": {"5"},
		"set_process_state": {"2"}, "set_integration_status": {"Down"}, "set_integration_state": {"Paused"},
		"bond_note": {"note"}, "description": {"d"}}
	forms := []struct {
		path    string
		fields  url.Values
		version func() string
	}{
		{fmt.Sprintf("/integrations/%d/messages", fx.integration.ID), messageValues("Hostile"), nil},
		{fmt.Sprintf("/messages/%d", fx.update.ID), updateValues, version("messages", fx.update.ID)},
		{fmt.Sprintf("/messages/%d/fields", fx.update.ID), fieldValues("urgency", "urgency"), nil},
		{fmt.Sprintf("/fields/%d", fx.field.ID), fieldValues("priority", "priority"), version("fields", fx.field.ID)},
		{fmt.Sprintf("/integrations/%d/response-actions", fx.integration.ID), withStatus(actionValues, "418"), nil},
		// Delete posts only the version: each hostile one is refused and the message stays.
		{fmt.Sprintf("/messages/%d/delete", receiptID(t, app, fx.integration.ID)), url.Values{}, version("messages", receiptID(t, app, fx.integration.ID))},
		{fmt.Sprintf("/response-actions/%d", action.ID), actionValues, version("response_actions", action.ID)},
	}
	ta := handlerstest.Tally{}
	for _, f := range forms {
		fields := []string{"version"}
		for k := range f.fields {
			fields = append(fields, k)
		}
		for _, field := range fields {
			if field == "version" && f.version == nil {
				continue
			}
			for _, h := range handlerstest.Hostile {
				form := url.Values{}
				for k, v := range f.fields {
					form[k] = v
				}
				if f.version != nil {
					form.Set("version", f.version())
				}
				form.Set(field, h.Value)
				before := state()
				what := fmt.Sprintf("POST %s %s=%s", f.path, field, h.Name)
				res := admin.PostForm(f.path, form)
				ta.Add(res.StatusCode)
				handlerstest.CheckAnswer(t, what, res.StatusCode, res.Body)
				if res.StatusCode == http.StatusUnprocessableEntity {
					name := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(field, "row_ticket_"), "row_payload_"), "row_direction_")
					if name != field || field == "row_count" {
						name = "value_map"
					}
					if field == "version" {
						require.Contains(t, res.Body, "version", what)
					} else {
						// Next to the field, or (text no form can carry, refused before the form) named on the error page.
						require.True(t, strings.Contains(res.Body, `data-testid="error-`+name+`"`) || strings.Contains(res.Body, field+": "),
							"%s: the refusal names the field: %s", what, res.Body)
					}
				}
				if res.StatusCode >= 400 {
					require.Equal(t, before, state(), "%s was refused, so nothing is stored", what)
				}
				if res.StatusCode < 400 && f.version == nil { // created: remove it again so the next one can be
					require.NoError(t, db.Exec(`DELETE FROM fields WHERE message_id = ? AND ticket_field = 'urgency'`, fx.update.ID).Error)
					require.NoError(t, db.Exec(`DELETE FROM messages WHERE integration_id = ? AND name = 'Hostile'`, fx.integration.ID).Error)
					require.NoError(t, db.Exec(`DELETE FROM response_actions WHERE integration_id = ? AND id <> ?`, fx.integration.ID, action.ID).Error)
				}
			}
		}
	}
	t.Logf("hostile message forms: %d requests by status %v", ta.Total(), ta)
}

func withStatus(v url.Values, status string) url.Values {
	out := url.Values{}
	for k, x := range v {
		out[k] = x
	}
	out.Set("status_code", status)
	return out
}

func receiptID(t *testing.T, app *handlerstest.App, integrationID int64) int64 {
	t.Helper()
	var id int64
	require.NoError(t, app.Store.DB(context.Background()).Raw(`SELECT id FROM messages WHERE integration_id = ? AND name = 'Receipt'`,
		integrationID).Scan(&id).Error)
	return id
}
