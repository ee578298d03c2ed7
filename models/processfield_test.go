package models_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
)

func TestProcessFieldValidate(t *testing.T) {
	t.Parallel()
	choices := func(cs ...string) models.JSON[[]string] { return models.JSON[[]string]{V: cs} }
	tests := []struct {
		name  string
		field models.ProcessField
		bad   string // the form field refused, "" when valid
		says  string
	}{
		{"Text", models.ProcessField{Name: "vendor_ref", Label: "Vendor reference", Type: models.FieldText}, "", ""},
		{"Choice", models.ProcessField{Name: "risk", Label: "Risk", Type: models.FieldChoice, Choices: choices("Low", "High")}, "", ""},
		{"EmptyName", models.ProcessField{Label: "X", Type: models.FieldText}, "name", "Give the field a name"},
		{"UpperName", models.ProcessField{Name: "Risk", Label: "X", Type: models.FieldText}, "name", "not a usable name"},
		{"InjectName", models.ProcessField{Name: "a'; drop table x", Label: "X", Type: models.FieldText}, "name", "not a usable name"},
		{"LongName", models.ProcessField{Name: strings.Repeat("a", 41), Label: "X", Type: models.FieldText}, "name", "1 to 40"},
		{"BuiltIn", models.ProcessField{Name: "priority", Label: "X", Type: models.FieldText}, "name", "built-in"},
		{"NoLabel", models.ProcessField{Name: "a", Type: models.FieldText}, "label", "Give the field a label"},
		{"LongLabel", models.ProcessField{Name: "a", Label: strings.Repeat("é", 81), Type: models.FieldText}, "label", "80 characters"},
		{"NulLabel", models.ProcessField{Name: "a", Label: "a\x00b", Type: models.FieldText}, "label", "NUL"},
		{"BadType", models.ProcessField{Name: "a", Label: "A", Type: "money"}, "type", "Choose a type"},
		{"ChoiceNoValues", models.ProcessField{Name: "a", Label: "A", Type: models.FieldChoice}, "choices", "at least one"},
		{"ChoiceEmptyValue", models.ProcessField{Name: "a", Label: "A", Type: models.FieldChoice, Choices: choices("x", " ")}, "choices", "Value 2 is empty"},
		{"ChoiceTwice", models.ProcessField{Name: "a", Label: "A", Type: models.FieldChoice, Choices: choices("x", "y", "x")}, "choices", `"x" is given twice`},
		{"ChoiceSpaces", models.ProcessField{Name: "a", Label: "A", Type: models.FieldChoice, Choices: choices(" x")}, "choices", "spaces"},
		{"ChoicesOnText", models.ProcessField{Name: "a", Label: "A", Type: models.FieldText, Choices: choices("x")}, "choices", "Only a choice field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.field.Validate()
			if tc.bad == "" {
				require.NoError(t, err)
				return
			}
			var v *models.ValidationError
			require.ErrorAs(t, err, &v)
			require.Contains(t, v.Fields[tc.bad], tc.says)
		})
	}
}

func TestValidateCustom(t *testing.T) {
	t.Parallel()
	defs := []models.ProcessField{
		{Name: "vendor_ref", Label: "Vendor reference", Type: models.FieldText},
		{Name: "notes", Label: "Notes", Type: models.FieldLongText},
		{Name: "cost", Label: "Cost", Type: models.FieldNumber},
		{Name: "risk", Label: "Risk", Type: models.FieldChoice, Choices: models.JSON[[]string]{V: []string{"Low", "High"}}, Required: true},
		{Name: "due", Label: "Due", Type: models.FieldDateTime},
		{Name: "urgent_fix", Label: "Urgent fix", Type: models.FieldBoolean},
	}
	tests := []struct {
		name    string
		current map[string]any
		values  map[string]string
		want    map[string]any
		bad     string
		says    string
	}{
		{name: "AllTypes", values: map[string]string{"vendor_ref": " V-1 ", "notes": " two\nlines", "cost": "12.50",
			"risk": "High", "due": "2026-12-05T14:30:00+01:00", "urgent_fix": "yes"},
			want: map[string]any{"vendor_ref": "V-1", "notes": " two\nlines", "cost": 12.5, "risk": "High",
				"due": "2026-12-05T13:30:00Z", "urgent_fix": true}},
		{name: "FormDateTime", values: map[string]string{"risk": "Low", "due": "2026-12-05T14:30", "urgent_fix": "off"},
			want: map[string]any{"risk": "Low", "due": "2026-12-05T14:30:00Z", "urgent_fix": false}},
		{name: "EmptyMeansNone", values: map[string]string{"risk": "Low", "cost": "", "vendor_ref": "  "},
			want: map[string]any{"risk": "Low"}},
		{name: "KeepsCurrent", current: map[string]any{"risk": "High", "cost": 3.0}, values: map[string]string{"vendor_ref": "x"},
			want: map[string]any{"risk": "High", "cost": 3.0, "vendor_ref": "x"}},
		{name: "Required", values: map[string]string{"cost": "1"}, bad: "custom.risk", says: "Risk is required"},
		{name: "RequiredCleared", current: map[string]any{"risk": "High"}, values: map[string]string{"risk": ""}, bad: "custom.risk", says: "required"},
		{name: "NotAChoice", values: map[string]string{"risk": "Medium"}, bad: "custom.risk", says: `one of Low, High (not "Medium")`},
		{name: "NotANumber", values: map[string]string{"risk": "Low", "cost": "12,50"}, bad: "custom.cost", says: "must be a number"},
		{name: "Infinity", values: map[string]string{"risk": "Low", "cost": "1e999"}, bad: "custom.cost", says: "must be a number"},
		{name: "NaN", values: map[string]string{"risk": "Low", "cost": "NaN"}, bad: "custom.cost", says: "must be a number"},
		{name: "NotADate", values: map[string]string{"risk": "Low", "due": "tomorrow"}, bad: "custom.due", says: "date and time"},
		{name: "NotABool", values: map[string]string{"risk": "Low", "urgent_fix": "maybe"}, bad: "custom.urgent_fix", says: "true or false"},
		{name: "TooLong", values: map[string]string{"risk": "Low", "vendor_ref": strings.Repeat("x", 161)}, bad: "custom.vendor_ref", says: "160 characters"},
		{name: "BadUTF8", values: map[string]string{"risk": "Low", "notes": "\xff"}, bad: "custom.notes", says: "UTF-8"},
		{name: "Unknown", values: map[string]string{"risk": "Low", "colour": "red"}, bad: "custom.colour", says: "not a field of this process"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := models.ValidateCustom(defs, tc.current, tc.values)
			if tc.bad == "" {
				require.NoError(t, err)
				require.Equal(t, tc.want, got)
				return
			}
			var v *models.ValidationError
			require.ErrorAs(t, err, &v)
			require.Contains(t, v.Fields[tc.bad], tc.says)
		})
	}
}

