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
	"unifi/models/store"
)

// TestDesignerProcesses: an admin creates a process with its own number
// prefix, adds a choice field, edits and removes it; tickets of the process
// are numbered with the prefix; every change is audited with before/after;
// an edit of an older version is refused with 409.
func TestDesignerProcesses(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	admin := app.Login(t, "admin", "admin-demo-1")

	res := admin.PostForm("/processes", url.Values{"name": {"Incident"}, "number_prefix": {"INC"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-name").Text(), "already exists")
	require.Contains(t, res.TestID(t, "error-number_prefix").Text(), "already numbers its tickets INC")

	res = admin.PostForm("/processes", url.Values{"name": {"Change"}, "number_prefix": {"CHG"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var change models.Process
	require.NoError(t, db.Where("name = 'Change'").Take(&change).Error)
	require.Equal(t, "/processes/"+fmt.Sprint(change.ID)+"/edit", res.Header.Get("Location"))

	fields := fmt.Sprintf("/processes/%d/fields", change.ID)
	res = admin.PostForm(fields, url.Values{"name": {"risk"}, "label": {"Risk"}, "type": {"choice"}, "choices": {"Low\nLow"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-choices").Text(), `"Low" is given twice`)
	require.Equal(t, "Low\nLow", res.TestID(t, "f-choices").Text(), "the form keeps what was typed")
	res = admin.PostForm(fields, url.Values{"name": {"risk"}, "label": {"Risk"}, "type": {"choice"},
		"choices": {"Low\nHigh"}, "required": {"true"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	res = admin.PostForm(fields, url.Values{"name": {"risk"}, "label": {"Again"}, "type": {"text"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-name").Text(), "already has a field named")
	page := admin.Get(fmt.Sprintf("/processes/%d/edit", change.ID))
	require.Contains(t, page.TestID(t, "pfield-risk").Text(), "Low, High")

	// A ticket of the process: numbered CHG, its field required.
	analyst := models.Actor{Role: models.RoleAnalyst}
	_, err := app.Store.CreateTicket(ctx, analyst, store.TicketInput{ProcessID: change.ID, ShortDescription: "Upgrade"})
	var ve *models.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Fields["custom.risk"], "Risk is required")
	tk, err := app.Store.CreateTicket(ctx, analyst, store.TicketInput{ProcessID: change.ID, ShortDescription: "Upgrade",
		Custom: map[string]string{"risk": "Low"}})
	require.NoError(t, err)
	require.Regexp(t, `^CHG\d{7}$`, tk.Number)

	// The ticket form: a choice of process, and the chosen one's fields.
	form := admin.Get(fmt.Sprintf("/tickets/new?process=%d", change.ID))
	require.Equal(t, http.StatusOK, form.StatusCode)
	require.Equal(t, 1, form.TestID(t, "ticket-process-INC").Length(), "a link to the other kind of ticket")
	require.Equal(t, 1, form.TestID(t, "f-custom-risk").Length())
	require.Zero(t, admin.Get("/tickets/new").TestID(t, "f-custom-risk").Length(), "Incident has no such field")
	require.Equal(t, http.StatusUnprocessableEntity, admin.Get("/tickets/new?process=99999").StatusCode)
	res = admin.PostForm("/tickets", url.Values{"process_id": {fmt.Sprint(change.ID)}, "short_description": {"From the form"},
		"priority": {"4"}, "urgency": {"3"}, "impact": {"3"}, "custom.risk": {"High"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var fromForm models.Ticket
	require.NoError(t, db.Where("short_description = 'From the form'").Take(&fromForm).Error)
	require.Regexp(t, `^CHG\d{7}$`, fromForm.Number)
	require.Equal(t, map[string]any{"risk": "High"}, fromForm.Custom.V)

	var pf models.ProcessField
	require.NoError(t, db.Where("process_id = ? AND name = 'risk'", change.ID).Take(&pf).Error)
	edit := fmt.Sprintf("/process-fields/%d", pf.ID)
	res = admin.PostForm(edit, url.Values{"version": {"1"}, "label": {"Risk level"}, "type": {"choice"}, "choices": {"Low\nHigh\nCritical"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	res = admin.PostForm(edit, url.Values{"version": {"1"}, "label": {"Stale"}, "type": {"choice"}, "choices": {"Low"}})
	require.Equal(t, http.StatusConflict, res.StatusCode, "an edit of version 1 after version 2 was saved")
	var entry models.ActivityLog
	require.NoError(t, db.Where("action = 'update process_field'").Order("id DESC").Take(&entry).Error)
	require.Equal(t, "Risk", entry.Before.V["label"])
	require.Equal(t, "Risk level", entry.After.V["label"])

	res = admin.PostForm(edit+"/delete", url.Values{"version": {"2"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.Zero(t, app.CountRows(t, "process_fields"))
	var deleted models.ActivityLog
	require.NoError(t, db.Where("action = 'delete process_field'").Take(&deleted).Error)
	require.Equal(t, "risk", deleted.Before.V["name"])
}

// TestDesignerProcessFieldMapped: a field a message maps cannot be removed;
// the refusal names the message and removes nothing.
func TestDesignerProcessFieldMapped(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	admin := app.Login(t, "admin", "admin-demo-1")
	demo, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	pf := models.ProcessField{ProcessID: demo.ProcessID, Name: "vendor_ref", Label: "Vendor reference", Type: models.FieldText, Version: 1}
	require.NoError(t, db.Create(&pf).Error)
	var msg models.Message
	require.NoError(t, db.Where("integration_id = ? AND name = 'UpdateIncident'", demo.ID).Take(&msg).Error)
	require.NoError(t, db.Create(&models.Field{MessageID: msg.ID, TicketField: "custom.vendor_ref", Property: "vendor_ref", Position: 50}).Error)
	res := admin.PostForm(fmt.Sprintf("/process-fields/%d/delete", pf.ID), url.Values{"version": {"1"}})
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-message").Text(), "mapped by message "+models.DemoIntegrationName+" / UpdateIncident")
	require.EqualValues(t, 1, app.CountRows(t, "process_fields"))
}

// TestHostileProcessForms posts every process form with each field, one at
// a time, set to a hostile value: never a 5xx; a refusal names the field
// and stores nothing.
func TestHostileProcessForms(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	admin := app.Login(t, "admin", "admin-demo-1")
	var incident models.Process
	require.NoError(t, db.Where("name = 'Incident'").Take(&incident).Error)
	pf := models.ProcessField{ProcessID: incident.ID, Name: "target", Label: "Target", Type: models.FieldText, Version: 1}
	require.NoError(t, db.Create(&pf).Error)
	state := func() string {
		var v int
		require.NoError(t, db.Raw(`SELECT coalesce(sum(version), 0) FROM (SELECT version FROM processes
			UNION ALL SELECT version FROM process_fields) v`).Scan(&v).Error)
		return fmt.Sprint(v, app.CountRows(t, "processes"), app.CountRows(t, "process_fields"), app.CountRows(t, "activity_logs"))
	}
	version := func(table string, id int64) func() string {
		return func() string {
			var v int
			require.NoError(t, db.Raw("SELECT version FROM "+table+" WHERE id = ?", id).Scan(&v).Error)
			return fmt.Sprint(v)
		}
	}
	fieldForm := url.Values{"name": {"hostile"}, "label": {"Hostile"}, "type": {"choice"}, "choices": {"A\nB"},
		"required": {"true"}, "position": {"3"}}
	forms := []handlerstest.HostileForm{
		{Path: "/processes", Fields: url.Values{"name": {"Hostile"}, "number_prefix": {"HOS"}}, Version: nil},
		{Path: fmt.Sprintf("/processes/%d", incident.ID), Fields: url.Values{"name": {"Incident"}, "number_prefix": {"INC"}}, Version: version("processes", incident.ID)},
		{Path: fmt.Sprintf("/processes/%d/fields", incident.ID), Fields: fieldForm, Version: nil},
		{Path: fmt.Sprintf("/process-fields/%d", pf.ID), Fields: url.Values{"label": {"Target"}, "type": {"text"}}, Version: version("process_fields", pf.ID)},
	}
	handlerstest.SweepHostileForms(t, admin, forms, state, nil)
	// What was accepted is stored as given and shown escaped.
	page := admin.Get(fmt.Sprintf("/processes/%d/edit", incident.ID))
	require.NotContains(t, page.Body, "<script>alert(1)</script>")
	require.False(t, strings.Contains(page.Body, "\x00"))
}
