package configpkg

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"unicode/utf8"
)

// Problem is one fault of a document, at a place named like
// messages[2].fields[0].property ("" for the document as a whole).
type Problem struct {
	Path string
	Text string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Text
	}
	return p.Path + ": " + p.Text
}

// Error lists what is wrong with a document. Nothing is stored when a
// document has any problem.
type Error struct{ Problems []Problem }

func (e *Error) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "package: " + strings.Join(parts, "; ")
}

func fault(path, format string, args ...any) *Error {
	return &Error{Problems: []Problem{{Path: path, Text: fmt.Sprintf(format, args...)}}}
}

// Decode reads a document strictly: at most MaxBytes, valid JSON, every key
// known and of the right type, no key twice, nothing after the document, a
// format this product reads, and every rule of validate (names, ranges,
// references between messages). Any fault is an *Error naming its place.
func Decode(r io.Reader) (*Document, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read package: %w", err)
	}
	if len(data) > MaxBytes {
		return nil, fault("", "the document is larger than the limit of %d MB; a package holds one integration's configuration and is far smaller", MaxBytes>>20)
	}
	return DecodeBytes(data)
}

// DecodeBytes is Decode of a document already in memory (at most MaxBytes).
func DecodeBytes(data []byte) (*Document, error) {
	if len(data) > MaxBytes {
		return nil, fault("", "the document is larger than the limit of %d MB", MaxBytes>>20)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fault("", "the document is empty")
	}
	if !utf8.Valid(data) {
		// JSON would quietly turn the bytes into U+FFFD; a package is text.
		at := 0
		for at < len(data) {
			r, size := utf8.DecodeRune(data[at:])
			if r == utf8.RuneError && size <= 1 {
				break
			}
			at += size
		}
		return nil, fault("", "the document is not valid UTF-8 text (at byte %d); save it as UTF-8 and try again", at)
	}
	format, err := checkFormat(data)
	if err != nil {
		return nil, err
	}
	d := &Document{}
	r := &reader{dec: json.NewDecoder(bytes.NewReader(data)), format: format}
	r.dec.UseNumber()
	if err := r.document(d); err != nil {
		return nil, err
	}
	if _, err := r.dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fault("", "there is more after the end of the document (at byte %d); a package is one JSON object", r.dec.InputOffset())
	}
	if err := validate(d); err != nil {
		return nil, err
	}
	return d, nil
}

// checkFormat looks at "format" before anything else, so a document from a
// newer product is told so rather than about keys this version does not know;
// it returns the format, which decides the keys the reader knows.
func checkFormat(data []byte) (int, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&top); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) || bytes.TrimSpace(data)[0] != '{' {
			return 0, fault("", "the document must be a JSON object ({ ... })")
		}
		return 0, malformed(err, dec.InputOffset())
	}
	raw, ok := top["format"]
	if !ok {
		return 0, fault("", `missing key "format" (this product writes format %d)`, Format)
	}
	var f json.Number
	if err := json.Unmarshal(raw, &f); err != nil {
		return 0, fault("format", "expected a whole number, found %s", describeRaw(raw))
	}
	n, err := f.Int64()
	switch {
	case err != nil || n < 1:
		return 0, fault("format", "expected a whole number from 1, found %s", f)
	case n > Format:
		return 0, fault("format", "this document is format %d, written by a newer version of the product; this version reads format %d and older. Upgrade this instance, or export again from an instance of this version", n, Format)
	}
	return int(n), nil
}

func malformed(err error, offset int64) *Error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		offset = se.Offset
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return fault("", "the document ends too early (at byte %d): malformed JSON", offset)
	}
	return fault("", "malformed JSON at byte %d: %s", offset, strings.TrimPrefix(err.Error(), "json: "))
}

func describeRaw(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return "malformed JSON"
	}
	return describe(tok)
}

// describe names what a token is, in words.
func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "a list"
	case string:
		return "a string"
	case json.Number:
		return "the number " + v.String()
	case bool:
		return fmt.Sprintf("%t", v)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}

// reader walks the document token by token, keeping the path to name the
// place of a fault; format is the document's, whose keys it knows.
type reader struct {
	dec    *json.Decoder
	format int
}

func (r *reader) token() (json.Token, error) {
	tok, err := r.dec.Token()
	if err != nil {
		return nil, malformed(err, r.dec.InputOffset())
	}
	return tok, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// object reads an object whose keys field knows: field reads the value of a
// known key and reports false for an unknown one. Required keys must appear.
func (r *reader) object(path string, field func(key, path string) (bool, error), required ...string) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return fault(path, "expected an object, found %s", describe(tok))
	}
	seen := map[string]bool{}
	for r.dec.More() {
		tok, err := r.token()
		if err != nil {
			return err
		}
		key, _ := tok.(string) // object keys are always strings
		p := join(path, key)
		if seen[key] {
			return fault(p, "the key appears twice")
		}
		seen[key] = true
		known, err := field(key, p)
		if err != nil {
			return err
		}
		if !known {
			return fault(p, "unknown key (format %d does not have it; check its spelling)", r.format)
		}
	}
	if _, err := r.token(); err != nil { // the closing brace
		return err
	}
	for _, k := range required {
		if !seen[k] {
			return fault(path, "missing key %q", k)
		}
	}
	return nil
}

