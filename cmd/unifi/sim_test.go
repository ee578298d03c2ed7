package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSimCommandArguments(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string // "" : no error
	}{
		{"NoKind", []string{"sim"}, `say which simulator`},
		{"UnknownKind", []string{"sim", "zendesk"}, `say which simulator`},
		{"Help", []string{"sim", "-h"}, ""},
		{"BadMode", []string{"sim", "jira", "-addr", "127.0.0.1:0", "-mode", "sideways"}, `mode "sideways" is not one of`},
		{"BadProject", []string{"sim", "jira", "-addr", "127.0.0.1:0", "-projects", "sim"}, `is not upper-case`},
		{"BadZone", []string{"sim", "jira", "-addr", "127.0.0.1:0", "-tz", "Mars/Olympus"}, `-tz: unknown time zone`},
		{"BadWebhook", []string{"sim", "servicenow", "-addr", "127.0.0.1:0", "-webhook-url", "nowhere"}, `not an absolute http(s) URL`},
		{"Taken", []string{"sim", "jira", "-addr", "256.0.0.1:1"}, `listen on 256.0.0.1:1`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errOut bytes.Buffer
			err := run(context.Background(), tc.args, envOf(nil), &out, &errOut)
			if tc.want == "" {
				require.NoError(t, err)
				require.Contains(t, errOut.String(), "unifi sim jira|servicenow")
				return
			}
			require.ErrorContains(t, err, tc.want)
		})
	}
}
