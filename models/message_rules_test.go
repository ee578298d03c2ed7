package models

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFires(t *testing.T) {
	t.Parallel()
	watched := []string{"priority", "state"}
	tests := []struct {
		name    string
		trigger Trigger
		change  TicketChange
		want    bool
	}{
		{"CreateOnCreate", TriggerCreate, TicketChange{Event: TriggerCreate}, true},
		{"CreateOnUpdate", TriggerCreate, TicketChange{Event: TriggerUpdate}, false},
		{"UpdateOnUpdateWithoutChange", TriggerUpdate, TicketChange{Event: TriggerUpdate}, true},
		{"UpdateOnResolve", TriggerUpdate, TicketChange{Event: TriggerResolve}, false},
		{"ResolveOnResolve", TriggerResolve, TicketChange{Event: TriggerResolve, Changed: []string{"state"}}, true},
		{"NoneNever", TriggerNone, TicketChange{Event: TriggerUpdate, Changed: []string{"priority"}}, false},
		{"FieldsWatchedChanged", TriggerFields, TicketChange{Event: TriggerUpdate, Changed: []string{"description", "priority"}}, true},
		{"FieldsOtherChanged", TriggerFields, TicketChange{Event: TriggerUpdate, Changed: []string{"description"}}, false},
		{"FieldsNothingChanged", TriggerFields, TicketChange{Event: TriggerUpdate}, false},
		{"FieldsOnResolve", TriggerFields, TicketChange{Event: TriggerResolve, Changed: []string{"state"}}, true},
		{"FieldsNeverOnCreate", TriggerFields, TicketChange{Event: TriggerCreate, Changed: []string{"priority"}}, false},
		{"UnknownTrigger", Trigger("sometimes"), TicketChange{Event: TriggerUpdate, Changed: []string{"priority"}}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, Fires(tc.trigger, watched, tc.change))
		})
	}
}

func TestChangedFields(t *testing.T) {
	t.Parallel()
	before := Ticket{ShortDescription: "Printer", State: "New", Priority: 4, Urgency: 3, Impact: 3}
	after := before
	require.Empty(t, ChangedFields(&before, &after))
	after.Priority, after.WorkNotes = 1, "called the user"
	require.Equal(t, []string{"priority", "work_notes"}, ChangedFields(&before, &after))
}

func TestValueMapsFromRows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		rows    []ValueRow
		out, in map[string]string
		problem string
	}{
		{name: "BothWays", rows: []ValueRow{{"1", "Critical", Bidirectional}, {"4", "Low", Bidirectional}},
			out: map[string]string{"1": "Critical", "4": "Low"}, in: map[string]string{"Critical": "1", "Low": "4"}},
		{name: "BlankRowsSkipped", rows: []ValueRow{{"", "", Bidirectional}, {"1", "Critical", Bidirectional}, {"", "", ""}},
			out: map[string]string{"1": "Critical"}, in: map[string]string{"Critical": "1"}},
		{name: "OneWayRows", rows: []ValueRow{{"4", "Low", Bidirectional}, {"5", "Low", Outbound}, {"1", "P1", Inbound}},
			out: map[string]string{"4": "Low", "5": "Low"}, in: map[string]string{"Low": "4", "P1": "1"}},
		{name: "HalfRow", rows: []ValueRow{{"1", "Critical", Bidirectional}, {"2", "", Bidirectional}},
			problem: "Row 2 needs both a ticket value and a payload value."},
		{name: "DuplicateTicketValue", rows: []ValueRow{{"1", "Critical", Bidirectional}, {"1", "High", Outbound}},
			problem: `Ticket value "1" is in two rows that map outbound; keep one of them.`},
		{name: "DuplicatePayloadValue", rows: []ValueRow{{"4", "Low", Bidirectional}, {"5", "Low", Bidirectional}},
			problem: `Payload value "Low" is in two rows that map inbound; keep one of them, or make the other outbound only.`},
		{name: "BadDirection", rows: []ValueRow{{"1", "Critical", "Sideways"}},
			problem: "Row 1: the direction must be both ways, outbound or inbound."},
		{name: "NUL", rows: []ValueRow{{"1", "Crit\x00", Bidirectional}},
			problem: "Row 1: This contains a NUL character, which cannot be stored; remove it and try again."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, in, problem := ValueMapsFromRows(tc.rows)
			require.Equal(t, tc.problem, problem)
			if tc.problem == "" {
				require.Equal(t, tc.out, out)
				require.Equal(t, tc.in, in)
				// Rows -> maps -> rows -> maps is stable: the editor shows what is stored.
				out2, in2, p2 := ValueMapsFromRows(ValueRowsOf(out, in))
				require.Empty(t, p2)
				require.Equal(t, out, out2)
				require.Equal(t, in, in2)
			}
		})
	}
}

