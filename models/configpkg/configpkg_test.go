package configpkg_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/configpkg"
	"unifi/models/store"
)

type testBundle struct {
	db  *gorm.DB
	st  *store.Store
	pkg *configpkg.Service
}

// setup returns an empty, migrated database; seeded adds the demo.
func setup(t *testing.T, seeded bool) *testBundle {
	t.Helper()
	db := testdb.New(t)
	st := store.NewStore(db, account.New(db, nil), nil)
	if seeded {
		_, err := st.SeedDemo(context.Background(), store.SeedDemoOpts{PeerURL: "http://127.0.0.1:1"})
		require.NoError(t, err)
	}
	return &testBundle{db: db, st: st, pkg: configpkg.New(db, st.SealSecret)}
}

func export(t *testing.T, b *testBundle, name string) []byte {
	t.Helper()
	d, err := b.pkg.Export(context.Background(), name)
	require.NoError(t, err)
	out, err := configpkg.Encode(d)
	require.NoError(t, err)
	return out
}

var admin = models.Actor{Name: "admin", Role: models.RoleAdmin, RemoteAddr: "192.0.2.1"}

// addProcessFields gives the demo's process two fields of its own (in form
// order cost, then risk) and maps risk in the Create message.
func addProcessFields(t *testing.T, b *testBundle) {
	t.Helper()
	require.NoError(t, b.db.Exec(`INSERT INTO process_fields (process_id, name, label, type, choices, required, position)
		SELECT id, 'risk', 'Risk', 'choice', '["Low","High","Critical"]'::jsonb, true, 5 FROM processes WHERE name = 'Incident'
		UNION ALL SELECT id, 'cost', 'Cost (EUR)', 'number', '[]'::jsonb, false, 2 FROM processes WHERE name = 'Incident'`).Error)
	var create models.Message
	require.NoError(t, b.db.Where("name = 'CreateIncident'").Take(&create).Error)
	require.NoError(t, b.db.Create(&models.Field{MessageID: create.ID, TicketField: "custom.risk", Property: "risk_level",
		Position: 99, ValueMap: models.JSON[map[string]string]{V: map[string]string{"Critical": "P1"}}}).Error)
}

// addWholeSettings gives the demo every setting of format 3: a response
// message of CreateIncident whose fields are only received (an inbound map, a
// default, a tie of positions), a message sent when chosen fields change whose
// fields are only sent (a default) or go both ways with an inbound synonym,
// at positions with gaps, and a response action that sets states and notes
// the bond.
func addWholeSettings(t *testing.T, b *testBundle) {
	t.Helper()
	var create models.Message
	require.NoError(t, b.db.Where("name = 'CreateIncident'").Take(&create).Error)
	vm := func(m map[string]string) models.JSON[map[string]string] { return models.JSON[map[string]string]{V: m} }
	resp := models.Message{IntegrationID: create.IntegrationID, Name: "CreateAnswer", Type: models.MessageResponse,
		Direction: models.Inbound, Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore}
	require.NoError(t, b.db.Create(&resp).Error)
	require.NoError(t, b.db.Model(&create).Update("response_message_id", resp.ID).Error)
	watch := models.Message{IntegrationID: create.IntegrationID, Name: "PriorityChanged", Type: models.MessageUpdate,
		Direction: models.Outbound, Trigger: models.TriggerFields, TriggerFields: models.JSON[[]string]{V: []string{"priority", "custom.risk"}},
		BondOwnership: models.OwnershipMustOwn}
	require.NoError(t, b.db.Create(&watch).Error)
	require.NoError(t, b.db.Create(&[]models.Field{
		{MessageID: resp.ID, TicketField: "short_description", Property: "summary", Direction: models.Inbound, Required: true, Position: 10},
		{MessageID: resp.ID, TicketField: "assignment_group", Property: "queue", Direction: models.Inbound, Default: "Service Desk",
			Position: 10, InboundMap: vm(map[string]string{"SD": "Service Desk", "NET": "Network"})},
		{MessageID: watch.ID, TicketField: "priority", Property: "prio", Direction: models.Outbound, Default: "3",
			Required: true, Position: 5, ValueMap: vm(map[string]string{"1": "P1"})},
		{MessageID: watch.ID, TicketField: "custom.cost", Property: "cost_eur", Direction: models.Bidirectional, Position: 400,
			ValueMap: vm(map[string]string{"0": "none"}), InboundMap: vm(map[string]string{"none": "0", "zero": "0"})},
	}).Error)
	complete, rejected, paused := models.Complete, models.ProcessRejected, models.IntegrationPaused
	require.NoError(t, b.db.Create(&models.ResponseAction{IntegrationID: &create.IntegrationID, MessageID: &watch.ID,
		StatusCode: 410, SetTransactionState: &complete, SetProcessState: &rejected, SetIntegrationState: &paused,
		BondNote: "the remote record is gone", Description: "gone"}).Error)
}

