package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/queue"
)

// TicketInput is what a person gives when creating or editing a ticket.
type TicketInput struct {
	ProcessID        int64 // 0: the first process (Incident)
	ShortDescription string
	Description      string
	State            string // "" means New on create
	Priority         int    // 0 means the default (4) on create
	Urgency          int    // 0 means the default (3) on create
	Impact           int    // 0 means the default (3) on create
	AssignmentGroup  string
	WorkNotes        string
	// Custom holds text for the process's own fields, by name; a field not
	// in it keeps its value (models.ValidateCustom).
	Custom map[string]string
}

// TicketInputOf returns the input that leaves t as it is; callers change
// fields of it for a partial update.
func TicketInputOf(t *models.Ticket) TicketInput {
	return TicketInput{ProcessID: t.ProcessID, ShortDescription: t.ShortDescription, Description: t.Description,
		State: t.State, Priority: t.Priority, Urgency: t.Urgency, Impact: t.Impact,
		AssignmentGroup: t.AssignmentGroup, WorkNotes: t.WorkNotes}
}

// ProcessFields returns the own fields of process id in form order; id 0 is
// the first process (Incident), as on create.
func (s *Store) ProcessFields(ctx context.Context, processID int64) ([]models.ProcessField, error) {
	var defs []models.ProcessField
	var rb pg.ReadBatch
	queueProcessFields(&rb, &defs, createProcessSQL, processID)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("process fields of process %d: %w", processID, err)
	}
	return defs, nil
}

// A ticket change reads what it needs of its process's configuration (the
// process's own fields, the outbound messages its change may fire) in one
// round trip before its database transaction. Read inside it, they were two
// of the ten round trips of UpdateTicket, taken while the ticket's bonds were
// locked; the latency bench times UpdateTicket under load, where each round
// trip waits for a core (docs/engine.md). The configuration may change
// between that read and the transaction: the change then works with the
// configuration of a moment before, as the engine's cached one does.

// createProcessSQL is the process a create works in: $1, or the first
// (Incident) when $1 is 0.
const createProcessSQL = `coalesce(nullif($1::bigint, 0), (SELECT min(id) FROM processes))`

// ticketProcessSQL is the process of ticket $1.
const ticketProcessSQL = `(SELECT process_id FROM tickets WHERE id = $1)`

// processFieldsSQL reads the own fields of the process the SQL expression %s
// names, in form order.
const processFieldsSQL = `SELECT id, process_id, name, label, type, choices, required, position, version, created_at, updated_at
	FROM process_fields WHERE process_id = %s ORDER BY position, id`

func queueProcessFields(rb *pg.ReadBatch, dst *[]models.ProcessField, process string, arg int64) {
	pg.QueueRows(rb, dst, fmt.Sprintf(processFieldsSQL, process), arg)
}

// changeConfig is the configuration a ticket change works with.
type changeConfig struct {
	fields  []models.ProcessField // the process's own fields, in form order
	targets []outboundTarget      // every outbound message of the process (enqueueOutbound keeps those that fire)
}

// readChangeConfig reads the configuration of the process the SQL
// expression process names (createProcessSQL, ticketProcessSQL) with arg.
func (s *Store) readChangeConfig(ctx context.Context, process string, arg int64) (*changeConfig, error) {
	var c changeConfig
	var rb pg.ReadBatch
	queueProcessFields(&rb, &c.fields, process, arg)
	pg.QueueRows(&rb, &c.targets, fmt.Sprintf(outboundTargetsSQL, process), arg)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("read the process's fields and outbound messages: %w", err)
	}
	return &c, nil
}

// applyCustom validates in's custom values against the process's own
// fields and sets them on t.
func applyCustom(defs []models.ProcessField, t *models.Ticket, in TicketInput) error {
	custom, err := models.ValidateCustom(defs, t.Custom.V, in.Custom)
	if err != nil {
		return err
	}
	t.Custom.V = custom
	return nil
}

func (in *TicketInput) normalize() {
	in.ShortDescription = strings.TrimSpace(in.ShortDescription)
	in.AssignmentGroup = strings.TrimSpace(in.AssignmentGroup)
	if in.State == "" {
		in.State = "New"
	}
	if in.Priority == 0 {
		in.Priority = 4
	}
	if in.Urgency == 0 {
		in.Urgency = 3
	}
	if in.Impact == 0 {
		in.Impact = 3
	}
}