func TestValueRowsOfOrder(t *testing.T) {
	t.Parallel()
	rows := ValueRowsOf(map[string]string{"10": "Ten", "2": "Two", "5": "Low"}, map[string]string{"Ten": "10", "Two": "2", "Low": "4", "P1": "1"})
	require.Equal(t, []ValueRow{{"1", "P1", Inbound}, {"2", "Two", Bidirectional}, {"4", "Low", Inbound},
		{"5", "Low", Outbound}, {"10", "Ten", Bidirectional}}, rows)
}

func TestCheckValueMaps(t *testing.T) {
	t.Parallel()
	m := func(kv ...string) map[string]string {
		out := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	tests := []struct {
		name      string
		direction Direction
		out, in   map[string]string
		problem   string
	}{
		{"Empty", Bidirectional, nil, nil, ""},
		{"Inverse", Bidirectional, m("1", "Critical", "4", "Low"), m("Critical", "1", "Low", "4"), ""},
		{"SharedPayloadResolved", Bidirectional, m("4", "Low", "5", "Low"), m("Low", "4"), ""},
		{"InboundSynonym", Bidirectional, m("1", "Critical"), m("Critical", "1", "P1", "1"), ""},
		{"InboundOnlyExtra", Bidirectional, nil, m("P1", "1"), ""},
		{"Ambiguous", Bidirectional, m("4", "Low", "5", "Low"), nil,
			`Ticket values "4" and "5" all go out as "Low": add an inbound row that says which of them "Low" becomes.`},
		{"NoWayBack", Bidirectional, m("1", "Critical", "4", "Low"), m("Critical", "1"),
			`Ticket value "4" goes out as "Low", but no row maps "Low" back inbound: the remote would send it back and it would be refused. Make the row map both ways.`},
		{"NotInverse", Bidirectional, m("1", "Critical", "2", "High"), m("Critical", "2", "High", "2"),
			`Ticket value "1" goes out as "Critical", which comes back as "2", and "2" goes out as "High": the value would change on its way out and back.`},
		{"NotInverseUnmapped", Bidirectional, m("1", "Critical"), m("Critical", "3"),
			`Ticket value "1" goes out as "Critical", which comes back as "3", and "3" is sent as it is: the value would change on its way out and back.`},
		{"OutboundFieldWithInboundRows", Outbound, m("1", "Critical"), m("Critical", "1"),
			"This field only goes out: its value map takes outbound rows only."},
		{"OutboundFieldOneWay", Outbound, m("1", "Critical", "2", "Critical"), nil, ""},
		{"InboundFieldWithOutboundRows", Inbound, m("1", "Critical"), nil,
			"This field only comes in: its value map takes inbound rows only."},
		{"InboundFieldOneWay", Inbound, nil, m("Critical", "1", "P1", "1"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.problem, CheckValueMaps(tc.direction, tc.out, tc.in))
		})
	}
}

