package configpkg

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"unifi/models"
	"unifi/models/pg"
)

// What an import does to one record.
const (
	Create = "create"
	Change = "change"
	Keep   = "keep"
)

// Step is what an import does to one record: create it, change it (with
// what changes, "retry_limit: 3 -> 5"), or leave it alone.
type Step struct {
	Action  string
	Record  string // process, integration, connection, message, response action
	Name    string
	Details []string
}

// Plan is the dry run of an import. Digest names the document and the state
// of the database it was made against: Apply refuses when either differs.
type Plan struct {
	Integration string
	Steps       []Step
	// NeedCredentials are the connections that will stay inactive until
	// their secret and inbound account are given (a package has no secrets).
	NeedCredentials []string
	Digest          string
}

// Count is how many steps do action.
func (p *Plan) Count(action string) int {
	n := 0
	for _, s := range p.Steps {
		if s.Action == action {
			n++
		}
	}
	return n
}

// Plan is the dry run: what importing d would create, change or leave alone.
// It stores nothing.
func (s *Service) Plan(ctx context.Context, d *Document) (*Plan, error) {
	p, _, err := plan(s.db.WithContext(ctx), d)
	return p, err
}

// current is the configuration an import changes: as a document (empty
// when the integration is new), with the stored rows and the process the
// document names with its own fields.
type current struct {
	doc           *Document
	stored        *stored // nil when the integration is new
	process       *models.Process
	processFields map[string]models.ProcessField // by name; empty when the process is new
}

// plan compares d with what the database holds now.
func plan(tx *gorm.DB, d *Document) (*Plan, *current, error) {
	cur, st, err := load(tx, d.Integration.Name)
	if err != nil {
		return nil, nil, err
	}
	var proc *models.Process
	var pr models.Process
	if err := tx.Where("name = ?", d.Process.Name).Limit(1).Find(&pr).Error; err != nil {
		return nil, nil, fmt.Errorf("load process %q: %w", d.Process.Name, err)
	}
	if pr.ID != 0 {
		proc = &pr
	}
	p := &Plan{Integration: d.Integration.Name}
	step := func(record, name string, old, new any, exists bool) {
		switch {
		case !exists:
			p.Steps = append(p.Steps, Step{Action: Create, Record: record, Name: name})
		default:
			if details := diff(old, new); len(details) > 0 {
				p.Steps = append(p.Steps, Step{Action: Change, Record: record, Name: name, Details: details})
			} else {
				p.Steps = append(p.Steps, Step{Action: Keep, Record: record, Name: name})
			}
		}
	}
	var curProc Process
	procFields := map[string]models.ProcessField{}
	if proc != nil {
		if curProc, procFields, err = processDoc(tx, proc); err != nil {
			return nil, nil, err
		}
	}
	// The process's own fields are records of their own steps, after it.
	bare := func(p Process) Process { p.Fields = nil; return p }
	step("process", d.Process.Name, bare(curProc), bare(d.Process), proc != nil)
	compareRecords(p, step, "process field", curProc.Fields, d.Process.Fields, func(f ProcessField) string { return f.Name })
	if fieldOrder(curProc.Fields, d.Process.Fields) {
		p.Steps = append(p.Steps, Step{Action: Change, Record: "process field", Name: "(order)",
			Details: []string{"the order of the fields on the ticket form changes to the document's"}})
	}
	if cur == nil {
		cur = &Document{}
	}
	step("integration", d.Integration.Name, cur.Integration, d.Integration, st != nil)
	if st != nil && st.process.Name != d.Process.Name {
		// The process is not a key of the integration's record in the
		// document, so its change is told here.
		last := &p.Steps[len(p.Steps)-1]
		last.Action = Change
		last.Details = append(last.Details, fmt.Sprintf("process: %q -> %q", st.process.Name, d.Process.Name))
	}

	p.NeedCredentials, _ = compareRecords(p, step, "connection", cur.Connections, d.Connections, func(c Connection) string { return c.Name })
	compareRecords(p, step, "message", cur.Messages, d.Messages, func(m Message) string { return m.Name })
	compareRecords(p, step, "response action", cur.ResponseActions, d.ResponseActions, actionName)
	compareRecords(p, step, "poll processor", cur.PollProcessors, d.PollProcessors, func(x PollProcessor) string { return x.Name })
	compareRecords(p, step, "poller", cur.Pollers, d.Pollers, func(x Poller) string { return x.Name })
	p.Digest, err = digest(d, cur, curProc)
	if err != nil {
		return nil, nil, err
	}
	return p, &current{doc: cur, stored: st, process: proc, processFields: procFields}, nil
}