// TestRoundTrip: export from A, import into an empty B, export from B: the
// same bytes, the process's own fields included; importing it again into B
// changes nothing.
func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := setup(t, true), setup(t, false)
	// Response actions of the integration, one for every message and one for
	// a message, travel with it.
	require.NoError(t, a.db.Exec(`INSERT INTO response_actions (integration_id, message_id, status_code, retry, set_integration_status, description)
		SELECT i.id, NULL, 503, true, 'Down', 'maintenance window' FROM integrations i
		UNION ALL SELECT m.integration_id, m.id, 409, false, NULL, 'already there' FROM messages m WHERE m.name = 'CreateIncident'`).Error)
	addProcessFields(t, a)
	addWholeSettings(t, a)
	docA := export(t, a, models.DemoIntegrationName)
	require.Contains(t, string(docA), `"format": 3`)
	require.Contains(t, string(docA), `"response_message": "CreateAnswer"`)
	require.Contains(t, string(docA), `"bond_note": "the remote record is gone"`)
	require.Contains(t, string(docA), `"position": 400`)
	require.Contains(t, string(docA), `"default": "Service Desk"`)
	require.Contains(t, string(docA), `"ticket_field": "custom.risk"`)
	require.Contains(t, string(docA), `"message": "CreateIncident",`)
	require.NotContains(t, string(docA), models.DemoPeerToken, "no secret in a package")

	d, err := configpkg.DecodeBytes(docA)
	require.NoError(t, err)
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	require.Zero(t, plan.Count(configpkg.Change))
	require.Zero(t, plan.Count(configpkg.Keep))
	require.Equal(t, []configpkg.ProcessField{
		{Name: "cost", Label: "Cost (EUR)", Type: "number", Choices: []string{}},
		{Name: "risk", Label: "Risk", Type: "choice", Required: true, Choices: []string{"Low", "High", "Critical"}}}, d.Process.Fields)
	require.Equal(t, 1+2+1+1+len(d.Messages)+len(d.ResponseActions), plan.Count(configpkg.Create),
		"process, its two fields, integration, connection, messages")
	require.Equal(t, []string{"Peer instance"}, plan.NeedCredentials)
	var n int64
	require.NoError(t, b.db.Table("integrations").Count(&n).Error)
	require.Zero(t, n, "the dry run stores nothing")

	in, err := b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.NoError(t, err)
	docB := export(t, b, models.DemoIntegrationName)
	require.Equal(t, string(docA), string(docB), "export B = export A, byte for byte")
	var risk models.ProcessField
	require.NoError(t, b.db.Where("name = 'risk'").Take(&risk).Error)
	require.Equal(t, []string{"Low", "High", "Critical"}, risk.Choices.V)
	require.Equal(t, 1, risk.Position, "the document's order")
	// Every setting is stored in B, not only echoed by the export.
	var bmsgs []models.Message
	require.NoError(t, b.db.Find(&bmsgs).Error)
	byName := map[string]models.Message{}
	for _, m := range bmsgs {
		byName[m.Name] = m
	}
	require.Equal(t, byName["CreateAnswer"].ID, *byName["CreateIncident"].ResponseMessageID)
	require.Equal(t, []string{"priority", "custom.risk"}, byName["PriorityChanged"].TriggerFields.V)
	fieldsOf := func(message string) ([]int, map[string]models.Field, []string) {
		var rows []models.Field
		require.NoError(t, b.db.Where("message_id = ?", byName[message].ID).Order("position, id").Find(&rows).Error)
		var positions []int
		var order []string
		got := map[string]models.Field{}
		for _, f := range rows {
			positions, order = append(positions, f.Position), append(order, f.TicketField)
			got[f.TicketField] = f
		}
		return positions, got, order
	}
	positions, _, _ := fieldsOf("CreateIncident")
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 99}, positions, "positions kept, gaps included")
	positions, got, order := fieldsOf("CreateAnswer")
	require.Equal(t, []int{10, 10}, positions)
	require.Equal(t, []string{"short_description", "assignment_group"}, order, "a tie keeps its order")
	require.Equal(t, models.Inbound, got["assignment_group"].Direction)
	require.Equal(t, "Service Desk", got["assignment_group"].Default)
	require.Equal(t, map[string]string{"SD": "Service Desk", "NET": "Network"}, got["assignment_group"].InboundMap.V)
	positions, got, _ = fieldsOf("PriorityChanged")
	require.Equal(t, []int{5, 400}, positions)
	require.Equal(t, models.Outbound, got["priority"].Direction)
	require.Equal(t, "3", got["priority"].Default)
	require.True(t, got["priority"].Required)
	require.Equal(t, map[string]string{"none": "0", "zero": "0"}, got["custom.cost"].InboundMap.V)
	var gone models.ResponseAction
	require.NoError(t, b.db.Where("status_code = 410").Take(&gone).Error)
	require.Equal(t, models.Complete, *gone.SetTransactionState)
	require.Equal(t, models.ProcessRejected, *gone.SetProcessState)
	require.Equal(t, models.IntegrationPaused, *gone.SetIntegrationState)
	require.Equal(t, "the remote record is gone", gone.BondNote)
	require.Equal(t, byName["PriorityChanged"].ID, *gone.MessageID)

	var conn models.Connection
	require.NoError(t, b.db.Where("integration_id = ?", in.ID).Take(&conn).Error)
	require.False(t, conn.Active, "inactive until its credentials are given")
	require.Empty(t, conn.AuthSecret)
	require.Nil(t, conn.InboundUserID)

	var log models.ActivityLog
	require.NoError(t, b.db.Where("action = ?", "import package").Take(&log).Error)
	require.Equal(t, "admin", log.UserName)
	require.Equal(t, "192.0.2.1", log.RemoteAddr)
	require.Equal(t, models.DemoIntegrationName, log.RecordLabel)
	require.EqualValues(t, plan.Count(configpkg.Create), log.After.V["created"])

	again, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	require.Equal(t, len(again.Steps), again.Count(configpkg.Keep), "a second import leaves everything alone: %+v", again.Steps)
}

