package models

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// FieldType is the kind of value a process field holds.
type FieldType string

// The types of a process field (docs/domain.md, Processes and their fields).
const (
	FieldText     FieldType = "text"
	FieldLongText FieldType = "long_text"
	FieldNumber   FieldType = "number"
	FieldChoice   FieldType = "choice"
	FieldDateTime FieldType = "datetime"
	FieldBoolean  FieldType = "boolean"
)

// FieldTypes lists every field type, in the order a form offers them.
var FieldTypes = []FieldType{FieldText, FieldLongText, FieldNumber, FieldChoice, FieldDateTime, FieldBoolean}

// CustomPrefix marks a message Field's ticket field as a process field:
// "custom.<name>".
const CustomPrefix = "custom."

// Limits of a process field's values; text limits match the built-in
// short description and description.
const (
	maxTextLen     = 160
	maxLongTextLen = 32000
	maxChoices     = 100
	maxChoiceLen   = 100
	maxLabelLen    = 80
)

// ProcessField is a ticket field a Process defines besides the built-in ones.
// Its value is stored in the ticket's custom values under Name.
type ProcessField struct {
	ID        int64
	ProcessID int64
	Name      string
	Label     string
	Type      FieldType
	Choices   JSON[[]string]
	Required  bool
	Position  int
	Version   int
	CreatedAt time.Time
	UpdatedAt time.Time
}

var fieldNameRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// Validate checks a field definition and says what is wrong, per form field,
// in plain words.
func (f *ProcessField) Validate() error {
	v := &ValidationError{}
	f.Name, f.Label = strings.TrimSpace(f.Name), strings.TrimSpace(f.Label)
	switch {
	case f.Name == "":
		v.Add("name", "Give the field a name (lower-case letters, digits and _, starting with a letter).")
	case !fieldNameRe.MatchString(f.Name):
		v.Add("name", fmt.Sprintf("%q is not a usable name: use 1 to 40 lower-case letters, digits and _, starting with a letter.", f.Name))
	default:
		for _, b := range TicketFields {
			if f.Name == b {
				v.Add("name", fmt.Sprintf("%q is a built-in ticket field; choose another name.", f.Name))
			}
		}
	}
	switch n := utf8.RuneCountInString(f.Label); {
	case TextProblem(f.Label) != "":
		v.Add("label", TextProblem(f.Label))
	case n == 0:
		v.Add("label", "Give the field a label: the text people see next to it.")
	case n > maxLabelLen:
		v.Add("label", fmt.Sprintf("Keep the label to %d characters (it has %d).", maxLabelLen, n))
	}
	known := false
	for _, t := range FieldTypes {
		known = known || f.Type == t
	}
	if !known {
		v.Add("type", fmt.Sprintf("Choose a type: text, long text, number, choice, date-time or boolean (got %q).", f.Type))
	}
	if f.Type == FieldChoice {
		v.Add("choices", choicesProblem(f.Choices.V))
		if v.Fields["choices"] == "" {
			delete(v.Fields, "choices")
		}
	} else if len(f.Choices.V) > 0 {
		v.Add("choices", "Only a choice field has values to choose from; clear them or make the field a choice.")
	}
	return v.Err()
}

func choicesProblem(cs []string) string {
	if len(cs) == 0 {
		return "Give at least one value to choose from."
	}
	if len(cs) > maxChoices {
		return fmt.Sprintf("Keep to %d values (there are %d).", maxChoices, len(cs))
	}
	seen := map[string]bool{}
	for i, c := range cs {
		switch {
		case TextProblem(c) != "":
			return fmt.Sprintf("Value %d: %s", i+1, TextProblem(c))
		case strings.TrimSpace(c) == "":
			return fmt.Sprintf("Value %d is empty; every value needs some text.", i+1)
		case c != strings.TrimSpace(c):
			return fmt.Sprintf("Value %q starts or ends with spaces; remove them.", c)
		case utf8.RuneCountInString(c) > maxChoiceLen:
			return fmt.Sprintf("Value %d is longer than %d characters.", i+1, maxChoiceLen)
		case seen[c]:
			return fmt.Sprintf("Value %q is given twice; each value must be different.", c)
		}
		seen[c] = true
	}
	return ""
}