// fieldOrder reports whether the fields both lists have come in another
// order in doc than in cur.
func fieldOrder(cur, doc []ProcessField) bool {
	inDoc := map[string]bool{}
	for _, f := range doc {
		inDoc[f.Name] = true
	}
	var a, b []string
	for _, f := range cur {
		if inDoc[f.Name] {
			a = append(a, f.Name)
		}
	}
	have := map[string]bool{}
	for _, n := range a {
		have[n] = true
	}
	for _, f := range doc {
		if have[f.Name] {
			b = append(b, f.Name)
		}
	}
	return !slices.Equal(a, b)
}

// compareRecords adds a step for each record of the document, matched by
// name with the current records, then a keep step for each current record the
// document leaves out: an import never deletes (transactions refer to
// messages). It returns the names of the records to create.
func compareRecords[T any](p *Plan, step func(record, name string, old, new any, exists bool), record string,
	cur, doc []T, name func(T) string) (created []string, leftOut []string) {
	byName := map[string]T{}
	for _, x := range cur {
		byName[name(x)] = x
	}
	for _, x := range doc {
		old, ok := byName[name(x)]
		step(record, name(x), old, x, ok)
		if !ok {
			created = append(created, name(x))
		}
		delete(byName, name(x))
	}
	leftOut = slices.Sorted(maps.Keys(byName))
	for _, n := range leftOut {
		p.Steps = append(p.Steps, Step{Action: Keep, Record: record, Name: n, Details: []string{"not in the document; left as it is"}})
	}
	return created, leftOut
}

func actionName(a ResponseAction) string {
	if a.Message == "" {
		return fmt.Sprintf("%d (every message)", a.StatusCode)
	}
	return fmt.Sprintf("%d (%s)", a.StatusCode, a.Message)
}

// digest names the document together with the configuration it would
// change, so that Apply can tell that neither moved since the dry run.
func digest(d, cur *Document, proc Process) (string, error) {
	h := sha256.New()
	for _, x := range []any{d, cur, proc} {
		b, err := json.Marshal(x)
		if err != nil {
			return "", fmt.Errorf("digest: %w", err)
		}
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}

// diff lists the keys whose values differ between two records of the same
// type, in the document's key order: "retry_limit: 3 -> 5". A message's
// fields are compared as one list.
func diff(old, new any) []string {
	t := reflect.TypeOf(new)
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(new)
	var out []string
	for i := range t.NumField() {
		key := strings.Split(t.Field(i).Tag.Get("json"), ",")[0]
		a, _ := json.Marshal(ov.Field(i).Interface())
		b, _ := json.Marshal(nv.Field(i).Interface())
		if bytes.Equal(a, b) {
			continue
		}
		if key == "fields" {
			out = append(out, "fields: the mapping changes (fields, value maps or their order)")
			continue
		}
		out = append(out, fmt.Sprintf("%s: %s -> %s", key, short(a), short(b)))
	}
	return out
}

func short(b []byte) string {
	if len(b) > 80 {
		return string(b[:77]) + "..."
	}
	return string(b)
}

// Apply imports d in one database transaction: all of it or nothing. It
// refuses with a conflict when the plan the user saw (digest) is no longer
// what would happen. New connections are created inactive and without
// secrets; SetCredentials gives them. Returns the integration.
func (s *Service) Apply(ctx context.Context, actor models.Actor, d *Document, digest string) (*models.Integration, error) {
	if digest == "" {
		return nil, &models.ConflictError{Reason: "The import has no dry run to check against; run the dry run first."}
	}
	return s.apply(ctx, actor, d, digest)
}

func (s *Service) apply(ctx context.Context, actor models.Actor, d *Document, digest string) (*models.Integration, error) {
	var out *models.Integration
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = applyTx(tx, actor, d, digest)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("import package %q: %w", d.Integration.Name, err)
	}
	return out, nil
}