func TestValidateMessage(t *testing.T) {
	t.Parallel()
	rcpt, resp, other := int64(1), int64(2), int64(3)
	sc := MessageScope{TicketFields: TicketFields, Messages: []Message{
		{ID: rcpt, Name: "Receipt", Type: MessageReceipt}, {ID: resp, Name: "Answer", Type: MessageResponse},
		{ID: other, Name: "UpdateIncident", Type: MessageUpdate}}}
	valid := func() Message {
		return Message{Name: "CreateIncident", Type: MessageCreate, Direction: Bidirectional, Async: true,
			ReceiptMessageID: &rcpt, Path: "incident/create", Trigger: TriggerCreate, BondOwnership: OwnershipIgnore,
			AllowedBondStates: JSON[[]BondState]{V: []BondState{BondPending, BondOpen}}}
	}
	closed := BondClosed
	bogus := BondState("Lost")
	tests := []struct {
		name   string
		change func(m *Message)
		field  string // "" = valid
		msg    string
	}{
		{"Success", func(*Message) {}, "", ""},
		{"EmptyName", func(m *Message) { m.Name = "  " }, "name", "Give the message a name."},
		{"BadName", func(m *Message) { m.Name = "Create Incident" }, "name",
			"A name starts with a letter and has only letters, digits and _ (at most 64), e.g. UpdateIncident."},
		{"DuplicateName", func(m *Message) { m.Name = "updateincident" }, "name", "This integration has a message named UpdateIncident already."},
		{"SameNameSameMessage", func(m *Message) { m.ID, m.Name = other, "UpdateIncident"; m.Trigger = TriggerUpdate }, "", ""},
		{"BadType", func(m *Message) { m.Type = "Delete" }, "type", "Choose a type: Create, Update, Receipt, Response or Heartbeat."},
		{"BadDirection", func(m *Message) { m.Direction = "Up" }, "direction", "Choose a direction: Inbound, Outbound or Bidirectional."},
		{"AsyncWithoutReceipt", func(m *Message) { m.ReceiptMessageID = nil }, "receipt_message",
			"An asynchronous message needs the receipt message the remote answers with."},
		{"ReceiptNotAReceipt", func(m *Message) { m.ReceiptMessageID = &other }, "receipt_message",
			"Choose a message of type Receipt of this integration."},
		{"AsyncReceipt", func(m *Message) { m.Type, m.Trigger = MessageReceipt, TriggerNone }, "async",
			"A receipt or response is an answer itself; it cannot wait for a receipt."},
		{"ResponseMessage", func(m *Message) { m.ResponseMessageID = &resp }, "", ""},
		{"ResponseNotAResponse", func(m *Message) { m.ResponseMessageID = &rcpt }, "response_message",
			"Choose a message of type Response of this integration."},
		{"PathEscapes", func(m *Message) { m.Path = "../admin" }, "path", "A path stays below the connection's endpoint: no .. and no leading //."},
		{"PathOtherHost", func(m *Message) { m.Path = "//evil.example/x" }, "path", "A path stays below the connection's endpoint: no .. and no leading //."},
		{"PathQuery", func(m *Message) { m.Path = "x?y=<script>" }, "path",
			"A path has only letters, digits and . _ ~ / - (at most 200), e.g. incident/update."},
		{"BadTrigger", func(m *Message) { m.Trigger = "daily" }, "trigger",
			"Choose when the message goes out: never, on create, on update, on resolve, or when chosen fields change."},
		{"InboundWithTrigger", func(m *Message) { m.Direction = Inbound }, "trigger",
			"An inbound message is never sent, so it has no trigger; choose never."},
		{"HeartbeatWithTrigger", func(m *Message) { m.Type, m.Async, m.ReceiptMessageID = MessageHeartbeat, false, nil }, "trigger",
			"A Heartbeat is not sent because a ticket changed; choose never."},
		{"FieldsTrigger", func(m *Message) { m.Trigger, m.TriggerFields.V = TriggerFields, []string{"priority", "state"} }, "", ""},
		{"FieldsTriggerEmpty", func(m *Message) { m.Trigger = TriggerFields }, "trigger_fields",
			"Choose at least one ticket field whose change sends the message."},
		{"FieldsTriggerUnknown", func(m *Message) { m.Trigger, m.TriggerFields.V = TriggerFields, []string{"salary"} }, "trigger_fields",
			`"salary" is not a ticket field of this process.`},
		{"FieldsTriggerTwice", func(m *Message) { m.Trigger, m.TriggerFields.V = TriggerFields, []string{"state", "state"} }, "trigger_fields",
			"state is chosen twice."},
		{"BadOwnership", func(m *Message) { m.BondOwnership = "mine" }, "bond_ownership",
			"Choose the ownership rule: ignore, must own or must not own."},
		{"BadAllowedState", func(m *Message) { m.AllowedBondStates.V = []BondState{bogus} }, "allowed_bond_states", `"Lost" is not a bond state.`},
		{"AllowedStateTwice", func(m *Message) { m.AllowedBondStates.V = []BondState{BondOpen, BondOpen} }, "allowed_bond_states", "Open is listed twice."},
		{"SetState", func(m *Message) { m.SetBondState = &closed }, "", ""},
		{"BadSetState", func(m *Message) { m.SetBondState = &bogus }, "set_bond_state", `"Lost" is not a bond state.`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := valid()
			tc.change(&m)
			err := ValidateMessage(&m, sc)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var v *ValidationError
			require.ErrorAs(t, err, &v)
			require.Equal(t, tc.msg, v.Fields[tc.field], "all problems: %v", v.Fields)
		})
	}
	t.Run("ClearsWhatAChoiceMakesMeaningless", func(t *testing.T) {
		t.Parallel()
		m := valid()
		m.Async, m.TriggerFields.V = false, []string{"priority"}
		require.NoError(t, ValidateMessage(&m, sc))
		require.Nil(t, m.ReceiptMessageID)
		require.Empty(t, m.TriggerFields.V)
	})
}

