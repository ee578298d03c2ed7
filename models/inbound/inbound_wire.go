package inbound

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"unifi/models"
	"unifi/models/converge"
)

// MaxStoredBody caps the request and response bodies kept in an HTTP Request
// record; longer bodies are cut with a note saying how long they were.
const MaxStoredBody = 64 << 10

// Limits on the envelope's header values.
const (
	maxInboundIDLen  = 100 // source_id, target_id
	maxInboundRefLen = 100 // source_reference, target_reference
	maxInboundErrLen = 4000
)

// RequestMeta describes one inbound HTTP request for its HTTP Request record.
type RequestMeta struct {
	Method     string
	URL        string
	Header     http.Header
	RemoteAddr string
	Started    time.Time
}

// inboundEnvelope is a received envelope, checked field by field.
type inboundEnvelope struct {
	Name            string
	TimeStamp       time.Time
	HasTimeStamp    bool
	SourceReference string
	TargetReference string
	SourceID        string
	TargetID        string
	Data            map[string]any
	Stamps          map[string]models.WireStamp // nil: the sender keeps no stamps
	HasStatus       bool
	ProcessState    models.ProcessState
	StatusError     string
}

// parseInboundEnvelope decodes a request body. It returns a refusal when the
// body is not a JSON object or names no message; problems with other fields
// come back as a *ValidationError, checked only once the name is known (so an
// unknown name is reported as such, not as a missing field).
func parseInboundEnvelope(raw []byte) (*inboundEnvelope, *models.ValidationError, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		detail := "the body must be a JSON object with message, data and status"
		if err != nil {
			detail = "the body is not a JSON object: " + inboundJSONError(err)
		}
		return nil, nil, refuseDetail(RefusalMalformed, "The request body is not a valid message envelope", detail)
	}
	header := envelopeHeader(top)
	name, err := envelopeName(header)
	if err != nil {
		return nil, nil, err
	}
	env := &inboundEnvelope{Name: name}
	problems := &models.ValidationError{}
	readEnvelopeHeader(env, header, problems)
	readEnvelopeData(env, top, problems)
	raw, ok := top["stamps"]
	env.Stamps = converge.ParseStamps(raw, ok, problems)
	readEnvelopeStatus(env, top, problems)
	return env, problems, nil
}

// envelopeHeader is the envelope's message object, nil when there is none.
func envelopeHeader(top map[string]json.RawMessage) map[string]any {
	var header map[string]any
	if m, ok := top["message"]; ok && !inboundIsNull(m) {
		if err := json.Unmarshal(m, &header); err != nil {
			header = nil // not an object: there is no name to read
		}
	}
	return header
}

// envelopeName is the message name the header gives, or the refusal of a
// missing or impossible one.
func envelopeName(header map[string]any) (string, error) {
	name, _ := header["name"].(string)
	name = strings.TrimSpace(name)
	if name == "" {
		return "", refuse(RefusalNoName, TextNoMessageName)
	}
	if !utf8.ValidString(name) || len(name) > 64 || strings.ContainsRune(name, 0) {
		return "", refuse(RefusalUnknownName, TextUnknownMessageName)
	}
	return name, nil
}

// readEnvelopeHeader reads the header's IDs, references and time stamp.
func readEnvelopeHeader(env *inboundEnvelope, header map[string]any, problems *models.ValidationError) {
	env.SourceID = headerText(header, problems, "source_id", maxInboundIDLen)
	env.TargetID = headerText(header, problems, "target_id", maxInboundIDLen)
	env.SourceReference = headerText(header, problems, "source_reference", maxInboundRefLen)
	env.TargetReference = headerText(header, problems, "target_reference", maxInboundRefLen)
	if ts := headerText(header, problems, "time_stamp", 64); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			problems.Add("message.time_stamp", "Give a date and time in RFC 3339 form, e.g. 2026-11-22T10:15:00Z.")
		} else {
			env.TimeStamp, env.HasTimeStamp = t.UTC(), true
		}
	}
}