// TestImportChanges: an import into an instance that has the integration
// lists what changes, applies exactly that, and refuses a stale plan.
func TestImportChanges(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	d, err := configpkg.DecodeBytes(export(t, b, models.DemoIntegrationName))
	require.NoError(t, err)
	d.Integration.RetryLimit = 7
	for i := range d.Messages {
		if d.Messages[i].Name == "UpdateIncident" {
			d.Messages[i].Fields[0].Required = true
		}
	}
	d.Messages = append(d.Messages, configpkg.Message{Name: "Ping", Type: "Heartbeat", Direction: "Outbound",
		Trigger: "none", BondOwnership: "ignore", Path: "/ping"})
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	steps := map[string]configpkg.Step{}
	for _, s := range plan.Steps {
		steps[s.Record+" "+s.Name] = s
	}
	require.Equal(t, configpkg.Change, steps["integration demo"].Action)
	require.Equal(t, []string{"retry_limit: 3 -> 7"}, steps["integration demo"].Details)
	require.Equal(t, configpkg.Change, steps["message UpdateIncident"].Action)
	require.Equal(t, configpkg.Create, steps["message Ping"].Action)
	require.Equal(t, configpkg.Keep, steps["message CreateIncident"].Action)
	require.Equal(t, configpkg.Keep, steps["connection Peer instance"].Action)
	require.Empty(t, plan.NeedCredentials, "the existing connection keeps its secret")

	// The database changes after the dry run: the plan is refused, nothing stored.
	require.NoError(t, b.db.Exec("UPDATE integrations SET retry_delay_s = 9").Error)
	_, err = b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.ErrorIs(t, err, models.ErrConflict)
	var msgs int64
	require.NoError(t, b.db.Table("messages").Where("name = 'Ping'").Count(&msgs).Error)
	require.Zero(t, msgs)

	plan, err = b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	_, err = b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.NoError(t, err)
	got, err := b.pkg.Export(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	require.Equal(t, 7, got.Integration.RetryLimit)
	want, err := configpkg.Encode(d)
	require.NoError(t, err)
	gotBytes, err := configpkg.Encode(got)
	require.NoError(t, err)
	require.Equal(t, string(want), string(gotBytes))
	var conn models.Connection
	require.NoError(t, b.db.Take(&conn).Error)
	require.True(t, conn.Active, "the existing connection stays active")
}

// TestImportAllOrNothing: a failure half-way (a process the database refuses
// to change while the document is valid) leaves nothing behind.
func TestImportAllOrNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := setup(t, true), setup(t, false)
	d, err := configpkg.DecodeBytes(export(t, a, models.DemoIntegrationName))
	require.NoError(t, err)
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	// A trigger that fails on the last response action's insert stands for
	// any late failure.
	require.NoError(t, b.db.Exec(`CREATE FUNCTION fail_insert() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN RAISE EXCEPTION 'refused by the test'; END $$`).Error)
	require.NoError(t, b.db.Exec(`CREATE TRIGGER fail_fields BEFORE INSERT ON fields FOR EACH ROW EXECUTE FUNCTION fail_insert()`).Error)
	_, err = b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.ErrorContains(t, err, "refused by the test")
	for _, tbl := range []string{"processes", "integrations", "connections", "messages", "activity_logs"} {
		var n int64
		require.NoError(t, b.db.Table(tbl).Count(&n).Error)
		require.Zero(t, n, tbl)
	}
}

func TestSetCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := setup(t, true), setup(t, false)
	d, err := configpkg.DecodeBytes(export(t, a, models.DemoIntegrationName))
	require.NoError(t, err)
	in, err := b.pkg.ApplyPlanned(ctx, admin, d)
	require.NoError(t, err)
	conns, err := b.pkg.Connections(ctx, in.ID)
	require.NoError(t, err)
	require.Len(t, conns, 1)
	require.True(t, conns[0].NeedsSecret())
	id := conns[0].Connection.ID

	_, err = b.pkg.SetCredentials(ctx, admin, id, configpkg.Credentials{Activate: true})
	var ve *models.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Fields["secret"], "give its secret before activating it")
	_, err = b.pkg.SetCredentials(ctx, admin, id, configpkg.Credentials{Secret: "tok", InboundUserID: 999})
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Fields["inbound_user_id"], "integration account")

	u, err := account.New(b.db, nil).CreateUser(ctx, admin, account.NewUserOpts{Name: "peer", Role: models.RoleIntegration,
		Password: "peer-password-1", Token: "peer-token-0123456789"})
	require.NoError(t, err)
	_, err = b.pkg.SetCredentials(ctx, admin, id, configpkg.Credentials{Secret: "s3cret-token", InboundUserID: u.ID, Activate: true})
	require.NoError(t, err)
	c, err := b.st.ActiveConnection(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, "s3cret-token", c.AuthSecret, "sealed at rest, opened for the engine")
	var raw string
	require.NoError(t, b.db.Raw("SELECT auth_secret FROM connections WHERE id = ?", id).Scan(&raw).Error)
	require.NotContains(t, raw, "s3cret")
	var log models.ActivityLog
	require.NoError(t, b.db.Where("action = ?", "set connection credentials").Take(&log).Error)
	require.Equal(t, "changed", log.After.V["secret"])
	require.NotContains(t, strings.ToLower(log.After.V["secret"].(string)), "s3cret")
}