// applyTx is Apply inside the caller's database transaction. An empty digest
// applies whatever the plan is (callers that show no plan: templates).
func applyTx(tx *gorm.DB, actor models.Actor, d *Document, digest string) (*models.Integration, error) {
	// Lock the integration (when it exists) so the plan checked below stays
	// true until the import commits.
	if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("name = ?", d.Integration.Name).
		Limit(1).Find(&models.Integration{}).Error; err != nil {
		return nil, fmt.Errorf("lock integration: %w", err)
	}
	p, cur, err := plan(tx, d)
	if err != nil {
		return nil, err
	}
	if digest != "" && p.Digest != digest {
		return nil, &models.ConflictError{Reason: "The configuration changed since the dry run (or the document is not the one shown). Nothing was imported; run the dry run again and check the plan."}
	}
	in, err := apply(tx, d, cur)
	if err != nil {
		return nil, err
	}
	after := map[string]any{"created": p.Count(Create), "changed": p.Count(Change), "kept": p.Count(Keep), "digest": p.Digest}
	var changes []string
	for _, s := range p.Steps {
		if s.Action != Keep {
			changes = append(changes, fmt.Sprintf("%s %s %s", s.Action, s.Record, s.Name))
		}
	}
	after["steps"] = changes
	if err := pg.LogActivity(tx, actor, "import package", "integration", in.ID, in.Name, nil, after); err != nil {
		return nil, err
	}
	return in, nil
}

// ApplyPlanned imports d without a dry run shown to anyone (tests, tools).
func (s *Service) ApplyPlanned(ctx context.Context, actor models.Actor, d *Document) (*models.Integration, error) {
	return s.apply(ctx, actor, d, "")
}

var now = gorm.Expr("now()")