func TestValidateField(t *testing.T) {
	t.Parallel()
	others := []Field{{ID: 7, TicketField: "state", Property: "status"}}
	valid := func() Field {
		return Field{TicketField: "priority", Property: "priority", Direction: Bidirectional,
			ValueMap:   JSON[map[string]string]{V: map[string]string{"1": "Critical", "4": "Low", "5": "Low"}},
			InboundMap: JSON[map[string]string]{V: map[string]string{"Critical": "1", "Low": "4"}}}
	}
	tests := []struct {
		name   string
		change func(f *Field)
		field  string
		msg    string
	}{
		{"Success", func(*Field) {}, "", ""},
		{"CustomField", func(f *Field) { f.TicketField, f.ValueMap.V, f.InboundMap.V = "custom.risk", nil, nil }, "", ""},
		{"UnknownTicketField", func(f *Field) { f.TicketField = "salary" }, "ticket_field", "Choose a ticket field of this process."},
		{"TicketFieldTwice", func(f *Field) { f.TicketField, f.ValueMap.V, f.InboundMap.V = "state", nil, nil }, "ticket_field",
			"This message maps state already (to status)."},
		{"PropertyTwice", func(f *Field) { f.Property = "status" }, "property", "This message has a property status already (from state)."},
		{"NoProperty", func(f *Field) { f.Property = "" }, "property", "Name the payload property, e.g. short_description."},
		{"BadProperty", func(f *Field) { f.Property = "a-b" }, "property",
			"A property starts with a letter or _ and has only letters, digits and _ (at most 64)."},
		{"BadDirection", func(f *Field) { f.Direction = "" }, "direction", "Choose a direction: Inbound, Outbound or Bidirectional."},
		{"Default", func(f *Field) { f.Default = "4" }, "", ""},
		{"DefaultOutOfRange", func(f *Field) { f.Default = "9" }, "default",
			`The default is a ticket value: priority must be a whole number from 1 to 5, not "9".`},
		{"MapValueOutOfRange", func(f *Field) { f.ValueMap.V["0"] = "None"; f.InboundMap.V["None"] = "0" }, "value_map",
			`Each row's ticket value is a value of the ticket field: priority must be a whole number from 1 to 5, not "0".`},
		{"MapsInconsistent", func(f *Field) { f.InboundMap.V["Low"] = "1" }, "value_map",
			`Ticket value "4" goes out as "Low", which comes back as "1", and "1" goes out as "Critical": the value would change on its way out and back.`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := valid()
			tc.change(&f)
			err := ValidateField(&f, others, append(TicketFields[:len(TicketFields):len(TicketFields)], "custom.risk"))
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var v *ValidationError
			require.ErrorAs(t, err, &v)
			require.Equal(t, tc.msg, v.Fields[tc.field], "all problems: %v", v.Fields)
		})
	}
}

func TestValidateResponseAction(t *testing.T) {
	t.Parallel()
	msgID, otherID := int64(3), int64(99)
	complete, errState, sending := Complete, Error, Sending
	rejected, pending := ProcessRejected, ProcessPending
	paused, off := IntegrationPaused, IntegrationOff
	down, bogus := StatusDown, IntegrationStatus("Sideways")
	tests := []struct {
		name  string
		a     ResponseAction
		field string
		msg   string
	}{
		{"Success", ResponseAction{StatusCode: 409, SetTransactionState: &complete, SetProcessState: &rejected,
			SetIntegrationState: &paused, SetIntegrationStatus: &down, BondNote: "exists already", MessageID: &msgID}, "", ""},
		{"RetryOnly", ResponseAction{StatusCode: 503, Retry: true}, "", ""},
		{"StatusTooLow", ResponseAction{StatusCode: 42}, "status_code", "An HTTP status is a number from 100 to 599."},
		{"StatusSuccess", ResponseAction{StatusCode: 204}, "status_code",
			"Answers from 200 to 299 are deliveries; response actions are for the other answers."},
		{"OtherIntegrationsMessage", ResponseAction{StatusCode: 409, MessageID: &otherID}, "message",
			"Choose a message of this integration, or every message."},
		{"StateWithRetry", ResponseAction{StatusCode: 409, Retry: true, SetTransactionState: &errState}, "set_transaction_state",
			"A retried answer leaves the transaction waiting for its next attempt; untick Retry to set its state."},
		{"StateSending", ResponseAction{StatusCode: 409, SetTransactionState: &sending}, "set_transaction_state",
			"The transaction can be set Complete (the answer counts as delivered) or Error."},
		{"ProcessPending", ResponseAction{StatusCode: 409, SetProcessState: &pending}, "set_process_state",
			"The process state can be set Accepted or Rejected."},
		{"IntegrationOff", ResponseAction{StatusCode: 409, SetIntegrationState: &off}, "set_integration_state",
			"The engine can only pause an integration; an admin switches it Off."},
		{"BadStatus", ResponseAction{StatusCode: 409, SetIntegrationStatus: &bogus}, "set_integration_status",
			"The integration status can be set Up, Down or Awaiting."},
		{"NoteNUL", ResponseAction{StatusCode: 409, BondNote: "a\x00b"}, "bond_note",
			"This contains a NUL character, which cannot be stored; remove it and try again."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateResponseAction(&tc.a, []Message{{ID: msgID}})
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			var v *ValidationError
			require.ErrorAs(t, err, &v)
			require.Equal(t, tc.msg, v.Fields[tc.field], "all problems: %v", v.Fields)
		})
	}
}