// ParseValue turns text (from a form, a JSON body or a message) into the
// value stored for this field: a string for text, long text, choice and
// date-time (RFC 3339, UTC), a float64 for a number, a bool for a boolean.
// Empty text means no value. The error is in plain words.
func (f *ProcessField) ParseValue(s string) (any, error) {
	if p := TextProblem(s); p != "" {
		return nil, fmt.Errorf("%s", p)
	}
	if f.Type != FieldLongText {
		s = strings.TrimSpace(s)
	}
	if s == "" {
		if f.Required {
			return nil, fmt.Errorf("%s is required.", f.Label)
		}
		return nil, nil
	}
	switch f.Type {
	case FieldText:
		if n := utf8.RuneCountInString(s); n > maxTextLen {
			return nil, fmt.Errorf("Keep %s to %d characters (it has %d).", f.Label, maxTextLen, n)
		}
		return s, nil
	case FieldLongText:
		if n := utf8.RuneCountInString(s); n > maxLongTextLen {
			return nil, fmt.Errorf("Keep %s to %d characters (it has %d).", f.Label, maxLongTextLen, n)
		}
		return s, nil
	case FieldNumber:
		n, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(n, 0) || math.IsNaN(n) {
			return nil, fmt.Errorf("%s must be a number, like 42 or 3.5 (not %q).", f.Label, s)
		}
		return n, nil
	case FieldChoice:
		for _, c := range f.Choices.V {
			if c == s {
				return s, nil
			}
		}
		return nil, fmt.Errorf("%s must be one of %s (not %q).", f.Label, strings.Join(f.Choices.V, ", "), s)
	case FieldDateTime:
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04"} {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC().Format(time.RFC3339), nil
			}
		}
		return nil, fmt.Errorf("%s must be a date and time like 2026-12-05T14:30:00Z (not %q).", f.Label, s)
	case FieldBoolean:
		switch strings.ToLower(s) {
		case "true", "yes", "on", "1":
			return true, nil
		case "false", "no", "off", "0":
			return false, nil
		}
		return nil, fmt.Errorf("%s must be true or false (not %q).", f.Label, s)
	}
	return nil, fmt.Errorf("%s has an unknown type %q.", f.Label, f.Type)
}

// CustomText renders a stored custom value as text: the form shows it, an
// outbound message sends it (through the value map), and ParseValue reads it
// back to the same value.
func CustomText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(v)
}

// ValidateCustom checks the custom values given for a ticket of a process
// with fields defs and returns the values to store. values holds text by
// field name; a field not in values keeps its value in current (an edit that
// does not touch it), and a name that is no field of the process is refused.
// Problems are per field, keyed "custom.<name>", in plain words.
func ValidateCustom(defs []ProcessField, current map[string]any, values map[string]string) (map[string]any, error) {
	v := &ValidationError{}
	out := make(map[string]any, len(defs))
	byName := make(map[string]*ProcessField, len(defs))
	for i := range defs {
		byName[defs[i].Name] = &defs[i]
	}
	for name := range values {
		if byName[name] == nil {
			v.Add(CustomPrefix+name, fmt.Sprintf("%q is not a field of this process.", name))
		}
	}
	for i := range defs {
		d := &defs[i]
		s, given := values[d.Name]
		if !given {
			s = CustomText(current[d.Name])
		}
		val, err := d.ParseValue(s)
		if err != nil {
			v.Add(CustomPrefix+d.Name, err.Error())
			continue
		}
		if val != nil {
			out[d.Name] = val
		}
	}
	if err := v.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// AuditRecord names the field in the activity log (models/designer).
func (f *ProcessField) AuditRecord() (string, string) { return "process_field", f.Name }