func (in TicketInput) validate() error {
	v := &models.ValidationError{}
	for field, text := range map[string]string{"short_description": in.ShortDescription, "description": in.Description,
		"state": in.State, "assignment_group": in.AssignmentGroup, "work_notes": in.WorkNotes} {
		if msg := models.TextProblem(text); msg != "" {
			v.Add(field, msg)
		}
	}
	switch n := utf8.RuneCountInString(in.ShortDescription); {
	case n == 0:
		v.Add("short_description", "Give a short description of the incident.")
	case n > 160:
		v.Add("short_description", fmt.Sprintf("Keep the short description to 160 characters (it has %d).", n))
	}
	if utf8.RuneCountInString(in.Description) > 32000 {
		v.Add("description", "Keep the description to 32,000 characters.")
	}
	if utf8.RuneCountInString(in.WorkNotes) > 32000 {
		v.Add("work_notes", "Keep the work notes to 32,000 characters.")
	}
	if utf8.RuneCountInString(in.AssignmentGroup) > 100 {
		v.Add("assignment_group", "Keep the assignment group to 100 characters.")
	}
	validState := false
	for _, s := range models.TicketStates {
		if in.State == s {
			validState = true
		}
	}
	if !validState {
		v.Add("state", fmt.Sprintf("Choose one of %s (got %q).", strings.Join(models.TicketStates, ", "), in.State))
	}
	if in.Priority < 1 || in.Priority > 5 {
		v.Add("priority", "Choose a priority from 1 (Critical) to 5 (Planning).")
	}
	if in.Urgency < 1 || in.Urgency > 3 {
		v.Add("urgency", "Choose an urgency from 1 (High) to 3 (Low).")
	}
	if in.Impact < 1 || in.Impact > 3 {
		v.Add("impact", "Choose an impact from 1 (High) to 3 (Low).")
	}
	return v.Err()
}

func (in TicketInput) apply(t *models.Ticket) {
	t.ShortDescription, t.Description, t.State = in.ShortDescription, in.Description, in.State
	t.Priority, t.Urgency, t.Impact = in.Priority, in.Urgency, in.Impact
	t.AssignmentGroup, t.WorkNotes = in.AssignmentGroup, in.WorkNotes
}

func ticketSnapshot(t *models.Ticket) map[string]any {
	return map[string]any{"short_description": t.ShortDescription, "state": t.State, "priority": t.Priority,
		"urgency": t.Urgency, "impact": t.Impact, "assignment_group": t.AssignmentGroup, "custom": t.Custom.V,
		"version": t.Version}
}

// CreateTicket creates a ticket and, in the same database transaction, the
// outbound transactions its creation triggers.
func (s *Store) CreateTicket(ctx context.Context, actor models.Actor, in TicketInput) (*models.Ticket, error) {
	if err := models.RoleMay(actor.Role, models.ActionWorkTickets); err != nil {
		return nil, err
	}
	in.normalize()
	if err := in.validate(); err != nil {
		return nil, err
	}
	t := &models.Ticket{Version: 1}
	in.apply(t)
	cfg, err := s.readChangeConfig(ctx, createProcessSQL, in.ProcessID)
	if err != nil {
		return nil, fmt.Errorf("create ticket: %w", err)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var p models.Process
		q := tx.Order("id")
		if in.ProcessID != 0 {
			q = q.Where("id = ?", in.ProcessID)
		}
		if err := q.Take(&p).Error; err != nil {
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return &models.ValidationError{Fields: map[string]string{"process": "There is no such process; an admin must set one up first."}}
			}
			return err
		}
		var n int64
		if err := tx.Raw("SELECT nextval('ticket_number_seq')").Scan(&n).Error; err != nil {
			return err
		}
		t.ProcessID, t.Number = p.ID, fmt.Sprintf("%s%07d", p.NumberPrefix, n)
		if err := applyCustom(cfg.fields, t, in); err != nil {
			return err
		}
		// Every field gets the create's stamp, custom values included.
		models.StampChanges(nil, t, s.now(), actor.Name)
		if actor.UserID != 0 {
			t.CreatedByID = &actor.UserID
		}
		if err := tx.Create(t).Error; err != nil {
			return err
		}
		if err := s.enqueueOutbound(tx, cfg.targets, t, nil, models.TicketChange{Event: models.TriggerCreate}); err != nil {
			return err
		}
		return pg.LogActivity(tx, actor, "create ticket", "ticket", t.ID, t.Number, nil, ticketSnapshot(t))
	})
	if err != nil {
		return nil, fmt.Errorf("create ticket: %w", err)
	}
	return t, nil
}

