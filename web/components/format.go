// Package components holds the widgets pages share: badges, tables of
// transactions, time stamps, payload viewers and the bulk job progress dialog.
package components

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"unifi/models"
)

// TimeLayout is how every time stamp is written.
const TimeLayout = "2006-01-02 15:04:05"

// FormatTime writes a time stamp, or a dash for none.
func FormatTime(t *time.Time) string {
	var buf [32]byte // TimeLayout's 19 bytes fit: one allocation, the string's, as time.Format makes
	return string(appendTime(buf[:0], t))
}

// appendTime appends FormatTime's text.
func appendTime(b []byte, t *time.Time) []byte {
	if t == nil || t.IsZero() {
		return append(b, "—"...)
	}
	return t.Local().AppendFormat(b, TimeLayout)
}

// FormatTimeMS writes a time stamp with milliseconds (timelines).
func FormatTimeMS(t time.Time) string { return t.Local().Format("15:04:05.000") }

// Ago says how long ago t was, in rounded words ("4 min").
func Ago(now time.Time, t *time.Time) string {
	if t == nil {
		return "—"
	}
	return Duration(now.Sub(*t))
}

// Duration writes a duration in rounded words.
func Duration(d time.Duration) string {
	switch {
	case d < 0:
		return "0 s"
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}

// PrettyJSON indents a JSON body; anything else is returned as it is.
func PrettyJSON(body string) string {
	var buf bytes.Buffer
	if err := json.Indent(&buf, []byte(body), "", "  "); err != nil {
		return body
	}
	return buf.String()
}

// JSONOf writes any value as indented JSON.
func JSONOf(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// Header is one HTTP header as shown.
type Header struct{ Name, Value string }

var secretHeaders = []string{"authorization", "cookie", "set-cookie", "proxy-authorization", "x-api-key", "token", "secret", "password"}

// RedactedHeaders sorts headers by name and hides secret values, even when
// the stored copy was not redacted.
func RedactedHeaders(h map[string]string) []Header {
	out := make([]Header, 0, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		for _, s := range secretHeaders {
			if strings.Contains(lk, s) && v != "" && !strings.HasPrefix(v, "[redacted") {
				v = "[redacted]"
				break
			}
		}
		out = append(out, Header{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StageField is one staged property.
type StageField struct{ Name, Value string }

// StageFields lists a stage's properties in name order.
func StageFields(data map[string]any) []StageField {
	out := make([]StageField, 0, len(data))
	for k, v := range data {
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		out = append(out, StageField{k, s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// The paths of the record pages the lists link to, before the record's id.
const (
	transactionPath = "/transactions/"
	bondPath        = "/bonds/"
	integrationPath = "/integrations/"
	ticketPath      = "/tickets/"
)

// TransactionURL is the Transaction page of id.
func TransactionURL(id int64) string { return transactionPath + strconv.FormatInt(id, 10) }

// BondURL is the Bond page of id.
func BondURL(id int64) string { return bondPath + strconv.FormatInt(id, 10) }

// TicketURL is the ticket page of id.
func TicketURL(id int64) string { return ticketPath + strconv.FormatInt(id, 10) }

// IntegrationURL is the Integration page of id.
func IntegrationURL(id int64) string { return integrationPath + strconv.FormatInt(id, 10) }

// HTTPRequestURL is the HTTP Request page of id.
func HTTPRequestURL(id int64) string { return "/http-requests/" + strconv.FormatInt(id, 10) }

// TransactionsURL is the transactions list filtered by the query values.
func TransactionsURL(q url.Values) string {
	if len(q) == 0 {
		return "/transactions"
	}
	return "/transactions?" + q.Encode()
}

// StateLabel is a pointer state's label, or "—".
func StateLabel(s *models.TransportState) string {
	if s == nil {
		return "—"
	}
	return s.String()
}

// Itoa64 writes an int64.
func Itoa64(n int64) string { return fmt.Sprint(n) }

// Percent is done+failed of total as a whole percentage.
func Percent(done, failed, total int) int {
	if total <= 0 {
		return 100
	}
	return (done + failed) * 100 / total
}

// FieldLabel is a ticket field's name in words ("work_notes" -> "Work notes").
func FieldLabel(field string) string {
	s := strings.ReplaceAll(field, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sideWords says whose change a conflict's value was.
func sideWords(ours bool) string {
	if ours {
		return "ours"
	}
	return "theirs"
}

// byWords is " by name", or nothing for no name.
func byWords(name string) string {
	if name == "" {
		return ""
	}
	return " by " + name
}
