package handlerstest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// HostileValue is a value an attacker or a broken client sends.
type HostileValue struct{ Name, Value string }

// Hostile are the values the hostile tests send in every field.
var Hostile = []HostileValue{
	{"SQL", `' OR '1'='1'; DROP TABLE tickets; --`},
	{"HTML", `<script>alert(1)</script><img src=x onerror=alert(2)>`},
	{"Control", "line\r\nSet-Cookie: x=y\x1b[31m\x07\x7f"},
	{"NUL", "a\x00b"},
	{"InvalidUTF8", "caf\xc3\x28 \xff\xfe"},
	{"HugeNumber", "99999999999999999999999999"},
	{"MinInt", "-9223372036854775808"},
	{"Float", "1e308"},
	{"Oversized", strings.Repeat("x", 40000)},
	{"Unicode", "\u202eRTL \U0001F4A5 \u01c5"},
	{"Empty", ""},
}

// Tally counts what the hostile requests got back, by status.
type Tally map[int]int

// Add counts one answer.
func (ta Tally) Add(status int) { ta[status]++ }

// Total is the number of answers counted.
func (ta Tally) Total() int {
	n := 0
	for _, v := range ta {
		n += v
	}
	return n
}

// CheckAnswer: no 5xx, and a refusal says why in words.
func CheckAnswer(t testing.TB, what string, status int, body string) {
	t.Helper()
	require.Less(t, status, 500, "%s: %s", what, body)
	if status >= 400 && status != http.StatusMethodNotAllowed {
		require.True(t, strings.Contains(body, `data-testid="error-message"`) || strings.Contains(body, `"error":`) ||
			strings.Contains(body, `data-testid="field-error`) || strings.Contains(body, `data-testid="login-error"`) ||
			strings.Contains(body, `class="field-error"`) || strings.Contains(body, `aria-invalid`),
			"%s: the %d answer says why: %s", what, status, body)
	}
}

// HostileForm is a form the hostile sweep posts: valid values, and the
// record's current version (nil for a create).
type HostileForm struct {
	Path    string
	Fields  url.Values
	Version func() string // the current version, set unless the field under test is "version"
	// Current, when set, gives fields that follow what is stored (the
	// connection variables' name=version lines), set before the field
	// under test like Version.
	Current func() url.Values
}

// SweepHostileForms posts each form with each field, one at a time, set to
// each hostile value: never a 5xx, a refusal says why and names the field,
// and a refused request leaves state() as it was. each sees every answer.
func SweepHostileForms(t testing.TB, c *Client, forms []HostileForm, state func() string, each func(f HostileForm, status int)) {
	t.Helper()
	for _, f := range forms {
		fields := []string{"version"}
		for k := range f.Fields {
			fields = append(fields, k)
		}
		for _, field := range fields {
			if field == "version" && f.Version == nil {
				continue
			}
			for _, h := range Hostile {
				form := url.Values{}
				for k, v := range f.Fields {
					form[k] = v
				}
				if f.Version != nil {
					form.Set("version", f.Version())
				}
				if f.Current != nil {
					for k, v := range f.Current() {
						form[k] = v
					}
				}
				form.Set(field, h.Value)
				before := state()
				what := fmt.Sprintf("POST %s %s=%s", f.Path, field, h.Name)
				res := c.PostForm(f.Path, form)
				CheckAnswer(t, what, res.StatusCode, res.Body)
				if res.StatusCode == http.StatusUnprocessableEntity {
					require.Contains(t, res.Body, field, "%s: the refusal names the field", what)
				}
				if res.StatusCode >= 400 {
					require.Equal(t, before, state(), "%s was refused, so nothing is stored", what)
				}
				if each != nil {
					each(f, res.StatusCode)
				}
			}
		}
	}
}