// headerText is the header's text value of key, trimmed; "" when it is
// missing, or wrong (then problems says why).
func headerText(header map[string]any, problems *models.ValidationError, key string, limit int) string {
	v, present := header[key]
	if !present || v == nil {
		return ""
	}
	s, ok := v.(string)
	switch {
	case !ok:
		problems.Add("message."+key, "Give text.")
	case utf8.RuneCountInString(s) > limit:
		problems.Add("message."+key, fmt.Sprintf("Use at most %d characters.", limit))
	case !inboundCleanText(s):
		problems.Add("message."+key, "Control characters are not allowed.")
	default:
		return strings.TrimSpace(s)
	}
	return ""
}

// readEnvelopeData reads the envelope's data object (empty when there is none).
func readEnvelopeData(env *inboundEnvelope, top map[string]json.RawMessage, problems *models.ValidationError) {
	env.Data = map[string]any{}
	if d, ok := top["data"]; ok && !inboundIsNull(d) {
		if err := json.Unmarshal(d, &env.Data); err != nil || env.Data == nil {
			problems.Add("data", "Give an object of field values.")
			env.Data = map[string]any{}
		} else if !inboundCleanValue(env.Data) {
			problems.Add("data", "Text values may not hold NUL characters.")
		}
	}
}

// readEnvelopeStatus reads the envelope's status: its process state and error.
func readEnvelopeStatus(env *inboundEnvelope, top map[string]json.RawMessage, problems *models.ValidationError) {
	st, ok := top["status"]
	if !ok || inboundIsNull(st) {
		return
	}
	var status map[string]any
	if err := json.Unmarshal(st, &status); err != nil || status == nil {
		problems.Add("status", "Give an object with process_state and error.")
		return
	}
	env.HasStatus = true
	ps, _ := status["process_state"].(string)
	if p, err := models.ParseProcessState(ps); err != nil || p == models.ProcessPending {
		problems.Add("status.process_state", "Give Accepted or Rejected.")
	} else {
		env.ProcessState = p
	}
	if e, present := status["error"]; present && e != nil {
		s, ok := e.(string)
		switch {
		case !ok:
			problems.Add("status.error", "Give text.")
		case !inboundCleanText(s):
			problems.Add("status.error", "Control characters other than line breaks are not allowed.")
		default:
			env.StatusError = inboundTruncate(strings.TrimSpace(s), maxInboundErrLen)
		}
	}
}

func inboundIsNull(m json.RawMessage) bool { return strings.TrimSpace(string(m)) == "null" }

// inboundJSONError shortens encoding/json's messages for a sender.
func inboundJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("%s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("a %s where an object was expected", te.Value)
	}
	return err.Error()
}

// inboundCleanText reports whether s is valid UTF-8 without NUL or control
// characters other than tab and line breaks.
func inboundCleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f {
			return false
		}
	}
	return true
}

// inboundCleanValue reports whether a decoded JSON value holds no NUL character in
// any key or string: PostgreSQL text and jsonb refuse them.
func inboundCleanValue(v any) bool {
	switch x := v.(type) {
	case string:
		return !strings.ContainsRune(x, 0)
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || !inboundCleanValue(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !inboundCleanValue(e) {
				return false
			}
		}
	}
	return true
}

func inboundTruncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}

// inboundStorable makes bytes safe for a PostgreSQL text column (valid UTF-8, no
// NUL) and caps them at MaxStoredBody with a note saying how long they were.
func inboundStorable(b []byte) string {
	s := string(b)
	cut := len(s) > MaxStoredBody
	if cut {
		s = s[:MaxStoredBody]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if cut {
		s += fmt.Sprintf("\n… [cut: %d bytes in all]", len(b))
	}
	return s
}

// inboundRedactHeaders flattens request headers for storage with secrets hidden:
// credentials keep only their scheme ("Bearer [redacted]").
func inboundRedactHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		lk := strings.ToLower(k)
		switch {
		case lk == "authorization" || lk == "proxy-authorization":
			scheme, _, _ := strings.Cut(v, " ")
			if len(scheme) > 20 || scheme == v {
				scheme = ""
			}
			v = strings.TrimSpace(scheme + " [redacted]")
		case lk == "cookie" || lk == "set-cookie" || strings.Contains(lk, "token") || strings.Contains(lk, "secret") ||
			strings.Contains(lk, "password") || strings.Contains(lk, "api-key") || strings.Contains(lk, "apikey"):
			v = "[redacted]"
		}
		if len(v) > 2000 {
			v = v[:2000]
		}
		out[inboundStorable([]byte(k))] = inboundStorable([]byte(v))
	}
	return out
}