func TestMapFieldRules(t *testing.T) {
	t.Parallel()
	prio := Field{TicketField: "priority", Property: "prio", Direction: Bidirectional,
		ValueMap:   JSON[map[string]string]{V: map[string]string{"1": "Critical", "4": "Low", "5": "Low"}},
		InboundMap: JSON[map[string]string]{V: map[string]string{"Critical": "1", "Low": "4", "P1": "1"}}}
	group := Field{TicketField: "assignment_group", Property: "group", Direction: Outbound, Default: "Service Desk", Required: true}
	notes := Field{TicketField: "work_notes", Property: "notes", Direction: Inbound}
	fields := []Field{prio, group, notes}

	t.Run("Outbound", func(t *testing.T) {
		t.Parallel()
		data, err := MapOutbound(&Ticket{Priority: 5, WorkNotes: "secret"}, fields)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"prio": "Low", "group": "Service Desk"}, data, "default used; inbound-only field not sent")
		data, err = MapOutbound(&Ticket{Priority: 2, AssignmentGroup: "Network"}, fields)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"prio": "2", "group": "Network"}, data, "a value with no row goes as it is")
	})
	t.Run("OutboundRequiredMissing", func(t *testing.T) {
		t.Parallel()
		g := group
		g.Default = ""
		_, err := MapOutbound(&Ticket{Priority: 1}, []Field{prio, g})
		var v *ValidationError
		require.ErrorAs(t, err, &v)
		require.Equal(t, "The remote system needs assignment_group (payload property group); fill it in.", v.Fields["assignment_group"])
	})
	t.Run("Inbound", func(t *testing.T) {
		t.Parallel()
		tk := Ticket{Priority: 3, AssignmentGroup: "Network"}
		require.NoError(t, MapInbound(&tk, fields, map[string]any{"prio": "P1", "group": "Ignored", "notes": "hello"}, nil))
		require.Equal(t, 1, tk.Priority, "inbound synonym")
		require.Equal(t, "Network", tk.AssignmentGroup, "an outbound-only field is not applied")
		require.Equal(t, "hello", tk.WorkNotes)
		require.NoError(t, MapInbound(&tk, fields, map[string]any{"prio": "Low"}, nil))
		require.Equal(t, 4, tk.Priority, "the inbound row decides which of 4 and 5")
		require.EqualError(t, MapInbound(&tk, fields, map[string]any{"prio": "Medium"}, nil), `value "Medium" of field "prio" has no mapping`)
	})
	t.Run("InboundDefaultAndRequired", func(t *testing.T) {
		t.Parallel()
		withDefault := Field{TicketField: "urgency", Property: "urgency", Direction: Bidirectional, Default: "2"}
		tk := Ticket{Urgency: 3}
		require.NoError(t, MapInbound(&tk, []Field{withDefault}, map[string]any{}, nil))
		require.Equal(t, 2, tk.Urgency)
		req := Field{TicketField: "urgency", Property: "urgency", Direction: Bidirectional, Required: true}
		require.EqualError(t, MapInbound(&tk, []Field{req}, map[string]any{}, nil), `required field "urgency" is missing`)
	})
	t.Run("LegacyOutboundMapOnly", func(t *testing.T) {
		t.Parallel()
		legacy := Field{TicketField: "priority", Property: "prio",
			ValueMap: JSON[map[string]string]{V: map[string]string{"1": "Critical", "4": "Low"}}}
		tk := Ticket{}
		require.NoError(t, MapInbound(&tk, []Field{legacy}, map[string]any{"prio": "Critical"}, nil))
		require.Equal(t, 1, tk.Priority, "no inbound map: the inverse of the outbound map")
	})
}