func TestCustomTextRoundTrip(t *testing.T) {
	t.Parallel()
	for _, f := range []models.ProcessField{
		{Label: "N", Type: models.FieldNumber}, {Label: "B", Type: models.FieldBoolean}, {Label: "D", Type: models.FieldDateTime},
	} {
		for _, s := range []string{"12.5", "true", "2026-12-05T13:30:00Z"} {
			v, err := f.ParseValue(s)
			if err != nil {
				continue
			}
			again, err := f.ParseValue(models.CustomText(v))
			require.NoError(t, err)
			require.Equal(t, v, again)
		}
	}
}

func TestMapCustom(t *testing.T) {
	t.Parallel()
	defs := []models.ProcessField{
		{Name: "cost", Label: "Cost", Type: models.FieldNumber},
		{Name: "risk", Label: "Risk", Type: models.FieldChoice, Choices: models.JSON[[]string]{V: []string{"Low", "High"}}, Required: true},
	}
	fields := []models.Field{
		{TicketField: "custom.cost", Property: "cost"},
		{TicketField: "custom.risk", Property: "risk_level", ValueMap: models.JSON[map[string]string]{V: map[string]string{"High": "P1", "Low": "P4", "Mid": "P3"}}},
	}
	t.Run("Outbound", func(t *testing.T) {
		t.Parallel()
		tk := &models.Ticket{Custom: models.JSON[map[string]any]{V: map[string]any{"cost": 12.5, "risk": "High"}}}
		out, err := models.MapOutbound(tk, fields)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"cost": "12.5", "risk_level": "P1"}, out)
		out, err = models.MapOutbound(&models.Ticket{}, fields[:1])
		require.NoError(t, err)
		require.Equal(t, map[string]any{"cost": ""}, out, "no value is sent empty")
	})
	t.Run("Inbound", func(t *testing.T) {
		t.Parallel()
		tk := &models.Ticket{Custom: models.JSON[map[string]any]{V: map[string]any{"risk": "Low"}}}
		require.NoError(t, models.MapInbound(tk, fields, map[string]any{"cost": 7.0}, defs))
		require.Equal(t, map[string]any{"cost": 7.0, "risk": "Low"}, tk.Custom.V, "an absent property keeps the value")
		require.NoError(t, models.MapInbound(tk, fields, map[string]any{"risk_level": "P1", "cost": "8"}, defs))
		require.Equal(t, map[string]any{"cost": 8.0, "risk": "High"}, tk.Custom.V)
	})
	t.Run("InboundRefused", func(t *testing.T) {
		t.Parallel()
		tk := &models.Ticket{}
		err := models.MapInbound(tk, fields, map[string]any{"risk_level": "P3", "cost": "lots"}, defs)
		require.EqualError(t, err, `Cost must be a number, like 42 or 3.5 (not "lots"); Risk must be one of Low, High (not "Mid")`)
		require.Nil(t, tk.Custom.V, "nothing applied")
		err = models.MapInbound(tk, []models.Field{{TicketField: "custom.gone", Property: "g"}}, map[string]any{"g": "x"}, defs)
		require.ErrorContains(t, err, `"gone" is not a field of this process`)
	})
}