// UpdateTicket changes ticket id when it is still at version (optimistic
// locking) and, in the same database transaction, creates the outbound
// transactions the change triggers: "resolve" when it moves to Resolved,
// "update" otherwise.
func (s *Store) UpdateTicket(ctx context.Context, actor models.Actor, id int64, version int, in TicketInput) (*models.Ticket, error) {
	if err := models.RoleMay(actor.Role, models.ActionWorkTickets); err != nil {
		return nil, err
	}
	in.normalize()
	if err := in.validate(); err != nil {
		return nil, err
	}
	cfg, err := s.readChangeConfig(ctx, ticketProcessSQL, id)
	if err != nil {
		return nil, fmt.Errorf("update ticket %d: %w", id, err)
	}
	var t models.Ticket
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Raw(lockTicketSQL, id, id).Scan(&t)
		if res.Error != nil {
			return fmt.Errorf("lock ticket %d and its bonds: %w", id, res.Error)
		}
		if res.RowsAffected == 0 {
			return pg.NotFound(gorm.ErrRecordNotFound, "find ticket")
		}
		if t.Version != version {
			return &models.ConflictError{Reason: fmt.Sprintf("This ticket was changed by someone else meanwhile (it is at version %d, you edited version %d). Reload it and make your change again.", t.Version, version)}
		}
		before, old := ticketSnapshot(&t), t
		change := models.TicketChange{Event: models.TriggerUpdate}
		if in.State == "Resolved" && t.State != "Resolved" {
			change.Event = models.TriggerResolve
		}
		in.apply(&t)
		if err := applyCustom(cfg.fields, &t, in); err != nil {
			return err
		}
		change.Changed = models.ChangedFields(&old, &t)
		t.Version++
		// Each changed field gets this change's stamp: the application's
		// clock is the sender's time the other side compares (docs/domain.md,
		// "Concurrent edits converge").
		models.StampChanges(&old, &t, s.now(), actor.Name)
		res = tx.Model(&models.Ticket{}).Where("id = ? AND version = ?", id, version).Updates(map[string]any{
			"short_description": t.ShortDescription, "description": t.Description, "state": t.State,
			"priority": t.Priority, "urgency": t.Urgency, "impact": t.Impact,
			"assignment_group": t.AssignmentGroup, "work_notes": t.WorkNotes, "custom": t.Custom, "version": t.Version,
			"field_stamps": t.FieldStamps, "updated_at": gorm.Expr("now()"),
		})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return &models.ConflictError{Reason: "This ticket was changed by someone else meanwhile. Reload it and make your change again."}
		}
		if err := s.enqueueOutbound(tx, cfg.targets, &t, &old, change); err != nil {
			return err
		}
		return pg.LogActivity(tx, actor, "update ticket", "ticket", t.ID, t.Number, before, ticketSnapshot(&t))
	})
	if err != nil {
		return nil, fmt.Errorf("update ticket %d: %w", id, err)
	}
	return &t, nil
}

// lockTicketSQL locks the bonds of ticket ? in id order, then the ticket,
// and reads the ticket: one round trip for what were two. Lock order is
// bonds, then the ticket, as in inbound processing, so a UI edit and an
// inbound update of the same ticket cannot deadlock: the bonds are locked by
// a materialized CTE whose count is a one-time filter, evaluated before the
// ticket's row is read and locked (EXPLAIN: InitPlan, One-Time Filter, under
// the ticket's LockRows). The ticket lock is NO KEY UPDATE: a receipt that
// moves a transaction of this ticket twice in its database transaction
// re-checks the foreign key to tickets (FOR KEY SHARE), which FOR UPDATE
// would block while this transaction waits for that receipt's bond: a
// deadlock the crash test found under load.
const lockTicketSQL = `WITH b AS MATERIALIZED (SELECT id FROM bonds WHERE ticket_id = ? ORDER BY id FOR UPDATE)
	SELECT t.* FROM tickets t WHERE t.id = ? AND (SELECT count(*) FROM b) >= 0 FOR NO KEY UPDATE OF t`

