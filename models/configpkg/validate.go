package configpkg

import (
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"unifi/models"
	"unifi/models/script"
)

// The patterns and ranges below are the database's CHECK constraints
// (migrations/00001_init.sql), checked here first so that a document is
// refused with the place of the fault instead of a constraint name.
var (
	integrationName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	messageName     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
	propertyName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
	numberPrefix    = regexp.MustCompile(`^[A-Z]{2,6}$`)
)

// Limits on free text, so a document cannot fill the database with one value.
const (
	maxText      = 200   // names, URLs, paths, value map entries
	maxLongText  = 2000  // descriptions
	maxScript    = 65536 // a message script, in bytes (the table's CHECK)
	maxVariable  = 4096  // a connection variable's value, in bytes
	maxValueMaps = 1000  // entries of one value map
)

// problems collects the faults of a document, at most maxProblems of them.
type problems struct{ list []Problem }

const maxProblems = 50

func (ps *problems) add(path, format string, args ...any) {
	if len(ps.list) < maxProblems {
		ps.list = append(ps.list, Problem{Path: path, Text: fmt.Sprintf(format, args...)})
	}
}

// text checks a string that is stored: valid UTF-8, no NUL, not too long.
func (ps *problems) text(path, s string, max int) {
	if p := models.TextProblem(s); p != "" {
		ps.add(path, "%s", p)
	} else if n := utf8.RuneCountInString(s); n > max {
		ps.add(path, "is %d characters long; at most %d are allowed", n, max)
	}
}

func (ps *problems) required(path, s string) bool {
	if strings.TrimSpace(s) == "" {
		ps.add(path, "must not be empty")
		return false
	}
	return true
}

func (ps *problems) oneOf(path, s string, allowed []string) {
	if !slices.Contains(allowed, s) {
		ps.add(path, "%q is not one of %s", s, strings.Join(quoteAll(allowed), ", "))
	}
}

func (ps *problems) between(path string, n, lo, hi int) {
	if n < lo || n > hi {
		ps.add(path, "%d is outside the allowed range %d to %d", n, lo, hi)
	}
}

func quoteAll(xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = fmt.Sprintf("%q", x)
	}
	return out
}

func strs[T ~string](xs ...T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = string(x)
	}
	return out
}

var (
	authTypes     = strs(models.AuthNone, models.AuthBasic, models.AuthBearer, models.AuthOAuth2)
	messageTypes  = strs(models.MessageCreate, models.MessageUpdate, models.MessageReceipt, models.MessageResponse, models.MessageHeartbeat)
	directions    = strs(models.Inbound, models.Outbound, models.Bidirectional)
	triggers      = strs(models.TriggerNone, models.TriggerCreate, models.TriggerUpdate, models.TriggerResolve, models.TriggerFields)
	txStates      = orEmpty(strs(models.Complete.String(), models.Error.String()))
	processStates = orEmpty(strs(models.ProcessAccepted.String(), models.ProcessRejected.String()))
	intStates     = orEmpty(strs(models.IntegrationPaused))
	ownerships    = strs(models.OwnershipIgnore, models.OwnershipMustOwn, models.OwnershipMustNotOwn)
	bondStates    = strs(models.BondStates...)
	statuses      = strs(models.StatusUp, models.StatusDown, models.StatusAwaiting)
	orEmpty       = func(xs []string) []string { return append([]string{""}, xs...) }
	integrationRE = "letters, digits, - and _ (1 to 64)"
)