// same reports whether two records of a document are equal.
func same(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// apply writes what differs between d and cur; unchanged records are not
// written (each write is a new configuration version for every process).
func apply(tx *gorm.DB, d *Document, cur *current) (*models.Integration, error) {
	st, proc := cur.stored, cur.process
	dp := d.Process
	if proc == nil {
		proc = &models.Process{Name: dp.Name, TicketTable: dp.TicketTable, ReferenceField: dp.ReferenceField, NumberPrefix: dp.NumberPrefix}
		if err := tx.Create(proc).Error; err != nil {
			return nil, fmt.Errorf("create process %q: %w", dp.Name, err)
		}
	} else if proc.TicketTable != dp.TicketTable || proc.ReferenceField != dp.ReferenceField || proc.NumberPrefix != dp.NumberPrefix {
		if err := tx.Model(proc).Updates(map[string]any{"ticket_table": dp.TicketTable, "reference_field": dp.ReferenceField,
			"number_prefix": dp.NumberPrefix}).Error; err != nil {
			return nil, fmt.Errorf("change process %q: %w", dp.Name, err)
		}
	}
	if err := applyProcessFields(tx, proc.ID, dp.Fields, cur.processFields); err != nil {
		return nil, err
	}
	di := d.Integration
	cols := map[string]any{"description": di.Description, "process_id": proc.ID, "sync_timeout_s": di.SyncTimeoutS,
		"async_timeout_s": di.AsyncTimeoutS, "retry_limit": di.RetryLimit, "retry_delay_s": di.RetryDelayS,
		"attach_logs": di.AttachLogs, "heartbeat_s": di.HeartbeatS}
	var in models.Integration
	if st == nil {
		in = models.Integration{Name: di.Name, Description: di.Description, ProcessID: proc.ID, State: models.IntegrationActive,
			Status: models.StatusAwaiting, SyncTimeoutS: di.SyncTimeoutS, AsyncTimeoutS: di.AsyncTimeoutS,
			RetryLimit: di.RetryLimit, RetryDelayS: di.RetryDelayS, AttachLogs: di.AttachLogs, HeartbeatS: di.HeartbeatS}
		if err := tx.Create(&in).Error; err != nil {
			if pg.IsUniqueViolation(err) { // created by someone else since the plan was made
				return nil, &models.ConflictError{Reason: fmt.Sprintf("An integration called %q was created meanwhile. Nothing was imported; run the dry run again.", di.Name)}
			}
			return nil, fmt.Errorf("create integration: %w", err)
		}
		st = &stored{connections: map[string]models.Connection{}, messages: map[string]models.Message{},
			actions: map[actionKey]models.ResponseAction{}}
	} else if in = st.integration; !same(cur.doc.Integration, di) || in.ProcessID != proc.ID {
		cols["updated_at"] = now
		if err := tx.Model(&in).Updates(cols).Error; err != nil {
			return nil, fmt.Errorf("change integration: %w", err)
		}
	}
	old := map[string]any{}
	for _, c := range cur.doc.Connections {
		old["c:"+c.Name] = c
	}
	for _, m := range cur.doc.Messages {
		old["m:"+m.Name] = m
	}
	for _, a := range cur.doc.ResponseActions {
		old["a:"+actionName(a)] = a
	}
	for _, c := range d.Connections {
		if o, ok := old["c:"+c.Name]; ok && same(o, c) {
			continue
		}
		if err := applyConnection(tx, in.ID, c, st); err != nil {
			return nil, err
		}
	}
	var changed []Message
	for _, m := range d.Messages {
		if o, ok := old["m:"+m.Name]; !ok || !same(o, m) {
			changed = append(changed, m)
		}
	}
	ids, err := applyMessages(tx, in.ID, changed, st)
	if err != nil {
		return nil, err
	}
	for _, a := range d.ResponseActions {
		if o, ok := old["a:"+actionName(a)]; ok && same(o, a) {
			continue
		}
		if err := applyAction(tx, in.ID, a, ids, st); err != nil {
			return nil, err
		}
	}
	if err := applyPollers(tx, in.ID, d); err != nil {
		return nil, err
	}
	return &in, nil
}

// applyProcessFields creates the document's process fields the process does
// not have and changes those that differ; each takes its place in the
// document's order (position = index). A field the document leaves out is
// kept: tickets hold its values and messages may map it.
func applyProcessFields(tx *gorm.DB, processID int64, fields []ProcessField, cur map[string]models.ProcessField) error {
	for i, f := range fields {
		choices := models.JSON[[]string]{V: nonNil(f.Choices)}
		old, ok := cur[f.Name]
		if !ok {
			row := models.ProcessField{ProcessID: processID, Name: f.Name, Label: f.Label, Type: models.FieldType(f.Type),
				Choices: choices, Required: f.Required, Position: i, Version: 1}
			if err := tx.Create(&row).Error; err != nil {
				return fmt.Errorf("create process field %q: %w", f.Name, err)
			}
			continue
		}
		if old.Label == f.Label && string(old.Type) == f.Type && old.Required == f.Required &&
			slices.Equal(old.Choices.V, f.Choices) && old.Position == i {
			continue
		}
		// A new version, like an edit in the Designer: a form opened on
		// the old one is refused (409) rather than undoing the import.
		if err := tx.Model(&old).Updates(map[string]any{"label": f.Label, "type": f.Type, "choices": choices,
			"required": f.Required, "position": i, "version": gorm.Expr("version + 1"), "updated_at": now}).Error; err != nil {
			return fmt.Errorf("change process field %q: %w", f.Name, err)
		}
	}
	return nil
}

func applyConnection(tx *gorm.DB, integrationID int64, c Connection, st *stored) error {
	old, ok := st.connections[c.Name]
	if !ok {
		// Inactive and without secrets until SetCredentials gives them.
		row := models.Connection{IntegrationID: integrationID, Name: c.Name, Environment: c.Environment,
			EndpointURL: c.EndpointURL, AuthType: models.AuthType(c.AuthType), AuthUsername: c.AuthUsername,
			OAuthTokenURL: c.OAuthTokenURL, OAuthClientID: c.OAuthClientID, OAuthScopes: c.OAuthScopes}
		if err := tx.Create(&row).Error; err != nil {
			return fmt.Errorf("create connection %q: %w", c.Name, err)
		}
		return applyVariables(tx, row.ID, c)
	}
	err := tx.Model(&old).Updates(map[string]any{"environment": c.Environment, "endpoint_url": c.EndpointURL,
		"auth_type": c.AuthType, "auth_username": c.AuthUsername, "oauth_token_url": c.OAuthTokenURL,
		"oauth_client_id": c.OAuthClientID, "oauth_scopes": c.OAuthScopes, "updated_at": now}).Error
	if err != nil {
		return fmt.Errorf("change connection %q: %w", c.Name, err)
	}
	return applyVariables(tx, old.ID, c)
}

// applyVariables makes the connection's variables the document's.
func applyVariables(tx *gorm.DB, connectionID int64, c Connection) error {
	if err := tx.Where("connection_id = ?", connectionID).Delete(&models.ConnectionVariable{}).Error; err != nil {
		return fmt.Errorf("replace variables of connection %q: %w", c.Name, err)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Variables)) {
		v := models.ConnectionVariable{ConnectionID: connectionID, Name: name, Value: c.Variables[name]}
		if err := tx.Create(&v).Error; err != nil {
			return fmt.Errorf("create variable %s of connection %q: %w", name, c.Name, err)
		}
	}
	return nil
}