// TestDecodeRefuses: malformed and hostile documents get an error naming
// the place, and Decode stores nothing (it has no database).
func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	a := setup(t, true)
	good := string(export(t, a, models.DemoIntegrationName))
	const procFields = `"fields": []
  },
  "integration"`
	require.Contains(t, good, procFields, "the demo's process has no fields of its own")
	// f0 replaces the settings line of messages[0].fields[0]; pri is the
	// settings of messages[0].fields[3] (priority, with a value map).
	const field0 = `"property": "short_description",
          "direction": "Bidirectional",`
	require.Contains(t, good, field0)
	f0 := func(direction string) string {
		return strings.Replace(good, field0, `"property": "short_description",
          `+direction, 1)
	}
	const pri = `"ticket_field": "priority",
          "property": "priority",
          "direction": "Bidirectional",
          "required": false,
          "default": "",
          "position": 3,
          "value_map": {
            "1": "Critical",
            "2": "High",
            "3": "Moderate",
            "4": "Low",
            "5": "Planning"
          },
          "inbound_value_map": {}`
	require.Contains(t, good, pri)
	require.Contains(t, good, `"response_actions": []`, "the demo has no response actions of its own")
	act := func(keys string) string {
		return strings.Replace(good, `"response_actions": []`, `"response_actions": [{"status_code": 409, `+keys+`}]`, 1)
	}
	pf := func(list string) string {
		return strings.Replace(good, procFields, `"fields": [`+list+`]
  },
  "integration"`, 1)
	}
	// v1 is the shipped format 1 template, to which the keys of format 2
	// (scripts, variables, poll processors, pollers) are added: refused,
	// each at its place.
	v1b, err := os.ReadFile("templates/unifi-envelope.json")
	require.NoError(t, err)
	v1 := string(v1b)
	require.Contains(t, v1, `"format": 1,`)
	require.Contains(t, v1, `"name": "Peer instance",`)
	require.Contains(t, v1, `"name": "CreateIncident",`)
	tests := []struct {
		name, doc, want string
	}{
		{"ScriptsInFormat1", strings.Replace(v1, `"name": "CreateIncident",`, `"name": "CreateIncident", "scripts": {"response": "return {};"},`, 1),
			"messages[0].scripts: unknown key (format 1 does not have it"},
		{"VariablesInFormat1", strings.Replace(v1, `"name": "Peer instance",`, `"name": "Peer instance", "variables": {"project": "OPS"},`, 1),
			"connections[0].variables: unknown key (format 1 does not have it"},
		{"PollProcessorsInFormat1", strings.Replace(v1, `"format": 1,`, `"format": 1, "poll_processors": [],`, 1),
			"poll_processors: unknown key (format 1 does not have it"},
		{"PollersInFormat1", strings.Replace(v1, `"format": 1,`, `"format": 1, "pollers": [],`, 1),
			"pollers: unknown key (format 1 does not have it"},
		{"Empty", "", "the document is empty"},
		{"NotAnObject", `[1,2]`, "the document must be a JSON object"},
		{"Malformed", `{"format": 3, "process": {`, "ends too early"},
		{"MissingFormat", `{"process": {}}`, `missing key "format"`},
		{"NewerFormat", strings.Replace(good, `"format": 3`, `"format": 4`, 1), "format 4, written by a newer version"},
		{"FormatString", strings.Replace(good, `"format": 3`, `"format": "3"`, 1), "format: expected a whole number, found a string"},
		{"UnknownTopKey", strings.Replace(good, `"format": 3,`, `"format": 3, "secrets": [],`, 1), "secrets: unknown key"},
		{"UnknownNestedKey", strings.Replace(good, `"property": "description",`, `"property": "description", "colour": "red",`, 1),
			"messages[0].fields[1].colour: unknown key"},
		{"WrongType", strings.Replace(good, `"retry_limit": 3`, `"retry_limit": "three"`, 1), "integration.retry_limit: expected a whole number, found a string"},
		{"Fraction", strings.Replace(good, `"retry_limit": 3`, `"retry_limit": 3.5`, 1), "integration.retry_limit: expected a whole number, found 3.5"},
		{"BoolAsString", strings.Replace(good, `"attach_logs": true`, `"attach_logs": "yes"`, 1), "integration.attach_logs: expected true or false"},
		{"Duplicate", strings.Replace(good, `"retry_limit": 3`, `"retry_limit": 3, "retry_limit": 4`, 1), "integration.retry_limit: the key appears twice"},
		{"MissingReceipt", strings.Replace(good, `"receipt_message": "Receipt"`, `"receipt_message": "Nope"`, 1),
			`messages[0].receipt_message: there is no message called "Nope" in this document`},
		{"BadDirection", strings.Replace(good, `"direction": "Bidirectional"`, `"direction": "Sideways"`, 1), `messages[0].direction: "Sideways" is not one of`},
		{"BadTicketField", strings.Replace(good, `"ticket_field": "description"`, `"ticket_field": "password_hash"`, 1), `messages[0].fields[1].ticket_field: "password_hash" is not one of`},
		{"OutOfRange", strings.Replace(good, `"retry_limit": 3`, `"retry_limit": 1000`, 1), "integration.retry_limit: 1000 is outside the allowed range 0 to 100"},
		{"BadName", strings.Replace(good, `"name": "demo"`, `"name": "demo; DROP TABLE x"`, 1), "integration.name:"},
		{"NUL", strings.Replace(good, `"description": "Demo`, `"description": "\u0000Demo`, 1), "integration.description: This contains a NUL character"},
		{"InvalidUTF8", strings.Replace(good, `"Demo`, "\"D\xffemo", 1), "not valid UTF-8 text (at byte"},
		{"Trailing", good + "{}", "there is more after the end of the document"},
		{"Huge", `{"format": 1, "x": "` + strings.Repeat("x", 10<<20) + `"}`, "larger than the limit of 2 MB"},
		{"DeepNesting", `{"format": 1, "process": ` + strings.Repeat("[", 100000) + `}`, "malformed JSON at byte"},
		// Process fields (format 2), each fault at its place.
		{"ProcessFieldsInFormat1", strings.Replace(good, `"format": 3`, `"format": 1`, 1),
			"process.fields: unknown key (format 1 does not have it"},
		{"ProcessFieldsNotAList", strings.Replace(good, `"fields": []`, `"fields": {"risk": "Low"}`, 1), "process.fields: expected a list, found an object"},
		{"ProcessFieldUnknownKey", pf(`{"name": "risk", "label": "Risk", "type": "text", "colour": "red"}`), "process.fields[0].colour: unknown key"},
		{"ProcessFieldMissingType", pf(`{"name": "risk", "label": "Risk"}`), `process.fields[0]: missing key "type"`},
		{"ProcessFieldBadType", pf(`{"name": "risk", "label": "Risk", "type": "colour"}`), `process.fields[0].type: Choose a type`},
		{"ProcessFieldRequiredString", pf(`{"name": "risk", "label": "Risk", "type": "text", "required": "yes"}`), "process.fields[0].required: expected true or false"},
		{"ProcessFieldChoicesNotStrings", pf(`{"name": "risk", "label": "Risk", "type": "choice", "choices": [1, 2]}`), "process.fields[0].choices[0]: expected a string, found the number 1"},
		{"ProcessFieldChoiceTwice", pf(`{"name": "risk", "label": "Risk", "type": "choice", "choices": ["Low", "Low"]}`), `process.fields[0].choices: Value "Low" is given twice`},
		{"ProcessFieldChoicesOfText", pf(`{"name": "risk", "label": "Risk", "type": "text", "choices": ["Low"]}`), "process.fields[0].choices: Only a choice field has values"},
		{"ProcessFieldBadName", pf(`{"name": "Risk Level", "label": "Risk", "type": "text"}`), `process.fields[0].name: "Risk Level" is not a usable name`},
		{"ProcessFieldBuiltInName", pf(`{"name": "priority", "label": "P", "type": "text"}`), `process.fields[0].name: "priority" is a built-in ticket field`},
		{"ProcessFieldSpacedLabel", pf(`{"name": "risk", "label": " Risk", "type": "text"}`), `process.fields[0].label: " Risk" starts or ends with spaces`},
		{"ProcessFieldNUL", pf(`{"name": "risk", "label": "Ri\u0000sk", "type": "text"}`), "process.fields[0].label: This contains a NUL character"},
		{"ProcessFieldTwice", pf(`{"name": "risk", "label": "Risk", "type": "text"}, {"name": "risk", "label": "Again", "type": "text"}`),
			`process.fields[1].name: another field of the process is already called "risk"`},
		{"MapsMissingProcessField", strings.Replace(good, `"ticket_field": "description"`, `"ticket_field": "custom.nope"`, 1),
			`messages[0].fields[1].ticket_field: "custom.nope" is not one of`},
		// The settings of format 3: refused in an older document, then each
		// wrong type and each value the Designer would refuse, at its place.
		{"Format3KeyInFormat2", strings.Replace(good, `"format": 3`, `"format": 2`, 1),
			"messages[0].response_message: unknown key (format 2 does not have it"},
		{"FieldDirectionNumber", f0(`"direction": 2,`), "messages[0].fields[0].direction: expected a string, found the number 2"},
		{"FieldDirectionBad", f0(`"direction": "Sideways",`), `messages[0].fields[0].direction: "Sideways" is not one of`},
		{"FieldDefaultBool", strings.Replace(good, `"default": ""`, `"default": true`, 1), "messages[0].fields[0].default: expected a string, found true"},
		{"FieldDefaultNotATicketValue", strings.Replace(good, pri, strings.Replace(pri, `"default": ""`, `"default": "9"`, 1), 1),
			"messages[0].fields[3].default: The default is a ticket value"},
		{"FieldPositionString", strings.Replace(good, `"position": 0`, `"position": "first"`, 1), "messages[0].fields[0].position: expected a whole number, found a string"},
		{"FieldPositionFraction", strings.Replace(good, `"position": 0`, `"position": 0.5`, 1), "messages[0].fields[0].position: expected a whole number, found 0.5"},
		{"FieldPositionRange", strings.Replace(good, `"position": 0`, `"position": -1`, 1), "messages[0].fields[0].position: -1 is outside the allowed range 0 to 1000"},
		{"FieldPositionOrder", strings.Replace(good, `"position": 1`, `"position": 9`, 1), "messages[0].fields[2].position: 2 comes after 9"},
		{"InboundMapList", strings.Replace(good, `"inbound_value_map": {}`, `"inbound_value_map": ["a"]`, 1), "messages[0].fields[0].inbound_value_map: expected an object, found a list"},
		{"InboundMapNumber", strings.Replace(good, `"inbound_value_map": {}`, `"inbound_value_map": {"a": 1}`, 1), `messages[0].fields[0].inbound_value_map.a: expected a string, found the number 1`},
		{"InboundMapInconsistent", strings.Replace(good, pri, strings.Replace(pri, `"inbound_value_map": {}`, `"inbound_value_map": {"Critical": "2", "High": "2"}`, 1), 1),
			"messages[0].fields[3].value_map: Ticket value \"1\" goes out as \"Critical\", which comes back as \"2\""},
		{"OutboundWithInboundRows", strings.Replace(good, pri, strings.Replace(strings.Replace(pri, `"inbound_value_map": {}`, `"inbound_value_map": {"Critical": "1"}`, 1),
			`"direction": "Bidirectional"`, `"direction": "Outbound"`, 1), 1), "messages[0].fields[3].value_map: This field only goes out"},
		{"ResponseMessageNumber", strings.Replace(good, `"response_message": ""`, `"response_message": 7`, 1), "messages[0].response_message: expected a string, found the number 7"},
		{"ResponseMessageMissing", strings.Replace(good, `"response_message": ""`, `"response_message": "Nope"`, 1), `messages[0].response_message: there is no message called "Nope"`},
		{"ResponseMessageNotAResponse", strings.Replace(good, `"response_message": ""`, `"response_message": "Receipt"`, 1),
			`messages[0].response_message: "Receipt" is a message of type Receipt; a response message is of type Response`},
		{"TriggerFieldsString", strings.Replace(good, `"trigger_fields": []`, `"trigger_fields": "priority"`, 1), "messages[0].trigger_fields: expected a list, found a string"},
		{"TriggerFieldsOfAnotherTrigger", strings.Replace(good, `"trigger_fields": []`, `"trigger_fields": ["priority"]`, 1), `messages[0].trigger_fields: only a message with trigger "fields"`},
		{"TriggerFieldsNone", strings.Replace(good, `"trigger": "create"`, `"trigger": "fields"`, 1), `messages[0].trigger_fields: trigger "fields" needs at least one ticket field`},
		{"TriggerFieldsUnknown", strings.Replace(strings.Replace(good, `"trigger": "create"`, `"trigger": "fields"`, 1), `"trigger_fields": []`, `"trigger_fields": ["password_hash"]`, 1),
			`messages[0].trigger_fields[0]: "password_hash" is not one of`},
		{"ActionStateNumber", act(`"retry": false, "set_transaction_state": 5`), "response_actions[0].set_transaction_state: expected a string, found the number 5"},
		{"ActionStateBad", act(`"retry": false, "set_transaction_state": "Queued"`), `response_actions[0].set_transaction_state: "Queued" is not one of "", "Complete", "Error"`},
		{"ActionStateWithRetry", act(`"retry": true, "set_transaction_state": "Error"`), "response_actions[0].set_transaction_state: a retried answer"},
		{"ActionProcessStateBad", act(`"retry": false, "set_process_state": "Pending"`), `response_actions[0].set_process_state: "Pending" is not one of`},
		{"ActionIntegrationStateOff", act(`"retry": false, "set_integration_state": "Off"`), `response_actions[0].set_integration_state: "Off" is not one of "", "Paused"`},
		{"ActionNoteList", act(`"retry": false, "bond_note": []`), "response_actions[0].bond_note: expected a string, found a list"},
		{"ActionNoteLong", act(`"retry": false, "bond_note": "` + strings.Repeat("n", 501) + `"`), "response_actions[0].bond_note: is 501 characters long; at most 500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := configpkg.Decode(strings.NewReader(tc.doc))
			var pe *configpkg.Error
			require.True(t, errors.As(err, &pe), "a document fault, not %v", err)
			require.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestEncodeStable(t *testing.T) {
	t.Parallel()
	a := setup(t, true)
	one, two := export(t, a, models.DemoIntegrationName), export(t, a, models.DemoIntegrationName)
	require.True(t, bytes.Equal(one, two))
	d, err := configpkg.DecodeBytes(one)
	require.NoError(t, err)
	again, err := configpkg.Encode(d)
	require.NoError(t, err)
	require.Equal(t, string(one), string(again), "decode then encode gives the same bytes")
}

// TestPlanTellsProcessChange: a document that puts the integration under
// another process says so on the integration's step.
func TestPlanTellsProcessChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	d, err := configpkg.DecodeBytes(export(t, b, models.DemoIntegrationName))
	require.NoError(t, err)
	d.Process = configpkg.Process{Name: "Change", TicketTable: "change_request", ReferenceField: "number", NumberPrefix: "CHG"}
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	require.Equal(t, configpkg.Step{Action: configpkg.Create, Record: "process", Name: "Change"}, plan.Steps[0])
	require.Equal(t, configpkg.Step{Action: configpkg.Change, Record: "integration", Name: "demo",
		Details: []string{`process: "Incident" -> "Change"`}}, plan.Steps[1])
}

// TestReadsOlderFormats: the shipped template, a format 1 document, and
// the same as format 2 still read, with format 3's settings at their
// defaults (both ways, no default, the list's order as position, the inverse
// of the outbound map, no response message, no watched fields, no states),
// and encode as format 3; imported into an empty instance, the export is
// that encoding.
func TestReadsOlderFormats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	one, err := os.ReadFile("templates/unifi-envelope.json")
	require.NoError(t, err)
	require.Contains(t, string(one), `"format": 1,`)
	two := strings.Replace(strings.Replace(string(one), `"format": 1,`, `"format": 2,`, 1),
		`"number_prefix": "INC"`, `"number_prefix": "INC", "fields": []`, 1)
	var encoded []byte
	for _, doc := range []string{string(one), two} {
		d, err := configpkg.DecodeBytes([]byte(doc))
		require.NoError(t, err)
		require.Empty(t, d.Process.Fields)
		for _, m := range d.Messages {
			require.Empty(t, m.ResponseMessage)
			require.Empty(t, m.TriggerFields)
			for i, f := range m.Fields {
				require.Equal(t, "Bidirectional", f.Direction)
				require.Empty(t, f.Default)
				require.Equal(t, i, f.Position)
				require.Empty(t, f.InboundValueMap)
			}
		}
		again, err := configpkg.Encode(d)
		require.NoError(t, err)
		require.Contains(t, string(again), `"format": 3,`)
		if encoded != nil {
			require.Equal(t, string(encoded), string(again), "format 1 and 2 mean the same")
		}
		encoded = again
	}
	d, err := configpkg.DecodeBytes(one)
	require.NoError(t, err)
	b := setup(t, false)
	_, err = b.pkg.ApplyPlanned(ctx, admin, d)
	require.NoError(t, err)
	require.Equal(t, string(encoded), string(export(t, b, d.Integration.Name)))
}

