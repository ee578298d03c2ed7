package configpkg_test

import (
	"testing"

	"unifi/models/configpkg"
)

// FuzzDecode: no document makes Decode panic, and one it accepts encodes and
// decodes again to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"format": 1, "process": {"name": "Incident", "ticket_table": "incident", "reference_field": "number",
		"number_prefix": "INC"}, "integration": {"name": "x", "sync_timeout_s": 1, "async_timeout_s": 1, "retry_limit": 0,
		"retry_delay_s": 0, "attach_logs": false, "heartbeat_s": 0}, "messages": [{"name": "R", "type": "Receipt",
		"direction": "Inbound", "trigger": "none", "bond_ownership": "ignore", "fields": [{"ticket_field": "state",
		"property": "state", "value_map": {"New": "new"}}]}], "response_actions": [{"status_code": 500, "retry": true}]}`))
	f.Add([]byte(`{"format": 2, "process": {"name": "Incident", "ticket_table": "incident", "reference_field": "number",
		"number_prefix": "INC", "fields": [{"name": "risk", "label": "Risk", "type": "choice", "choices": ["Low"]}]},
		"integration": {"name": "x", "sync_timeout_s": 1, "async_timeout_s": 1, "retry_limit": 0, "retry_delay_s": 0,
		"attach_logs": false, "heartbeat_s": 0}, "messages": [{"name": "R", "type": "Receipt", "direction": "Inbound",
		"trigger": "none", "bond_ownership": "ignore", "fields": [{"ticket_field": "custom.risk", "property": "risk"}]}]}`))
	f.Add([]byte(`{"format": 3, "process": {"name": "Incident", "ticket_table": "incident", "reference_field": "number",
		"number_prefix": "INC", "fields": []}, "integration": {"name": "x", "sync_timeout_s": 1, "async_timeout_s": 1,
		"retry_limit": 0, "retry_delay_s": 0, "attach_logs": false, "heartbeat_s": 0}, "messages": [{"name": "A",
		"type": "Response", "direction": "Inbound", "trigger": "none", "bond_ownership": "ignore", "fields": [{"ticket_field":
		"priority", "property": "p", "direction": "Inbound", "default": "3", "position": 7, "inbound_value_map": {"P1": "1"}}]},
		{"name": "C", "type": "Create", "direction": "Outbound", "response_message": "A", "trigger": "fields",
		"trigger_fields": ["priority"], "bond_ownership": "ignore"}], "response_actions": [{"message": "C", "status_code": 410,
		"retry": false, "set_transaction_state": "Complete", "set_process_state": "Rejected", "set_integration_state": "Paused",
		"bond_note": "gone"}]}`))
	f.Add([]byte(`{"format": 2}`))
	f.Add([]byte(`{"format": 1, "process": [[[[`))
	f.Add([]byte(`{"format": 1, "format": 1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := configpkg.DecodeBytes(data)
		if err != nil {
			return
		}
		one, err := configpkg.Encode(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := configpkg.DecodeBytes(one)
		if err != nil {
			t.Fatalf("an encoded document does not decode: %v\n%s", err, one)
		}
		two, err := configpkg.Encode(d2)
		if err != nil || string(one) != string(two) {
			t.Fatalf("encode is not stable:\n%s\n%s", one, two)
		}
	})
}
