package script_test

import (
	"testing"

	"unifi/models/script"
)

func BenchmarkStageToRequest(b *testing.B) {
	e := script.NewEngine(script.Limits{})
	s := script.Script{ID: 1, Version: 1, Name: "b", Source: `return {method: "POST", headers: {"X-Bench": "1"},
  body: {message: {name: transaction.message, time_stamp: new Date().toISOString(), source_reference: transaction.ticket,
  target_reference: bond.external_reference, source_id: transaction.message_id},
  data: {short_description: stage.short_description, state: stage.state, priority: stage.priority, comments: stage.comments}}};`}
	in := script.Input{Stage: map[string]any{"short_description": "Printer on fire", "state": "In Progress", "priority": "High", "comments": "x"},
		Transaction: map[string]any{"message": "UpdateIncident", "ticket": "INC0000001", "message_id": "MSG0000001"},
		Bond:        map[string]any{"external_reference": "EXT-1"}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := e.Object(s, in, false); err != nil {
			b.Fatal(err)
		}
	}
}