// validate checks everything the database would refuse and every reference
// between records of the document.
func validate(d *Document) error {
	ps := &problems{}
	p := d.Process
	if ps.required("process.name", p.Name) {
		ps.text("process.name", p.Name, 64)
	}
	if ps.required("process.ticket_table", p.TicketTable) {
		ps.text("process.ticket_table", p.TicketTable, 64)
	}
	if ps.required("process.reference_field", p.ReferenceField) {
		ps.text("process.reference_field", p.ReferenceField, 64)
	}
	if !numberPrefix.MatchString(p.NumberPrefix) {
		ps.add("process.number_prefix", "%q must be 2 to 6 capital letters, like INC", p.NumberPrefix)
	}
	ticketFields := slices.Clone(models.MappableFields)
	for i, f := range p.Fields {
		at := fmt.Sprintf("process.fields[%d]", i)
		// The Designer's rules, each problem at its key.
		pf := models.ProcessField{Name: f.Name, Label: f.Label, Type: models.FieldType(f.Type), Required: f.Required,
			Choices: models.JSON[[]string]{V: f.Choices}}
		if err := pf.Validate(); err != nil {
			ve := err.(*models.ValidationError)
			for _, k := range slices.Sorted(maps.Keys(ve.Fields)) {
				ps.add(at+"."+k, "%s", ve.Fields[k])
			}
		}
		// Validate trims what a form typed; a document is stored as it is.
		if pf.Name != f.Name {
			ps.add(at+".name", "%q starts or ends with spaces; remove them", f.Name)
		}
		if pf.Label != f.Label {
			ps.add(at+".label", "%q starts or ends with spaces; remove them", f.Label)
		}
		if slices.Contains(ticketFields, models.CustomPrefix+f.Name) {
			ps.add(at+".name", "another field of the process is already called %q", f.Name)
		}
		ticketFields = append(ticketFields, models.CustomPrefix+f.Name)
	}

	in := d.Integration
	if !integrationName.MatchString(in.Name) {
		ps.add("integration.name", "%q must be %s", in.Name, integrationRE)
	}
	ps.text("integration.description", in.Description, maxLongText)
	ps.between("integration.sync_timeout_s", in.SyncTimeoutS, 1, 600)
	ps.between("integration.async_timeout_s", in.AsyncTimeoutS, 1, 604800)
	ps.between("integration.retry_limit", in.RetryLimit, 0, 100)
	ps.between("integration.retry_delay_s", in.RetryDelayS, 0, 86400)
	ps.between("integration.heartbeat_s", in.HeartbeatS, 0, 86400)

	names := map[string]bool{}
	for i, c := range d.Connections {
		at := fmt.Sprintf("connections[%d]", i)
		if ps.required(at+".name", c.Name) {
			ps.text(at+".name", c.Name, maxText)
		}
		if names[c.Name] {
			ps.add(at+".name", "another connection is already called %q", c.Name)
		}
		names[c.Name] = true
		ps.oneOf(at+".environment", c.Environment, models.Environments)
		if u, err := url.Parse(c.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.add(at+".endpoint_url", "%q must be an http:// or https:// address", c.EndpointURL)
		}
		ps.text(at+".endpoint_url", c.EndpointURL, maxText)
		ps.oneOf(at+".auth_type", c.AuthType, authTypes)
		ps.text(at+".auth_username", c.AuthUsername, maxText)
		ps.text(at+".oauth_token_url", c.OAuthTokenURL, maxText)
		ps.text(at+".oauth_client_id", c.OAuthClientID, maxText)
		ps.text(at+".oauth_scopes", c.OAuthScopes, maxText)
		for _, k := range slices.Sorted(maps.Keys(c.Variables)) {
			vp := fmt.Sprintf("%s.variables[%q]", at, k)
			if !propertyName.MatchString(k) { // the same rule as connection_variables.name
				ps.add(vp, "%q must start with a letter or _, then letters, digits or _ (at most 64)", k)
			}
			if len(c.Variables[k]) > maxVariable {
				ps.add(vp, "is longer than %d bytes", maxVariable)
			}
			ps.text(vp, c.Variables[k], maxVariable)
		}
	}

	msgs, types := map[string]bool{}, map[string]string{}
	for _, m := range d.Messages {
		msgs[m.Name] = true
		types[m.Name] = m.Type
	}
	seen := map[string]bool{}
	for i, m := range d.Messages {
		at := fmt.Sprintf("messages[%d]", i)
		if !messageName.MatchString(m.Name) {
			ps.add(at+".name", "%q must start with a letter, then letters, digits or _ (at most 64)", m.Name)
		}
		if seen[m.Name] {
			ps.add(at+".name", "another message is already called %q", m.Name)
		}
		seen[m.Name] = true
		ps.oneOf(at+".type", m.Type, messageTypes)
		ps.oneOf(at+".direction", m.Direction, directions)
		ps.oneOf(at+".trigger", m.Trigger, triggers)
		ps.oneOf(at+".bond_ownership", m.BondOwnership, ownerships)
		ps.oneOf(at+".set_bond_state", m.SetBondState, orEmpty(bondStates))
		ps.text(at+".path", m.Path, maxText)
		switch {
		case m.ReceiptMessage != "" && !msgs[m.ReceiptMessage]:
			ps.add(at+".receipt_message", "there is no message called %q in this document", m.ReceiptMessage)
		case m.Async && m.ReceiptMessage == "":
			ps.add(at+".receipt_message", "an asynchronous message needs its receipt message")
		}
		validateMessage3(ps, at, m, types, ticketFields)
		states := map[string]bool{}
		for j, s := range m.AllowedBondStates {
			sp := fmt.Sprintf("%s.allowed_bond_states[%d]", at, j)
			ps.oneOf(sp, s, bondStates)
			if states[s] {
				ps.add(sp, "%q is listed twice", s)
			}
			states[s] = true
		}
		props, tfs := map[string]bool{}, map[string]bool{}
		for j, f := range m.Fields {
			fp := fmt.Sprintf("%s.fields[%d]", at, j)
			ps.oneOf(fp+".ticket_field", f.TicketField, ticketFields) // a process field as custom.<name>
			if tfs[f.TicketField] {
				ps.add(fp+".ticket_field", "%q is mapped twice in this message", f.TicketField)
			}
			tfs[f.TicketField] = true
			if !propertyName.MatchString(f.Property) {
				ps.add(fp+".property", "%q must start with a letter or _, then letters, digits or _ (at most 64)", f.Property)
			}
			if props[f.Property] {
				ps.add(fp+".property", "%q is used twice in this message", f.Property)
			}
			props[f.Property] = true
			if len(f.ValueMap) > maxValueMaps {
				ps.add(fp+".value_map", "has %d entries; at most %d are allowed", len(f.ValueMap), maxValueMaps)
			}
			for _, k := range slices.Sorted(maps.Keys(f.ValueMap)) {
				ps.text(fmt.Sprintf("%s.value_map[%q]", fp, k), k, maxText)
				ps.text(fmt.Sprintf("%s.value_map[%q]", fp, k), f.ValueMap[k], maxText)
			}
			if len(f.InboundValueMap) > maxValueMaps {
				ps.add(fp+".inbound_value_map", "has %d entries; at most %d are allowed", len(f.InboundValueMap), maxValueMaps)
			}
			for _, k := range slices.Sorted(maps.Keys(f.InboundValueMap)) {
				ps.text(fmt.Sprintf("%s.inbound_value_map[%q]", fp, k), k, maxText)
				ps.text(fmt.Sprintf("%s.inbound_value_map[%q]", fp, k), f.InboundValueMap[k], maxText)
			}
			validateField3(ps, fp, f, ticketFields)
			switch {
			case f.Position < 0 || f.Position > 1000:
				ps.add(fp+".position", "%d is outside the allowed range 0 to 1000", f.Position)
			case j > 0 && f.Position < m.Fields[j-1].Position:
				ps.add(fp+".position", "%d comes after %d: a message's fields are listed in the order of their positions", f.Position, m.Fields[j-1].Position)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m.Scripts)) {
			sp := fmt.Sprintf("%s.scripts[%q]", at, k)
			point := script.Point(k)
			switch {
			case !point.Valid():
				ps.add(sp, "%q is not a script point", k)
			case len(m.Scripts[k]) > maxScript:
				ps.add(sp, "is longer than %d bytes", maxScript)
			case models.TextProblem(m.Scripts[k]) != "":
				ps.add(sp, "%s", models.TextProblem(m.Scripts[k]))
			default:
				if err := script.Compile(script.Script{Name: m.Name + " / " + point.Label(), Point: point, Source: m.Scripts[k]}); err != nil {
					ps.add(sp, "%s", err.Error())
				}
			}
		}
	}

	type scope struct {
		msg  string
		code int
	}
	actions := map[scope]bool{}
	for i, a := range d.ResponseActions {
		at := fmt.Sprintf("response_actions[%d]", i)
		if a.Message != "" && !msgs[a.Message] {
			ps.add(at+".message", "there is no message called %q in this document", a.Message)
		}
		ps.between(at+".status_code", a.StatusCode, 100, 599)
		if actions[scope{a.Message, a.StatusCode}] {
			ps.add(at+".status_code", "another response action already covers status %d for this message", a.StatusCode)
		}
		actions[scope{a.Message, a.StatusCode}] = true
		ps.oneOf(at+".set_integration_status", a.SetIntegrationStatus, orEmpty(statuses))
		ps.text(at+".description", a.Description, maxLongText)
		ps.oneOf(at+".set_transaction_state", a.SetTransactionState, txStates)
		if a.SetTransactionState != "" && a.Retry {
			ps.add(at+".set_transaction_state", "a retried answer leaves the transaction waiting for its next attempt; only an action without retry sets its state")
		}
		ps.oneOf(at+".set_process_state", a.SetProcessState, processStates)
		ps.oneOf(at+".set_integration_state", a.SetIntegrationState, intStates)
		ps.text(at+".bond_note", a.BondNote, 500)
	}
	validatePollers(d, ps)
	if len(ps.list) > 0 {
		return &Error{Problems: ps.list}
	}
	return nil
}

