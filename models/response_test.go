package models

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// responseFields are a response message's fields: our number out, theirs
// in; the state both ways through a value map; a note only outbound and an
// assignment group only inbound.
var responseFields = []Field{
	{TicketField: NumberField, Property: "ticket_number"},
	{TicketField: "state", Property: "status", ValueMap: JSON[map[string]string]{V: map[string]string{"In Progress": "WIP"}}},
	{TicketField: "work_notes", Property: "notes", Direction: Outbound},
	{TicketField: "assignment_group", Property: "team", Direction: Inbound, Required: true},
}

func TestMapResponse(t *testing.T) {
	t.Parallel()
	tk := Ticket{Number: "INC0000042", State: "In Progress", WorkNotes: "", AssignmentGroup: "Network"}
	got := MapResponse(&tk, responseFields)
	require.Equal(t, map[string]any{"ticket_number": "INC0000042", "status": "WIP", "notes": ""}, got,
		"outbound fields only, through the value map; an empty value is sent empty")

	required := []Field{{TicketField: "work_notes", Property: "notes", Required: true}}
	_, err := MapOutbound(&tk, required)
	require.Error(t, err, "an outbound message refuses an empty required field")
	require.Equal(t, map[string]any{"notes": ""}, MapResponse(&tk, required), "an answer does not")
	require.True(t, required[0].Required, "the fields given are not changed")
}

func TestRemoteNumber(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		fields  []Field
		data    map[string]any
		want    string
		errText string
	}{
		{name: "Mapped", fields: responseFields, data: map[string]any{"ticket_number": " REM-9 "}, want: "REM-9"},
		{name: "Absent", fields: responseFields, data: map[string]any{}, want: ""},
		{name: "NotMapped", fields: responseFields[1:], data: map[string]any{"ticket_number": "REM-9"}, want: ""},
		{name: "OutboundOnly", fields: []Field{{TicketField: NumberField, Property: "n", Direction: Outbound}},
			data: map[string]any{"n": "REM-9"}, want: ""},
		{name: "ThroughInboundMap", fields: []Field{{TicketField: NumberField, Property: "n",
			InboundMap: JSON[map[string]string]{V: map[string]string{"9": "REM-9"}}}},
			data: map[string]any{"n": 9.0}, want: "REM-9"},
		{name: "NotText", fields: responseFields, data: map[string]any{"ticket_number": []any{}},
			errText: `field "ticket_number" must be text or a number`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := RemoteNumber(tc.fields, tc.data)
			if tc.errText != "" {
				require.EqualError(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

// The receiving side applies only the fields that come in, with or without
// stamps: an outbound-only field is not applied (nor required), and the
// remote's number never becomes our ticket's number.
func TestMergeInboundSkipsWhatDoesNotComeIn(t *testing.T) {
	t.Parallel()
	fields := []Field{
		{TicketField: NumberField, Property: "ticket_number"},
		{TicketField: "short_description", Property: "short"},
		{TicketField: "work_notes", Property: "notes", Direction: Outbound, Required: true},
	}
	data := map[string]any{"ticket_number": "REM-9", "short": "theirs", "notes": "not for us"}
	for _, wire := range []map[string]WireStamp{nil, {"short": {At: at(20)}, "notes": {At: at(20)}}} {
		tk := Ticket{Number: "INC0000001", ShortDescription: "ours", WorkNotes: "ours"}
		m, err := MergeInbound(&tk, fields, data, wire, false, nil)
		require.NoError(t, err, "stamps %v", wire)
		require.Equal(t, "INC0000001", m.Ticket.Number)
		require.Equal(t, "theirs", m.Ticket.ShortDescription)
		require.Equal(t, "ours", m.Ticket.WorkNotes, "stamps %v: an outbound-only field is not applied", wire)
		_, stamped := m.Ticket.FieldStamps.V["work_notes"]
		require.False(t, stamped)

		m, err = MergeInbound(&tk, fields, map[string]any{"short": "theirs"}, wire, false, nil)
		require.NoError(t, err, "stamps %v: a required outbound-only field is not required inbound", wire)
		require.True(t, m.Changed)
	}
}