// applyScripts makes the message's scripts the document's: a changed source
// is a new version of its script (every process compiles it again), an
// unchanged one is left as it is.
func applyScripts(tx *gorm.DB, messageID int64, m Message) error {
	var cur []models.MessageScript
	if err := tx.Where("message_id = ?", messageID).Find(&cur).Error; err != nil {
		return fmt.Errorf("scripts of message %q: %w", m.Name, err)
	}
	for _, s := range cur {
		src, keep := m.Scripts[s.Point]
		switch {
		case !keep:
			if err := tx.Delete(&s).Error; err != nil {
				return fmt.Errorf("remove script %s of message %q: %w", s.Point, m.Name, err)
			}
		case src != s.Source:
			if err := tx.Model(&s).Updates(map[string]any{"source": src, "version": s.Version + 1, "updated_at": now}).Error; err != nil {
				return fmt.Errorf("change script %s of message %q: %w", s.Point, m.Name, err)
			}
		}
	}
	for _, point := range slices.Sorted(maps.Keys(m.Scripts)) {
		if slices.ContainsFunc(cur, func(s models.MessageScript) bool { return s.Point == point }) {
			continue
		}
		s := models.MessageScript{MessageID: messageID, Point: point, Source: m.Scripts[point], Version: 1}
		if err := tx.Create(&s).Error; err != nil {
			return fmt.Errorf("create script %s of message %q: %w", point, m.Name, err)
		}
	}
	return nil
}