// validateMessage3 checks a message's format 3 settings: its response
// message (a message of type Response of the document, and none on a
// receipt or response) and the ticket fields trigger "fields" watches.
func validateMessage3(ps *problems, at string, m Message, types map[string]string, ticketFields []string) {
	answer := m.Type == string(models.MessageReceipt) || m.Type == string(models.MessageResponse)
	if r := m.ResponseMessage; r != "" {
		switch typ, ok := types[r]; {
		case !ok:
			ps.add(at+".response_message", "there is no message called %q in this document", r)
		case answer:
			ps.add(at+".response_message", "a %s is an answer itself and has no response message", m.Type)
		case typ != string(models.MessageResponse):
			ps.add(at+".response_message", "%q is a message of type %s; a response message is of type Response", r, typ)
		}
	}
	switch {
	case m.Trigger == string(models.TriggerFields) && len(m.TriggerFields) == 0:
		ps.add(at+".trigger_fields", `trigger "fields" needs at least one ticket field whose change sends the message`)
	case m.Trigger != string(models.TriggerFields) && len(m.TriggerFields) > 0:
		ps.add(at+".trigger_fields", `only a message with trigger "fields" watches fields; make it [] or the trigger "fields"`)
	}
	for j, f := range m.TriggerFields {
		fp := fmt.Sprintf("%s.trigger_fields[%d]", at, j)
		ps.oneOf(fp, f, ticketFields)
		if slices.Contains(m.TriggerFields[:j], f) {
			ps.add(fp, "%q is listed twice", f)
		}
	}
}

// validateField3 checks a field's format 3 settings with the Designer's own
// rules (models.ValidateField): its direction, its default (a value of the
// ticket field) and its value maps (ticket values of the field, and
// consistent both ways). An empty inbound map of a field both ways means the
// inverse of the outbound map, which is what the engine applies and checks.
func validateField3(ps *problems, fp string, f Field, ticketFields []string) {
	ps.oneOf(fp+".direction", f.Direction, directions)
	mf := models.Field{TicketField: f.TicketField, Property: f.Property, Direction: models.Direction(f.Direction),
		Default: f.Default, ValueMap: models.JSON[map[string]string]{V: f.ValueMap},
		InboundMap: models.JSON[map[string]string]{V: f.InboundValueMap}}
	if mf.Direction == models.Bidirectional {
		mf.InboundMap.V = mf.InboundValues()
	}
	err := models.ValidateField(&mf, nil, ticketFields)
	if err == nil {
		return
	}
	ve := err.(*models.ValidationError)
	if p, ok := ve.Fields["default"]; ok {
		ps.add(fp+".default", "%s", p)
	}
	if p, ok := ve.Fields["value_map"]; ok {
		ps.add(fp+".value_map", "%s", p)
	}
}