// GetTicket returns the ticket with id.
func (s *Store) GetTicket(ctx context.Context, id int64) (*models.Ticket, error) {
	var t models.Ticket
	if err := s.db.WithContext(ctx).Take(&t, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get ticket %d", id))
	}
	return &t, nil
}

// GetTicketByNumber returns the ticket numbered number (INC0000001).
func (s *Store) GetTicketByNumber(ctx context.Context, number string) (*models.Ticket, error) {
	var t models.Ticket
	if err := s.db.WithContext(ctx).Where("number = ?", number).Take(&t).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get ticket %s", number))
	}
	return &t, nil
}

// outboundTargetsSQL reads every outbound message of an Active or Paused
// integration with an active connection of the process the SQL expression
// %s names, with its fields, scripts and connection variables, in the
// columns of outboundTarget.
const outboundTargetsSQL = `SELECT i.id AS integration_id, i.state AS integration_state, i.attach_logs,
			m.id AS message_id, m.name AS message_name, m.trigger, m.trigger_fields,
			(SELECT coalesce(json_agg(json_build_object('ticket_field', f.ticket_field, 'property', f.property,
				'direction', f.direction, 'default_value', f.default_value, 'required', f.required,
				'value_map', f.value_map) ORDER BY f.position, f.id), '[]') FROM fields f WHERE f.message_id = m.id) AS fields,
			(SELECT coalesce(json_agg(json_build_object('id', ms.id, 'point', ms.point, 'source', ms.source,
				'version', ms.version)), '[]') FROM message_scripts ms
				WHERE ms.message_id = m.id AND ms.point IN ('source_to_stage', 'trigger_condition')) AS scripts,
			(SELECT coalesce(json_object_agg(v.name, v.value), '{}') FROM connection_variables v
				JOIN connections c ON c.id = v.connection_id WHERE c.integration_id = i.id AND c.active
				  AND EXISTS (SELECT 1 FROM message_scripts ms WHERE ms.message_id = m.id)) AS vars
		FROM integrations i
		JOIN messages m ON m.integration_id = i.id
		WHERE i.process_id = %s AND i.state IN ('` + string(models.IntegrationActive) + `', '` + string(models.IntegrationPaused) + `')
		  AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = i.id AND c.active)
		  AND m.direction IN ('` + string(models.Outbound) + `', '` + string(models.Bidirectional) + `')
		ORDER BY i.id, m.id`

// outboundTarget is one outbound message a ticket change sends.
type outboundTarget struct {
	IntegrationID    int64
	IntegrationState models.IntegrationState
	AttachLogs       bool
	MessageID        int64
	MessageName      string
	Trigger          models.Trigger
	TriggerFields    models.JSON[[]string]
	Fields           models.JSON[[]outboundField]   // the message's fields, in order
	Scripts          models.JSON[[]outboundScript]  // its Source to Stage and trigger condition scripts
	Vars             models.JSON[map[string]string] // the active connection's variables, when it has scripts
}

// outboundField is what mapping a ticket onto a message needs of a Field.
type outboundField struct {
	TicketField string            `json:"ticket_field"`
	Property    string            `json:"property"`
	Direction   models.Direction  `json:"direction"`
	Default     string            `json:"default_value"`
	Required    bool              `json:"required"`
	ValueMap    map[string]string `json:"value_map"`
}

// fields turns the target's fields into Fields for MapOutbound.
func (tg *outboundTarget) fields() []models.Field {
	out := make([]models.Field, len(tg.Fields.V))
	for i, f := range tg.Fields.V {
		out[i] = models.Field{TicketField: f.TicketField, Property: f.Property, Direction: f.Direction, Default: f.Default,
			Required: f.Required, ValueMap: models.JSON[map[string]string]{V: f.ValueMap}}
	}
	return out
}

