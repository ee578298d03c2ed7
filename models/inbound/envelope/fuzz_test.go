package envelope

import (
	"strings"
	"testing"

	"unifi/models"
)

// FuzzParse feeds the envelope parser arbitrary bodies: it never
// panics, and what it accepts holds only text PostgreSQL can store.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"message":{"name":"CreateIncident","source_id":"MSG1","source_reference":"EXT1","time_stamp":"2026-01-01T00:00:00Z"},"data":{"short_description":"x"}}`,
		`{"message":{"name":"Receipt","target_id":"MSG1"},"status":{"process_state":"Rejected","error":"no"}}`,
		`{"message":{"name":"\u0000"}}`, `{"message":{"name":"x","source_id":"a\u0000b"}}`, `{"data":{"a":"\u0000"}}`,
		`[]`, `null`, `{"message":"x"}`, "{\"message\":{\"name\":\"\xff\"}}", `{"message":{"name":"x"},"data":{"p":1e400}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		env, problems, err := Parse(raw)
		if err != nil || problems.Err() != nil {
			return
		}
		for _, s := range []string{env.Name, env.SourceID, env.TargetID, env.SourceReference, env.TargetReference, env.StatusError} {
			if models.TextProblem(s) != "" {
				t.Fatalf("accepted unstorable text %q from %q", s, raw)
			}
		}
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case string:
				if models.TextProblem(x) != "" {
					t.Fatalf("accepted unstorable data %q from %q", x, raw)
				}
			case map[string]any:
				for k, e := range x {
					if strings.ContainsRune(k, 0) {
						t.Fatalf("accepted a NUL key from %q", raw)
					}
					walk(e)
				}
			case []any:
				for _, e := range x {
					walk(e)
				}
			}
		}
		walk(env.Data)
	})
}