// list reads a list, calling item for each element with its index's path.
func (r *reader) list(path string, item func(i int, path string) error) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	if tok != json.Delim('[') {
		return fault(path, "expected a list, found %s", describe(tok))
	}
	for i := 0; r.dec.More(); i++ {
		if err := item(i, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return err
		}
	}
	_, err = r.token()
	return err
}

func (r *reader) str(path string, dst *string) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	s, ok := tok.(string)
	if !ok {
		return fault(path, "expected a string, found %s", describe(tok))
	}
	*dst = s
	return nil
}

func (r *reader) integer(path string, dst *int) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return fault(path, "expected a whole number, found %s", describe(tok))
	}
	v, err := n.Int64()
	if err != nil || v < math.MinInt32 || v > math.MaxInt32 {
		return fault(path, "expected a whole number, found %s", n)
	}
	*dst = int(v)
	return nil
}

func (r *reader) boolean(path string, dst *bool) error {
	tok, err := r.token()
	if err != nil {
		return err
	}
	b, ok := tok.(bool)
	if !ok {
		return fault(path, "expected true or false, found %s", describe(tok))
	}
	*dst = b
	return nil
}

func (r *reader) strings(path string, dst *[]string) error {
	*dst = []string{}
	return r.list(path, func(_ int, p string) error {
		var s string
		if err := r.str(p, &s); err != nil {
			return err
		}
		*dst = append(*dst, s)
		return nil
	})
}

func (r *reader) stringMap(path string, dst *map[string]string) error {
	m := map[string]string{}
	*dst = m
	return r.object(path, func(key, p string) (bool, error) {
		var v string
		if err := r.str(p, &v); err != nil {
			return true, err
		}
		m[key] = v
		return true, nil
	})
}

// done marks a key as known, passing on the error of reading its value.
func done(err error) (bool, error) { return true, err }

func (r *reader) document(d *Document) error {
	return r.object("", func(key, p string) (bool, error) {
		switch key {
		case "format":
			return done(r.integer(p, &d.Format))
		case "process":
			return done(r.process(p, &d.Process))
		case "integration":
			return done(r.integration(p, &d.Integration))
		case "connections":
			d.Connections = []Connection{}
			return done(r.list(p, func(_ int, p string) error {
				var c Connection
				err := r.connection(p, &c)
				d.Connections = append(d.Connections, c)
				return err
			}))
		case "messages":
			d.Messages = []Message{}
			return done(r.list(p, func(_ int, p string) error {
				var m Message
				err := r.message(p, &m)
				d.Messages = append(d.Messages, m)
				return err
			}))
		case "response_actions":
			d.ResponseActions = []ResponseAction{}
			return done(r.list(p, func(_ int, p string) error {
				var a ResponseAction
				err := r.responseAction(p, &a)
				d.ResponseActions = append(d.ResponseActions, a)
				return err
			}))
		case "poll_processors":
			if r.format < 2 {
				return false, nil // scripts, variables, poll processors and pollers came with format 2
			}
			return done(r.list(p, func(_ int, p string) error {
				var x PollProcessor
				err := r.pollProcessor(p, &x)
				d.PollProcessors = append(d.PollProcessors, x)
				return err
			}))
		case "pollers":
			if r.format < 2 {
				return false, nil
			}
			return done(r.list(p, func(_ int, p string) error {
				var x Poller
				err := r.poller(p, &x)
				d.Pollers = append(d.Pollers, x)
				return err
			}))
		}
		return false, nil
	}, "format", "process", "integration")
}

func (r *reader) process(path string, x *Process) error {
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "ticket_table":
			return done(r.str(p, &x.TicketTable))
		case "reference_field":
			return done(r.str(p, &x.ReferenceField))
		case "number_prefix":
			return done(r.str(p, &x.NumberPrefix))
		case "fields":
			if r.format < 2 {
				return false, nil // process fields came with format 2
			}
			x.Fields = []ProcessField{}
			return done(r.list(p, func(_ int, p string) error {
				var f ProcessField
				err := r.processField(p, &f)
				x.Fields = append(x.Fields, f)
				return err
			}))
		}
		return false, nil
	}, "name", "ticket_table", "reference_field", "number_prefix")
}

func (r *reader) processField(path string, x *ProcessField) error {
	x.Choices = []string{}
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "label":
			return done(r.str(p, &x.Label))
		case "type":
			return done(r.str(p, &x.Type))
		case "required":
			return done(r.boolean(p, &x.Required))
		case "choices":
			return done(r.strings(p, &x.Choices))
		}
		return false, nil
	}, "name", "label", "type")
}