// enqueueOutbound creates, for every Active or Paused integration of the
// ticket's process that has an active connection, one transaction per
// outbound message of targets (readChangeConfig) the change fires
// (models.Fires), on the ticket's bond (created Pending when missing). It
// runs inside the ticket change's transaction: each message that fires
// takes two statements (the bond, then the transaction with its Stage and
// log line), with the wire stamps of the ticket's fields and the old values of
// those this change made (before; nil on a create). A required field the
// ticket leaves empty refuses the change.
//
// A message's Advanced trigger condition script can skip it, and its Source
// to Stage script refines the Stage (outbound_script.go).
func (s *Store) enqueueOutbound(tx *gorm.DB, targets []outboundTarget, t, before *models.Ticket, change models.TicketChange) error {
	for _, tg := range targets {
		if !models.Fires(tg.Trigger, tg.TriggerFields.V, change) {
			continue
		}
		data, err := models.MapOutbound(t, tg.fields())
		if err != nil {
			return err
		}
		var logs []string
		if len(tg.Scripts.V) > 0 {
			var previous map[string]any
			if before != nil {
				previous = scriptTicket(before)
			}
			var send bool
			if data, logs, send = s.outboundScripts(&tg, t, previous, data); !send {
				continue
			}
		}
		bond, err := findOrCreateBond(tx, tg.IntegrationID, t)
		if err != nil {
			return err
		}
		fields := tg.fields()
		stamps := models.OutboundStamps(t, before, fields)
		var last time.Time
		if bond.LastOutboundAt != nil {
			last = *bond.LastOutboundAt
		}
		// The message's time stamp is given here, under the bond's lock and
		// in its order, and only goes up on the bond, whatever the clock does.
		n := newOutbound{IntegrationID: tg.IntegrationID, IntegrationState: tg.IntegrationState,
			BondID: bond.ID, MessageID: tg.MessageID, TicketID: t.ID, Data: data,
			Stamps: stamps, TimeStamp: models.MessageStamp(last, s.now(), stamps), Seq: bond.NextSeq}
		if tg.AttachLogs {
			// "UpdateIncident MSG0000042 created for INC0000007 (update trigger), Sending"
			n.LogBefore = tg.MessageName + " "
			n.LogAfter = fmt.Sprintf(" created for %s (%s trigger), ", t.Number, tg.Trigger)
		}
		tr, err := insertOutbound(tx, n)
		if err != nil {
			return err
		}
		if tg.AttachLogs {
			for _, line := range logs {
				if err := addLog(tx, tr.ID, models.LogScript, "info", line); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// bondSlot is what findOrCreateBond hands out: the bond, the new message's
// sequence number on it and the last time stamp given on it.
type bondSlot struct {
	ID, NextSeq    int64
	LastOutboundAt *time.Time
}

// findOrCreateBond returns the id of the ticket's bond on the integration,
// creating it Pending (owned by us, internal reference = ticket number) when
// missing, locks it and hands out its next sequence number — one statement:
// the upsert takes the bond's row lock (the queue rule) as it numbers. The
// last outbound time stamp it returns is the one before this message's
// (insertOutbound moves it on).
func findOrCreateBond(tx *gorm.DB, integrationID int64, t *models.Ticket) (bondSlot, error) {
	var row bondSlot
	err := tx.Raw(`INSERT INTO bonds (integration_id, ticket_id, internal_reference, state, owner, next_seq)
		VALUES (?, ?, ?, ?, true, 1)
		ON CONFLICT (integration_id, ticket_id) DO UPDATE SET next_seq = bonds.next_seq + 1, updated_at = now()
		RETURNING id, next_seq, last_outbound_at`, integrationID, t.ID, t.Number, models.BondPending).Scan(&row).Error
	if err != nil {
		return bondSlot{}, fmt.Errorf("bond of %s: %w", t.Number, err)
	}
	return row, nil
}

// newOutbound describes an outbound transaction to create.
type newOutbound struct {
	IntegrationID    int64
	IntegrationState models.IntegrationState
	BondID           int64
	MessageID        int64
	TicketID         int64
	Data             map[string]any
	Stamps           map[string]models.WireStamp // the Stage's wire stamps; nil: none (stored NULL)
	// TimeStamp is the envelope's time_stamp (models.MessageStamp; a replay
	// keeps the original's); zero: stamped when sent (stored NULL). The
	// bond's last_outbound_at moves up to it.
	TimeStamp time.Time
	// Replays: the number and Message ID are given, not drawn.
	Number, MessageIdent string
	Seq                  int64 // the bond's sequence number (findOrCreateBond; a replay keeps the original's)
	ReplayOfID           *int64
	// LogBefore and LogAfter, when set, write a "message send" log line:
	// LogBefore + the Message ID + LogAfter + the start state.
	LogBefore, LogAfter string
}

// insertOutbound creates an outbound transaction with its Stage (and log
// line) in one statement, numbered from the sequences unless the numbers are
// given, and wakes the engine when it may be sent now. The bond must be
// locked. The start state is Sending, or Queued when the integration is not
// Active or an earlier outbound transaction on the bond is unfinished
// (queue.UnfinishedOutboundSQL).
func insertOutbound(tx *gorm.DB, n newOutbound) (*models.Transaction, error) {
	data := n.Data
	if data == nil {
		data = map[string]any{}
	}
	stage, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("stage transaction: %w", err)
	}
	var stamps *string
	if n.Stamps != nil {
		b, err := json.Marshal(n.Stamps)
		if err != nil {
			return nil, fmt.Errorf("stage transaction: stamps: %w", err)
		}
		s := string(b)
		stamps = &s
	}
	var ts *time.Time
	if !n.TimeStamp.IsZero() {
		ts = &n.TimeStamp
	}
	var tr models.Transaction
	err = tx.Raw(`WITH nums AS (
			SELECT CASE WHEN CAST(@number AS text) = '' THEN nextval('transaction_number_seq') END AS t,
			       CASE WHEN CAST(@ident AS text) = '' THEN nextval('message_number_seq') END AS m),
		t AS (
			INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id, ticket_id,
				table_name, direction, state, seq, replay_of_id)
			SELECT CASE WHEN @number = '' THEN 'TRN' || lpad(nums.t::text, greatest(7, length(nums.t::text)), '0')
			            ELSE @number END,
			       CASE WHEN @ident = '' THEN 'MSG' || lpad(nums.m::text, greatest(7, length(nums.m::text)), '0')
			            ELSE @ident END,
			       CAST(@integration AS bigint), CAST(@bond AS bigint), CAST(@message AS bigint),
			       CAST(@ticket AS bigint), 'incident', 'Outbound',
			       CASE WHEN CAST(@active AS boolean) AND NOT `+queue.UnfinishedOutboundSQL("CAST(@bond AS bigint)")+`
			            THEN `+pg.StateSQL(models.Sending)+` ELSE `+pg.StateSQL(models.Queued)+` END,
			       CAST(@seq AS bigint), CAST(@replay AS bigint)
			FROM nums
			RETURNING *),
		s AS (INSERT INTO stages (transaction_id, data, stamps, time_stamp)
			SELECT id, CAST(@stage AS jsonb), CAST(@stamps AS jsonb), CAST(@ts AS timestamptz) FROM t),
		ob AS (UPDATE bonds SET last_outbound_at = CAST(@ts AS timestamptz)
			WHERE id = CAST(@bond AS bigint) AND CAST(@ts AS timestamptz) IS NOT NULL
			  AND (last_outbound_at IS NULL OR last_outbound_at < CAST(@ts AS timestamptz))),
		l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line)
			SELECT id, CAST(@kind AS text), 'info', CAST(@before AS text) || message_ident || CAST(@after AS text) ||
				CASE state WHEN `+pg.StateSQL(models.Sending)+` THEN '`+models.Sending.String()+`' ELSE '`+models.Queued.String()+`' END
			FROM t WHERE CAST(@before AS text) <> ''),
		wake AS (SELECT pg_notify(CAST(@channel AS text), '') FROM t WHERE state = `+pg.StateSQL(models.Sending)+`)
		SELECT t.*, (SELECT count(*) FROM wake) AS woken FROM t`,
		map[string]any{"number": n.Number, "ident": n.MessageIdent, "integration": n.IntegrationID, "bond": n.BondID,
			"message": n.MessageID, "ticket": n.TicketID, "active": n.IntegrationState == models.IntegrationActive,
			"seq": n.Seq, "replay": n.ReplayOfID, "stage": string(stage), "stamps": stamps, "ts": ts, "kind": models.LogMessageSend,
			"before": n.LogBefore, "after": n.LogAfter, "channel": queue.NotifyChannel}).Scan(&tr).Error
	if err != nil {
		return nil, fmt.Errorf("create transaction on bond %d: %w", n.BondID, err)
	}
	if tr.ID == 0 {
		return nil, fmt.Errorf("create transaction on bond %d: no row returned", n.BondID)
	}
	return &tr, nil
}

// addLog writes one transaction log line.
func addLog(tx *gorm.DB, transactionID int64, kind models.LogKind, level, line string) error {
	err := tx.Create(&models.TransactionLog{TransactionID: transactionID, Kind: kind, Level: level, Line: line}).Error
	if err != nil {
		return fmt.Errorf("log transaction %d: %w", transactionID, err)
	}
	return nil
}