// TestImportProcessFields: an import into an instance whose process has
// fields lists and applies each field's change, creates the new ones in the
// document's order, keeps the ones it leaves out, and gives a changed field
// a new version.
func TestImportProcessFields(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	addProcessFields(t, b)
	d, err := configpkg.DecodeBytes(export(t, b, models.DemoIntegrationName))
	require.NoError(t, err)
	// The document: risk (changed) first, then a new field; cost left out.
	risk := d.Process.Fields[1]
	risk.Label, risk.Choices = "Risk level", []string{"Low", "High"}
	d.Process.Fields = []configpkg.ProcessField{risk, {Name: "approved", Label: "Approved", Type: "boolean", Choices: []string{}}}
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	var got []configpkg.Step
	for _, s := range plan.Steps {
		if s.Record == "process field" {
			got = append(got, s)
		}
	}
	require.Equal(t, []configpkg.Step{
		{Action: configpkg.Change, Record: "process field", Name: "risk",
			Details: []string{`label: "Risk" -> "Risk level"`, `choices: ["Low","High","Critical"] -> ["Low","High"]`}},
		{Action: configpkg.Create, Record: "process field", Name: "approved"},
		{Action: configpkg.Keep, Record: "process field", Name: "cost", Details: []string{"not in the document; left as it is"}},
	}, got)

	_, err = b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.NoError(t, err)
	var rows []models.ProcessField
	require.NoError(t, b.db.Order("position, id").Find(&rows).Error)
	require.Len(t, rows, 3)
	byName := map[string]models.ProcessField{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	require.Equal(t, "Risk level", byName["risk"].Label)
	require.Equal(t, []string{"Low", "High"}, byName["risk"].Choices.V)
	require.Equal(t, 2, byName["risk"].Version, "a change is a new version")
	require.Equal(t, 0, byName["risk"].Position)
	require.Equal(t, 1, byName["approved"].Position)
	require.Equal(t, models.FieldBoolean, byName["approved"].Type)
	require.Equal(t, "Cost (EUR)", byName["cost"].Label, "left out: kept")

	again, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	require.Zero(t, again.Count(configpkg.Change)+again.Count(configpkg.Create), "%+v", again.Steps)
}

// TestImportChangesWholeSettings: an import that changes format 3's settings
// of existing records (a response action's states and note set back to none,
// a field's direction and maps, a message's response message and watched
// fields) lists them and stores exactly the document.
func TestImportChangesWholeSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, true)
	addProcessFields(t, b)
	addWholeSettings(t, b)
	d, err := configpkg.DecodeBytes(export(t, b, models.DemoIntegrationName))
	require.NoError(t, err)
	for i := range d.ResponseActions {
		if a := &d.ResponseActions[i]; a.StatusCode == 410 {
			a.SetTransactionState, a.SetProcessState, a.SetIntegrationState, a.BondNote = "", "Accepted", "", "gone there"
		}
	}
	for i := range d.Messages {
		switch m := &d.Messages[i]; m.Name {
		case "CreateIncident":
			m.ResponseMessage = ""
		case "PriorityChanged":
			m.TriggerFields = []string{"custom.risk"}
			m.Fields[0].Direction, m.Fields[0].InboundValueMap, m.Fields[0].Position = "Bidirectional", map[string]string{"P1": "1"}, 6
		}
	}
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	steps := map[string]configpkg.Step{}
	for _, s := range plan.Steps {
		steps[s.Record+" "+s.Name] = s
	}
	require.Equal(t, []string{`set_transaction_state: "Complete" -> ""`, `set_process_state: "Rejected" -> "Accepted"`,
		`set_integration_state: "Paused" -> ""`, `bond_note: "the remote record is gone" -> "gone there"`},
		steps["response action 410 (PriorityChanged)"].Details)
	require.Equal(t, []string{`response_message: "CreateAnswer" -> ""`}, steps["message CreateIncident"].Details)
	require.Equal(t, []string{`trigger_fields: ["priority","custom.risk"] -> ["custom.risk"]`,
		"fields: the mapping changes (fields, value maps or their order)"}, steps["message PriorityChanged"].Details)

	_, err = b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.NoError(t, err)
	want, err := configpkg.Encode(d)
	require.NoError(t, err)
	require.Equal(t, string(want), string(export(t, b, models.DemoIntegrationName)))
	var gone models.ResponseAction
	require.NoError(t, b.db.Where("status_code = 410").Take(&gone).Error)
	require.Nil(t, gone.SetTransactionState)
	require.Nil(t, gone.SetIntegrationState)
	require.Equal(t, models.ProcessAccepted, *gone.SetProcessState)
}

// TestTemplatesRead: every shipped template (older formats, value maps that
// map back through their inverse) passes format 3's checks.
func TestTemplatesRead(t *testing.T) {
	t.Parallel()
	for _, tpl := range configpkg.Templates {
		d, err := configpkg.TemplateDocument(tpl.Key)
		require.NoError(t, err, tpl.Key)
		require.NotEmpty(t, d.Messages, tpl.Key)
		// A template that has scripts, variables or pollers declares format
		// 2, which has them (a format 1 document is refused at the key).
		scripted := len(d.PollProcessors) > 0 || len(d.Pollers) > 0
		for _, m := range d.Messages {
			scripted = scripted || len(m.Scripts) > 0
		}
		if scripted {
			require.GreaterOrEqual(t, d.Format, 2, tpl.Key)
		}
	}
}