func (r *reader) integration(path string, x *Integration) error {
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "description":
			return done(r.str(p, &x.Description))
		case "sync_timeout_s":
			return done(r.integer(p, &x.SyncTimeoutS))
		case "async_timeout_s":
			return done(r.integer(p, &x.AsyncTimeoutS))
		case "retry_limit":
			return done(r.integer(p, &x.RetryLimit))
		case "retry_delay_s":
			return done(r.integer(p, &x.RetryDelayS))
		case "attach_logs":
			return done(r.boolean(p, &x.AttachLogs))
		case "heartbeat_s":
			return done(r.integer(p, &x.HeartbeatS))
		}
		return false, nil
	}, "name", "sync_timeout_s", "async_timeout_s", "retry_limit", "retry_delay_s", "attach_logs", "heartbeat_s")
}

func (r *reader) connection(path string, x *Connection) error {
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "environment":
			return done(r.str(p, &x.Environment))
		case "endpoint_url":
			return done(r.str(p, &x.EndpointURL))
		case "auth_type":
			return done(r.str(p, &x.AuthType))
		case "auth_username":
			return done(r.str(p, &x.AuthUsername))
		case "oauth_token_url":
			return done(r.str(p, &x.OAuthTokenURL))
		case "oauth_client_id":
			return done(r.str(p, &x.OAuthClientID))
		case "oauth_scopes":
			return done(r.str(p, &x.OAuthScopes))
		case "variables":
			if r.format < 2 {
				return false, nil
			}
			return done(r.stringMap(p, &x.Variables))
		}
		return false, nil
	}, "name", "environment", "endpoint_url", "auth_type")
}

func (r *reader) message(path string, x *Message) error {
	x.AllowedBondStates, x.Fields, x.TriggerFields = []string{}, []Field{}, []string{}
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "type":
			return done(r.str(p, &x.Type))
		case "direction":
			return done(r.str(p, &x.Direction))
		case "async":
			return done(r.boolean(p, &x.Async))
		case "receipt_message":
			return done(r.str(p, &x.ReceiptMessage))
		case "path":
			return done(r.str(p, &x.Path))
		case "trigger":
			return done(r.str(p, &x.Trigger))
		case "bond_ownership":
			return done(r.str(p, &x.BondOwnership))
		case "allowed_bond_states":
			return done(r.strings(p, &x.AllowedBondStates))
		case "set_bond_state":
			return done(r.str(p, &x.SetBondState))
		case "fields":
			return done(r.list(p, func(i int, p string) error {
				f := Field{Position: i} // before format 3, the list's order
				err := r.field(p, &f)
				x.Fields = append(x.Fields, f)
				return err
			}))
		case "response_message":
			if r.format < 3 {
				return false, nil
			}
			return done(r.str(p, &x.ResponseMessage))
		case "trigger_fields":
			if r.format < 3 {
				return false, nil
			}
			return done(r.strings(p, &x.TriggerFields))
		case "scripts":
			if r.format < 2 {
				return false, nil
			}
			return done(r.stringMap(p, &x.Scripts))
		}
		return false, nil
	}, "name", "type", "direction", "trigger", "bond_ownership")
}

// field reads a message field; x.Position comes set to its index, which a
// format 3 "position" replaces.
func (r *reader) field(path string, x *Field) error {
	x.Direction, x.ValueMap, x.InboundValueMap = "Bidirectional", map[string]string{}, map[string]string{}
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "ticket_field":
			return done(r.str(p, &x.TicketField))
		case "property":
			return done(r.str(p, &x.Property))
		case "required":
			return done(r.boolean(p, &x.Required))
		case "value_map":
			return done(r.stringMap(p, &x.ValueMap))
		}
		if r.format < 3 {
			return false, nil // the keys below came with format 3
		}
		switch key {
		case "direction":
			return done(r.str(p, &x.Direction))
		case "default":
			return done(r.str(p, &x.Default))
		case "position":
			return done(r.integer(p, &x.Position))
		case "inbound_value_map":
			return done(r.stringMap(p, &x.InboundValueMap))
		}
		return false, nil
	}, "ticket_field", "property")
}

func (r *reader) responseAction(path string, x *ResponseAction) error {
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "message":
			return done(r.str(p, &x.Message))
		case "status_code":
			return done(r.integer(p, &x.StatusCode))
		case "retry":
			return done(r.boolean(p, &x.Retry))
		case "set_integration_status":
			return done(r.str(p, &x.SetIntegrationStatus))
		case "description":
			return done(r.str(p, &x.Description))
		}
		if r.format < 3 {
			return false, nil // the keys below came with format 3
		}
		switch key {
		case "set_transaction_state":
			return done(r.str(p, &x.SetTransactionState))
		case "set_process_state":
			return done(r.str(p, &x.SetProcessState))
		case "set_integration_state":
			return done(r.str(p, &x.SetIntegrationState))
		case "bond_note":
			return done(r.str(p, &x.BondNote))
		}
		return false, nil
	}, "status_code", "retry")
}
