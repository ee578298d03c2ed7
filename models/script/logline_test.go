package script_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"unifi/models/script"
)

// TestLogLine: a log line is stored as text PostgreSQL accepts (no NUL, valid
// UTF-8) and at most MaxLogChars characters, cut on a character boundary.
func TestLogLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"Short", "created INC0010001", "created INC0010001"},
		{"NUL", "a\x00b", "a\uFFFDb"},
		{"InvalidUTF8", "caf\xc3\x28", "caf\uFFFD("},
		{"Exact", strings.Repeat("é", script.MaxLogChars), strings.Repeat("é", script.MaxLogChars)},
		{"Long", strings.Repeat("é", script.MaxLogChars+1), strings.Repeat("é", script.MaxLogChars-1) + "…"},
		{"LongASCII", strings.Repeat("x", 3*script.MaxLogChars), strings.Repeat("x", script.MaxLogChars-1) + "…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := script.LogLine(tc.in)
			require.Equal(t, tc.want, got)
			require.True(t, utf8.ValidString(got))
			require.LessOrEqual(t, utf8.RuneCountInString(got), script.MaxLogChars)
		})
	}
}
