package handlers_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/internal/testdb"
	"unifi/models"
)

// TestTicketFormCustomFields: the ticket form shows the process's own fields,
// refuses a value that does not fit next to its field (keeping what was
// typed), and stores the values it accepts.
func TestTicketFormCustomFields(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	db := testdb.Open(t, app.DatabaseURL)
	var incident models.Process
	require.NoError(t, db.Where("name = ?", "Incident").Take(&incident).Error)
	require.NoError(t, db.Create(&[]models.ProcessField{
		{ProcessID: incident.ID, Name: "risk", Label: "Risk", Type: models.FieldChoice,
			Choices: models.JSON[[]string]{V: []string{"Low", "High"}}, Required: true, Position: 1, Version: 1},
		{ProcessID: incident.ID, Name: "cost", Label: "Cost", Type: models.FieldNumber, Position: 2, Version: 1},
		{ProcessID: incident.ID, Name: "due", Label: "Due", Type: models.FieldDateTime, Position: 3, Version: 1},
		{ProcessID: incident.ID, Name: "outage", Label: "Outage", Type: models.FieldBoolean, Position: 4, Version: 1},
	}).Error)
	analyst := models.DemoLogins[2]
	c := app.Login(t, analyst.Name, analyst.Password)

	page := c.Get("/tickets/new")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Equal(t, 3, page.TestID(t, "f-custom-risk").Find("option").Length(), "an empty choice and the two values")
	require.Equal(t, 1, page.TestID(t, "f-custom-outage").Length())

	form := url.Values{"short_description": {"Custom form"}, "state": {"New"}, "priority": {"4"}, "urgency": {"3"},
		"impact": {"3"}, "custom.cost": {"12,5"}, "custom.due": {"2026-12-05T14:30"}, "custom.outage": {"false", "true"}}
	res := c.PostForm("/tickets", form)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-custom.risk").Text(), "Risk is required")
	require.Contains(t, res.TestID(t, "error-custom.cost").Text(), "Cost must be a number")
	cost, _ := res.TestID(t, "f-custom-cost").Attr("value")
	require.Equal(t, "12,5", cost, "what was typed is kept")
	_, checked := res.TestID(t, "f-custom-outage").Attr("checked")
	require.True(t, checked)

	form.Set("custom.risk", "High")
	form.Set("custom.cost", "12.5")
	res = c.PostForm("/tickets", form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	var tk models.Ticket
	require.NoError(t, db.Where("short_description = ?", "Custom form").Take(&tk).Error)
	require.Equal(t, map[string]any{"risk": "High", "cost": 12.5, "due": "2026-12-05T14:30:00Z", "outage": true}, tk.Custom.V)

	show := c.Get(res.Header.Get("Location"))
	require.Equal(t, "12.5", show.TestID(t, "ticket-field-custom-cost").Text())
	require.Equal(t, "High", show.TestID(t, "ticket-field-custom-risk").Text())
	edit := c.Get(res.Header.Get("Location") + "/edit")
	require.Equal(t, http.StatusOK, edit.StatusCode)
	due, _ := edit.TestID(t, "f-custom-due").Attr("value")
	require.Equal(t, "2026-12-05T14:30", due)
	form.Set("version", "1")
	form["custom.outage"] = []string{"false"} // unticked
	res = c.PostForm(res.Header.Get("Location"), form)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	require.NoError(t, db.Take(&tk, tk.ID).Error)
	require.Equal(t, false, tk.Custom.V["outage"])
}
