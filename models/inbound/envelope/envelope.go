// Package envelope reads the body of an inbound request: the wire protocol's
// envelope (docs/domain.md, "The wire protocol"), checked field by field. It
// says what is wrong with a body in plain words; models/inbound decides what
// the sender is answered (its refusals) and what is stored.
package envelope

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"unifi/models"
	"unifi/models/converge"
)

// Limits on the envelope's header values.
const (
	maxIDLen    = 100  // source_id, target_id
	maxRefLen   = 100  // source_reference, target_reference
	MaxErrorLen = 4000 // status.error, and the error text models/inbound stores of a refusal
)

// FaultKind says why a body is no envelope at all.
type FaultKind int

// Fault kinds.
const (
	Malformed FaultKind = iota + 1 // not a JSON object (Fault.Detail says why)
	NoName                         // no message name
	BadName                        // a name no message can have (not UTF-8, NUL, over 64 bytes)
)

// Fault is a body that is no envelope at all: there is no message to check.
type Fault struct {
	Kind   FaultKind
	Detail string // for Malformed: what is wrong, in plain words
}

func (f *Fault) Error() string {
	switch f.Kind {
	case NoName:
		return "the envelope names no message"
	case BadName:
		return "the envelope's message name is not one a message can have"
	}
	return "the body is not an envelope: " + f.Detail
}

// Envelope is a received envelope, checked field by field.
type Envelope struct {
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

// Parse decodes a request body. It returns a *Fault when the body is not a
// JSON object or names no message; problems with other fields
// come back as a *ValidationError, checked only once the name is known (so an
// unknown name is reported as such, not as a missing field).
func Parse(raw []byte) (*Envelope, *models.ValidationError, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		detail := "the body must be a JSON object with message, data and status"
		if err != nil {
			detail = "the body is not a JSON object: " + jsonError(err)
		}
		return nil, nil, &Fault{Kind: Malformed, Detail: detail}
	}
	header := envelopeHeader(top)
	name, fault := envelopeName(header)
	if fault != nil {
		return nil, nil, fault
	}
	env := &Envelope{Name: name}
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
	if m, ok := top["message"]; ok && !isNull(m) {
		if err := json.Unmarshal(m, &header); err != nil {
			header = nil // not an object: there is no name to read
		}
	}
	return header
}

// envelopeName is the message name the header gives, or the fault of a
// missing or impossible one.
func envelopeName(header map[string]any) (string, *Fault) {
	name, _ := header["name"].(string)
	name = strings.TrimSpace(name)
	if name == "" {
		return "", &Fault{Kind: NoName}
	}
	if !utf8.ValidString(name) || len(name) > 64 || strings.ContainsRune(name, 0) {
		return "", &Fault{Kind: BadName}
	}
	return name, nil
}

// readEnvelopeHeader reads the header's IDs, references and time stamp.
func readEnvelopeHeader(env *Envelope, header map[string]any, problems *models.ValidationError) {
	env.SourceID = headerText(header, problems, "source_id", maxIDLen)
	env.TargetID = headerText(header, problems, "target_id", maxIDLen)
	env.SourceReference = headerText(header, problems, "source_reference", maxRefLen)
	env.TargetReference = headerText(header, problems, "target_reference", maxRefLen)
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
	case !CleanText(s):
		problems.Add("message."+key, "Control characters are not allowed.")
	default:
		return strings.TrimSpace(s)
	}
	return ""
}

// readEnvelopeData reads the envelope's data object (empty when there is none).
func readEnvelopeData(env *Envelope, top map[string]json.RawMessage, problems *models.ValidationError) {
	env.Data = map[string]any{}
	if d, ok := top["data"]; ok && !isNull(d) {
		if err := json.Unmarshal(d, &env.Data); err != nil || env.Data == nil {
			problems.Add("data", "Give an object of field values.")
			env.Data = map[string]any{}
		} else if !cleanValue(env.Data) {
			problems.Add("data", "Text values may not hold NUL characters.")
		}
	}
}

// readEnvelopeStatus reads the envelope's status: its process state and error.
func readEnvelopeStatus(env *Envelope, top map[string]json.RawMessage, problems *models.ValidationError) {
	st, ok := top["status"]
	if !ok || isNull(st) {
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
		case !CleanText(s):
			problems.Add("status.error", "Control characters other than line breaks are not allowed.")
		default:
			env.StatusError = Truncate(strings.TrimSpace(s), MaxErrorLen)
		}
	}
}

func isNull(m json.RawMessage) bool { return strings.TrimSpace(string(m)) == "null" }

// jsonError shortens encoding/json's messages for a sender.
func jsonError(err error) string {
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

// CleanText reports whether s is valid UTF-8 without NUL or control
// characters other than tab and line breaks.
func CleanText(s string) bool {
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

// cleanValue reports whether a decoded JSON value holds no NUL character in
// any key or string: PostgreSQL text and jsonb refuse them.
func cleanValue(v any) bool {
	switch x := v.(type) {
	case string:
		return !strings.ContainsRune(x, 0)
	case map[string]any:
		for k, e := range x {
			if strings.ContainsRune(k, 0) || !cleanValue(e) {
				return false
			}
		}
	case []any:
		for _, e := range x {
			if !cleanValue(e) {
				return false
			}
		}
	}
	return true
}

func Truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
