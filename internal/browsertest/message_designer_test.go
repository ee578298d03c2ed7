package browsertest_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"unifi/internal/browsertest"
	"unifi/internal/peer"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/store"
)

// TestBrowserMessageDesigner: an admin creates an integration with a
// connection to the demo peer, then in the message Designer a Create
// message and an Update message sent when the priority changes, each with
// fields and a value map (a refused map first, shown next to the table);
// a ticket created and then raised to priority 1 goes Complete at the peer,
// which received the mapped values; then a Response message mapping the
// ticket's number, chosen as the Create's answer. Screenshots of each page.
func TestBrowserMessageDesigner(t *testing.T) {
	t.Parallel()
	app := browsertest.StartApp(t, browsertest.AppOpts{Synchronous: true})
	ctx := context.Background()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	peerCtx, stopPeer := context.WithCancel(ctx)
	peerDone := make(chan error, 1)
	pr := peer.New(peer.Opts{Token: models.DemoPeerToken})
	go func() { peerDone <- pr.Serve(peerCtx, ln) }()
	t.Cleanup(func() { stopPeer(); <-peerDone })
	endpoint := "http://" + ln.Addr().String() + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"

	admin := browsertest.New(t, app.URL)
	admin.Login("admin", "admin-demo-1")
	admin.Open("/integrations/new")
	admin.Do(chromedp.SendKeys(browsertest.TestID("f-name"), "msg-peer"))
	setField(admin, "f-process_id", "1")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save-integration"))
	in, err := app.Store.GetIntegrationByName(ctx, "msg-peer")
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, admin.ClickNav("new-connection"))
	admin.Do(chromedp.SendKeys(browsertest.TestID("f-name"), "Peer"),
		chromedp.SendKeys(browsertest.TestID("f-endpoint_url"), endpoint),
		chromedp.SendKeys(browsertest.TestID("f-auth_secret"), models.DemoPeerToken))
	setField(admin, "f-environment", "Test")
	setField(admin, "f-auth_type", "bearer")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save-connection"))

	newMessage := func(name, typ, trigger string, watch ...string) {
		t.Helper()
		admin.Open(fmt.Sprintf("/integrations/%d/messages", in.ID))
		require.EqualValues(t, http.StatusOK, admin.ClickNav("new-message"))
		admin.Do(chromedp.SendKeys(browsertest.TestID("f-name"), name))
		setField(admin, "f-type", typ)
		setField(admin, "f-direction", "Outbound")
		setField(admin, "f-trigger", trigger)
		for _, f := range watch {
			admin.Do(chromedp.Click(browsertest.TestID("f-trigger_fields-" + f)))
		}
		if typ == "Create" {
			setField(admin, "f-set_bond_state", "Open")
			admin.Screenshot("designer-messages-1-new-message")
		}
		require.EqualValues(t, http.StatusOK, admin.ClickNav("save"))
		require.Contains(t, admin.Text("flash-success"), "Created message "+name)
	}
	newField := func(ticketField, property string, rows [][2]string) {
		t.Helper()
		require.EqualValues(t, http.StatusOK, admin.ClickNav("new-field"))
		setField(admin, "f-ticket_field", ticketField)
		setField(admin, "f-property", property)
		for i, r := range rows {
			setField(admin, fmt.Sprintf("row-ticket-%d", i), r[0])
			setField(admin, fmt.Sprintf("row-payload-%d", i), r[1])
		}
		require.EqualValues(t, http.StatusOK, admin.ClickNav("save"))
		require.Contains(t, admin.Text("flash-success"), "Added field "+property)
	}

	newMessage("CreateIncident", "Create", "create")
	newField("short_description", "short_description", nil)
	// A value map whose reverse is ambiguous is refused next to the table.
	require.EqualValues(t, http.StatusOK, admin.ClickNav("new-field"))
	setField(admin, "f-ticket_field", "priority")
	setField(admin, "f-property", "priority")
	setField(admin, "row-ticket-0", "1")
	setField(admin, "row-payload-0", "Critical")
	setField(admin, "row-ticket-1", "4")
	setField(admin, "row-payload-1", "Critical")
	require.EqualValues(t, http.StatusUnprocessableEntity, admin.ClickNav("save"))
	require.Contains(t, admin.Text("error-value_map"), `Payload value "Critical" is in two rows`)
	admin.Screenshot("designer-messages-2-refused-value-map")
	setField(admin, "row-payload-1", "Low")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save"))
	admin.Screenshot("designer-messages-3-message-with-fields")

	newMessage("PriorityChanged", "Update", "fields", "priority")
	newField("priority", "priority", [][2]string{{"1", "Critical"}, {"4", "Low"}})
	admin.Open(fmt.Sprintf("/integrations/%d/messages", in.ID))
	admin.Screenshot("designer-messages-4-list")
	var fieldID int64
	require.NoError(t, app.Store.DB(ctx).Raw(`SELECT f.id FROM fields f JOIN messages m ON m.id = f.message_id
		WHERE m.integration_id = ? AND m.name = 'PriorityChanged'`, in.ID).Scan(&fieldID).Error)
	admin.Open(fmt.Sprintf("/fields/%d/edit", fieldID))
	admin.Screenshot("designer-messages-5-value-map")

	// A ticket: created at priority 4, then raised to 1 (the watched field).
	var analyst models.Actor
	require.NoError(t, app.Store.DB(ctx).Raw(`SELECT id AS user_id, role FROM users WHERE name = 'analyst'`).Scan(&analyst).Error)
	tk, err := app.Store.CreateTicket(ctx, analyst, store.TicketInput{ShortDescription: "Designed message", Priority: 4})
	require.NoError(t, err)
	in2 := store.TicketInputOf(tk)
	in2.WorkNotes = "not watched: no PriorityChanged"
	tk, err = app.Store.UpdateTicket(ctx, analyst, tk.ID, tk.Version, in2)
	require.NoError(t, err)
	in2.Priority = 1
	_, err = app.Store.UpdateTicket(ctx, analyst, tk.ID, tk.Version, in2)
	require.NoError(t, err)

	wait.For(t, 15*time.Second, func() (bool, error) {
		var n int64
		err := app.Store.DB(ctx).Model(&models.Transaction{}).Where("integration_id = ? AND state = ?", in.ID, models.Complete).Count(&n).Error
		return n == 2, err
	}, "the Create and the PriorityChanged of %s go Complete", tk.Number)
	var total int64
	require.NoError(t, app.Store.DB(ctx).Model(&models.Transaction{}).Where("integration_id = ?", in.ID).Count(&total).Error)
	require.EqualValues(t, 2, total, "the work-notes update sent nothing on this integration")

	arr := pr.Bond(tk.Number)
	require.Len(t, arr, 2, "%+v", arr)
	require.Equal(t, "CreateIncident", arr[0].Name)
	require.Equal(t, map[string]any{"short_description": "Designed message", "priority": "Low"}, arr[0].Data)
	require.Equal(t, "PriorityChanged", arr[1].Name)
	require.Equal(t, map[string]any{"priority": "Critical"}, arr[1].Data)

	// A Response message whose field maps the ticket's number (the remote's
	// number becomes the bond's reference: TestTwoInstancesResponseMessage
	// shows it between two instances), chosen as CreateIncident's answer.
	admin.Open(fmt.Sprintf("/integrations/%d/messages", in.ID))
	require.EqualValues(t, http.StatusOK, admin.ClickNav("new-message"))
	admin.Do(chromedp.SendKeys(browsertest.TestID("f-name"), "CreateAnswer"))
	setField(admin, "f-type", "Response")
	setField(admin, "f-direction", "Inbound")
	setField(admin, "f-trigger", "none")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save"))
	require.Contains(t, admin.Text("flash-success"), "Created message CreateAnswer")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("new-field"))
	setField(admin, "f-ticket_field", "number")
	setField(admin, "f-property", "number")
	setField(admin, "f-direction", "Inbound")
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save"))
	require.Contains(t, admin.Text("flash-success"), "Added field number")
	var answer, create models.Message
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = ? AND name = 'CreateAnswer'", in.ID).Take(&answer).Error)
	require.NoError(t, app.Store.DB(ctx).Where("integration_id = ? AND name = 'CreateIncident'", in.ID).Take(&create).Error)
	admin.Open(fmt.Sprintf("/messages/%d/edit", create.ID))
	setField(admin, "f-response_message", fmt.Sprint(answer.ID))
	require.EqualValues(t, http.StatusOK, admin.ClickNav("save"))
	admin.Screenshot("designer-messages-6-response-message")
	require.NoError(t, app.Store.DB(ctx).Take(&create, create.ID).Error)
	require.NotNil(t, create.ResponseMessageID, "CreateIncident answers with CreateAnswer")
	require.Equal(t, answer.ID, *create.ResponseMessageID)
	var numberFields int64
	require.NoError(t, app.Store.DB(ctx).Model(&models.Field{}).
		Where("message_id = ? AND ticket_field = 'number' AND property = 'number' AND direction = ?", answer.ID, models.Inbound).
		Count(&numberFields).Error)
	require.EqualValues(t, 1, numberFields, "the Response message maps number")
}
