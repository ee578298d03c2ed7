package designer_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/designer"
)

func TestParseProcess(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		form designer.ProcessForm
		bad  string
		says string
	}{
		{name: "Success", form: designer.ProcessForm{Name: " Change ", NumberPrefix: "CHG"}},
		{name: "NoName", form: designer.ProcessForm{NumberPrefix: "CHG"}, bad: "name", says: "Give the process a name"},
		{name: "LowerPrefix", form: designer.ProcessForm{Name: "Change", NumberPrefix: "chg"}, bad: "number_prefix", says: "capital letters"},
		{name: "LongPrefix", form: designer.ProcessForm{Name: "Change", NumberPrefix: "CHANGES"}, bad: "number_prefix", says: "2 to 6"},
		{name: "NulName", form: designer.ProcessForm{Name: "a\x00", NumberPrefix: "CHG"}, bad: "name", says: "NUL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var p models.Process
			err := designer.ParseProcess(tc.form, &p)
			if tc.bad == "" {
				require.NoError(t, err)
				require.Equal(t, "Change", p.Name)
				return
			}
			var ve *models.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Contains(t, ve.Fields[tc.bad], tc.says)
		})
	}
}

func TestParseProcessField(t *testing.T) {
	t.Parallel()
	t.Run("ChoicesOnePerLine", func(t *testing.T) {
		t.Parallel()
		var pf models.ProcessField
		require.NoError(t, designer.ParseProcessField(designer.ProcessFieldForm{Name: "risk", Label: "Risk", Type: "choice",
			Choices: "Low\r\n\r\n High \nCritical"}, &pf))
		require.Equal(t, []string{"Low", "High", "Critical"}, pf.Choices.V)
	})
	t.Run("DuplicateChoice", func(t *testing.T) {
		t.Parallel()
		var pf models.ProcessField
		err := designer.ParseProcessField(designer.ProcessFieldForm{Name: "risk", Label: "Risk", Type: "choice", Choices: "Low\nLow"}, &pf)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Contains(t, ve.Fields["choices"], "given twice")
	})
	t.Run("NameFixedOnEdit", func(t *testing.T) {
		t.Parallel()
		pf := models.ProcessField{ID: 7, Name: "risk"}
		err := designer.ParseProcessField(designer.ProcessFieldForm{Name: "danger", Label: "Risk", Type: "text"}, &pf)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Contains(t, ve.Fields["name"], "cannot change")
	})
	t.Run("BadPosition", func(t *testing.T) {
		t.Parallel()
		var pf models.ProcessField
		err := designer.ParseProcessField(designer.ProcessFieldForm{Name: "a", Label: "A", Type: "text", Position: "-1"}, &pf)
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Contains(t, ve.Fields["position"], "0 to 1000")
	})
}
