package designer_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/designer"
)

func TestParseIntegration(t *testing.T) {
	t.Parallel()
	valid := func() designer.IntegrationForm {
		f := designer.NewIntegrationForm()
		f.Name, f.ProcessID = "acme-itsm", "1"
		return f
	}
	tests := []struct {
		name   string
		change func(f *designer.IntegrationForm)
		field  string // the refused field, "" when valid
		words  string
	}{
		{"Valid", func(*designer.IntegrationForm) {}, "", ""},
		{"NameEmpty", func(f *designer.IntegrationForm) { f.Name = " " }, "name", "Give the integration a name"},
		{"NameSpaces", func(f *designer.IntegrationForm) { f.Name = "a b" }, "name", "no spaces"},
		{"NameTooLong", func(f *designer.IntegrationForm) { f.Name = string(make([]byte, 65)) }, "name", "up to 64"},
		{"DescriptionNUL", func(f *designer.IntegrationForm) { f.Description = "a\x00" }, "description", "NUL"},
		{"DescriptionLong", func(f *designer.IntegrationForm) { f.Description = strings.Repeat("é", 2001) }, "description", "at most 2000"},
		{"NoProcess", func(f *designer.IntegrationForm) { f.ProcessID = "" }, "process_id", "Choose the process"},
		{"SyncZero", func(f *designer.IntegrationForm) { f.SyncTimeoutS = "0" }, "sync_timeout_s", "from 1 to 600"},
		{"SyncWords", func(f *designer.IntegrationForm) { f.SyncTimeoutS = "ten" }, "sync_timeout_s", "whole number"},
		{"SyncEmpty", func(f *designer.IntegrationForm) { f.SyncTimeoutS = "" }, "sync_timeout_s", "Enter the sync timeout"},
		{"AsyncHuge", func(f *designer.IntegrationForm) { f.AsyncTimeoutS = "99999999999999999999" }, "async_timeout_s", "whole number"},
		{"RetryNegative", func(f *designer.IntegrationForm) { f.RetryLimit = "-1" }, "retry_limit", "from 0 to 100"},
		{"RetryLimitMax", func(f *designer.IntegrationForm) { f.RetryLimit = "100" }, "", ""},
		{"DelayFloat", func(f *designer.IntegrationForm) { f.RetryDelayS = "1.5" }, "retry_delay_s", "whole number"},
		{"HeartbeatDay", func(f *designer.IntegrationForm) { f.HeartbeatS = "86401" }, "heartbeat_s", "from 0 to 86400"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := valid()
			tc.change(&f)
			var in models.Integration
			err := designer.ParseIntegration(f, &in)
			if tc.field == "" {
				require.NoError(t, err)
				require.Equal(t, "acme-itsm", in.Name)
				return
			}
			var ve *models.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Len(t, ve.Fields, 1, "only the refused field: %v", ve.Fields)
			require.Contains(t, ve.Fields[tc.field], tc.words)
			require.Empty(t, in.Name, "nothing applied from a refused form")
		})
	}
}