// applyMessages creates and changes messages in two passes, because a
// message's receipt message may come later in the document (or be new):
// first every message without its receipt, then the receipts.
func applyMessages(tx *gorm.DB, integrationID int64, msgs []Message, st *stored) (map[string]int64, error) {
	ids := map[string]int64{}
	for name, m := range st.messages {
		ids[name] = m.ID
	}
	for _, m := range msgs {
		var setState *models.BondState
		if m.SetBondState != "" {
			s := models.BondState(m.SetBondState)
			setState = &s
		}
		states := make([]models.BondState, len(m.AllowedBondStates))
		for i, s := range m.AllowedBondStates {
			states[i] = models.BondState(s)
		}
		row := models.Message{IntegrationID: integrationID, Name: m.Name, Type: models.MessageType(m.Type),
			Direction: models.Direction(m.Direction), Path: m.Path, Trigger: models.Trigger(m.Trigger),
			TriggerFields: models.JSON[[]string]{V: nonNil(m.TriggerFields)}, BondOwnership: models.Ownership(m.BondOwnership),
			AllowedBondStates: models.JSON[[]models.BondState]{V: states}, SetBondState: setState}
		if old, ok := st.messages[m.Name]; ok {
			row.ID = old.ID
			err := tx.Model(&old).Updates(map[string]any{"type": row.Type, "direction": row.Direction, "path": row.Path,
				"trigger": row.Trigger, "trigger_fields": row.TriggerFields, "bond_ownership": row.BondOwnership,
				"allowed_bond_states": row.AllowedBondStates, "set_bond_state": row.SetBondState, "updated_at": now}).Error
			if err != nil {
				return nil, fmt.Errorf("change message %q: %w", m.Name, err)
			}
			if err := tx.Where("message_id = ?", old.ID).Delete(&models.Field{}).Error; err != nil {
				return nil, fmt.Errorf("replace fields of message %q: %w", m.Name, err)
			}
		} else if err := tx.Create(&row).Error; err != nil {
			return nil, fmt.Errorf("create message %q: %w", m.Name, err)
		}
		ids[m.Name] = row.ID
		if err := applyScripts(tx, row.ID, m); err != nil {
			return nil, err
		}
		for _, f := range m.Fields {
			// Created in list order, so fields of equal position keep it (the
			// engine and export order by position, then id).
			fr := models.Field{MessageID: row.ID, TicketField: f.TicketField, Property: f.Property,
				Direction: models.Direction(f.Direction), Required: f.Required, Default: f.Default, Position: f.Position,
				ValueMap:   models.JSON[map[string]string]{V: nonNilMap(f.ValueMap)},
				InboundMap: models.JSON[map[string]string]{V: nonNilMap(f.InboundValueMap)}}
			if err := tx.Create(&fr).Error; err != nil {
				return nil, fmt.Errorf("create field %q of message %q: %w", f.Property, m.Name, err)
			}
		}
	}
	idOf := func(name string) *int64 {
		if name == "" {
			return nil
		}
		id := ids[name]
		return &id
	}
	for _, m := range msgs {
		if err := tx.Model(&models.Message{}).Where("id = ?", ids[m.Name]).Updates(map[string]any{"async": m.Async,
			"receipt_message_id": idOf(m.ReceiptMessage), "response_message_id": idOf(m.ResponseMessage)}).Error; err != nil {
			return nil, fmt.Errorf("set receipt and response of message %q: %w", m.Name, err)
		}
	}
	return ids, nil
}

func applyAction(tx *gorm.DB, integrationID int64, a ResponseAction, ids map[string]int64, st *stored) error {
	var msgID *int64
	if a.Message != "" {
		id := ids[a.Message]
		msgID = &id
	}
	row := models.ResponseAction{IntegrationID: &integrationID, MessageID: msgID, StatusCode: a.StatusCode, Retry: a.Retry,
		BondNote: a.BondNote, Description: a.Description}
	// validate allowed only these names, so the parses cannot fail.
	if a.SetTransactionState != "" {
		s, _ := models.ParseTransportState(a.SetTransactionState)
		row.SetTransactionState = &s
	}
	if a.SetProcessState != "" {
		s, _ := models.ParseProcessState(a.SetProcessState)
		row.SetProcessState = &s
	}
	if a.SetIntegrationStatus != "" {
		s := models.IntegrationStatus(a.SetIntegrationStatus)
		row.SetIntegrationStatus = &s
	}
	if a.SetIntegrationState != "" {
		s := models.IntegrationState(a.SetIntegrationState)
		row.SetIntegrationState = &s
	}
	if old, ok := st.actions[actionKey{a.Message, a.StatusCode}]; ok {
		if err := tx.Model(&old).Updates(map[string]any{"retry": a.Retry, "set_transaction_state": row.SetTransactionState,
			"set_process_state": row.SetProcessState, "set_integration_status": row.SetIntegrationStatus,
			"set_integration_state": row.SetIntegrationState, "bond_note": a.BondNote, "description": a.Description}).Error; err != nil {
			return fmt.Errorf("change response action %s: %w", actionName(a), err)
		}
		return nil
	}
	if err := tx.Create(&row).Error; err != nil {
		return fmt.Errorf("create response action %s: %w", actionName(a), err)
	}
	return nil
}
