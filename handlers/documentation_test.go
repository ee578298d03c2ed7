package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// TestIntegrationDocumentation: the documentation page describes every
// message of the configuration (direction, trigger, bond rules, fields,
// value maps), follows a configuration change, escapes what it shows, and
// prints without the application's chrome.
func TestIntegrationDocumentation(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	require.NoError(t, db.Exec(`UPDATE integrations SET description = '<b>Facilities</b> & co' WHERE id = ?`, in.ID).Error)
	manager := app.Login(t, "manager", "manager-demo-1")
	link, ok := manager.Get(fmt.Sprintf("/integrations/%d", in.ID)).TestID(t, "documentation").Attr("href")
	require.True(t, ok, "the integration page links to its documentation")

	res := manager.Get(link)
	require.Equal(t, http.StatusOK, res.StatusCode)
	msgs, err := app.Store.ListMessages(ctx, in.ID)
	require.NoError(t, err)
	require.Len(t, msgs, 4)
	for _, m := range msgs {
		require.Equal(t, 1, res.TestID(t, "doc-message-"+m.Name).Length(), m.Name)
	}
	upd := res.TestID(t, "doc-message-UpdateIncident")
	text := func(id string) string {
		return strings.TrimSpace(upd.Find(`[data-testid="` + id + `"]`).First().Text())
	}
	require.Equal(t, "Bidirectional: both sides send it", text("doc-direction"))
	require.Equal(t, "a ticket is updated", text("doc-trigger"))
	require.Equal(t, "ownership not checked; valid while the bond is Open", text("doc-bond-rules"))
	require.Contains(t, text("doc-async"), "asynchronous: a Receipt message follows")
	prio := upd.Find(`[data-testid="doc-field-priority"] [data-testid="doc-value-map"]`).Text()
	for _, v := range []string{"1", "Critical", "5", "Planning"} {
		require.Contains(t, prio, v)
	}
	require.Equal(t, 8, upd.Find(`[data-testid^="doc-field-"]`).Length())
	create := res.TestID(t, "doc-message-CreateIncident")
	require.Contains(t, create.Find(`[data-testid="doc-bond-rules"]`).Text(), "sets the bond to Open")
	require.Contains(t, res.TestID(t, "doc-inbound-url").Text(), "/api/v1/integrations/demo/messages")
	require.Contains(t, res.Body, "&lt;b&gt;Facilities&lt;/b&gt; &amp; co", "shown escaped")
	require.Equal(t, 1, res.TestID(t, "print").Length())

	// Generated, not written: a changed mapping shows at once.
	require.NoError(t, db.Exec(`UPDATE fields SET value_map = '{"1": "P1 - Blocker"}' WHERE property = 'priority'
		AND message_id = (SELECT id FROM messages WHERE name = 'UpdateIncident')`).Error)
	res = manager.Get(link)
	require.Contains(t, res.TestID(t, "doc-message-UpdateIncident").Find(`[data-testid="doc-field-priority"]`).Text(), "P1 - Blocker")

	css := manager.Get("/static/app.css")
	require.Equal(t, http.StatusOK, css.StatusCode)
	require.Contains(t, css.Body, "@media print")
	require.Contains(t, css.Body, ".no-print")

	analyst := app.Login(t, "analyst", "analyst-demo-1")
	require.Equal(t, http.StatusForbidden, analyst.Get(link).StatusCode)
	require.Equal(t, http.StatusNotFound, manager.Get("/integrations/999999/documentation").StatusCode)
}

// TestIntegrationDocumentationSettings: the page tells every setting a
// package carries: a field's direction, default and inbound-only rows (and,
// for a field with no inbound rows of its own, the inverse it maps back
// through), a message's response message and watched fields, and what a
// response action does besides retrying.
func TestIntegrationDocumentationSettings(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	var upd models.Message
	require.NoError(t, db.Where("integration_id = ? AND name = 'UpdateIncident'", in.ID).Take(&upd).Error)
	require.NoError(t, db.Exec(`UPDATE fields SET direction = 'Inbound', default_value = 'Network', value_map = '{}',
		inbound_value_map = '{"NET": "Network", "SD": "Service Desk"}' WHERE message_id = ? AND ticket_field = 'assignment_group'`, upd.ID).Error)
	answer := models.Message{IntegrationID: in.ID, Name: "UpdateAnswer", Type: models.MessageResponse, Direction: models.Inbound,
		Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore}
	require.NoError(t, db.Create(&answer).Error)
	watch := models.Message{IntegrationID: in.ID, Name: "PriorityChanged", Type: models.MessageUpdate, Direction: models.Outbound,
		Trigger: models.TriggerFields, TriggerFields: models.JSON[[]string]{V: []string{"priority", "urgency"}},
		BondOwnership: models.OwnershipIgnore, ResponseMessageID: &answer.ID}
	require.NoError(t, db.Create(&watch).Error)
	complete := models.Complete
	require.NoError(t, db.Create(&models.ResponseAction{IntegrationID: &in.ID, StatusCode: 409, SetTransactionState: &complete,
		BondNote: "exists already", Description: "duplicate"}).Error)

	res := app.Login(t, "manager", "manager-demo-1").Get(fmt.Sprintf("/integrations/%d/documentation", in.ID))
	require.Equal(t, http.StatusOK, res.StatusCode)
	text := func(sel string) string { return strings.Join(strings.Fields(res.Doc(t).Find(sel).First().Text()), " ") }
	group := `[data-testid="doc-message-UpdateIncident"] [data-testid="doc-field-assignment_group"] `
	require.Equal(t, "only from you", text(group+`[data-testid="doc-travels"]`))
	require.Equal(t, "Network", text(group+`[data-testid="doc-default"]`))
	cells := func(sel string) string {
		return strings.Join(res.Doc(t).Find(sel).First().Find("td").Map(func(_ int, c *goquery.Selection) string { return c.Text() }), " ")
	}
	require.Equal(t, "Network ← NET Service Desk ← SD", cells(group+`[data-testid="doc-value-map"]`))
	prio := `[data-testid="doc-message-UpdateIncident"] [data-testid="doc-field-priority"] `
	require.Equal(t, "both ways", text(prio+`[data-testid="doc-travels"]`))
	require.Contains(t, cells(prio+`[data-testid="doc-value-map"]`), "1 ↔ Critical", "no inbound rows: the inverse maps back")
	msg := `[data-testid="doc-message-PriorityChanged"] `
	require.Equal(t, "any of these ticket fields changes: priority, urgency", text(msg+`[data-testid="doc-trigger"]`))
	require.Equal(t, "the HTTP answer's body is a UpdateAnswer message", text(msg+`[data-testid="doc-response-message"]`))
	require.Equal(t, `the transaction is Complete; the bond notes "exists already"`,
		text(`[data-testid="doc-action-409"] [data-testid="doc-action-effects"]`))
}
