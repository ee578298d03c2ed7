package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
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
	var rb pg.Batch
	queueProcessFields(&rb, &defs, createProcessSQL, processID)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("process fields of process %d: %w", processID, err)
	}
	return defs, nil
}

// A ticket change needs of its process's configuration the process's own
// fields and the outbound messages its change may fire. A create reads them
// in one round trip before its database transaction (readChangeConfig): the
// configuration may change between that read and the transaction, and the
// create then works with the configuration of a moment before, as the
// engine's cached one does. An edit, timed by the latency bench, keeps them
// in the Store (changeConfigs): planned ahead, it checks in SQL that the
// version it planned with is still the configuration's (ticket_edit.go);
// otherwise its first round trip reads the version with the ticket, and only
// a version it has not seen costs the reads. Read every time, the outbound messages' query (its fields, scripts
// and connection variables as JSON) was 1 ms of a 3.1 ms edit in a benchmark
// of UpdateTicket alone, two thirds of its first round trip.

// createProcessSQL is the process a create works in: $1, or the first
// (Incident) when $1 is 0.
const createProcessSQL = `coalesce(nullif($1::bigint, 0), (SELECT min(id) FROM processes))`

// processFieldsSQL reads the own fields of the process the SQL expression %s
// names, in form order.
const processFieldsSQL = `SELECT id, process_id, name, label, type, choices, required, position, version, created_at, updated_at
	FROM process_fields WHERE process_id = %s ORDER BY position, id`

func queueProcessFields(rb *pg.Batch, dst *[]models.ProcessField, process string, arg int64) {
	pg.QueueRows(rb, dst, fmt.Sprintf(processFieldsSQL, process), arg)
}

// changeConfig is the configuration a ticket change works with.
type changeConfig struct {
	// version is inbound_config_version's when the configuration was read
	// (migration 00060: every statement that changes the tables read here
	// sets a new one, in the same database transaction).
	version string
	fields  []models.ProcessField // the process's own fields, in form order
	targets []outboundTarget      // every outbound message of the process (planOutbound keeps those that fire)
}

// configVersionSQL reads the configuration's version.
const configVersionSQL = `SELECT version::text FROM inbound_config_version`

// queueVersion queues the read of the configuration's version into dst.
func queueVersion(rb *pg.Batch, dst *string) {
	pg.QueueScan(rb, func(rows pgx.Rows) error {
		for rows.Next() {
			if err := rows.Scan(dst); err != nil {
				return err
			}
		}
		return rows.Err()
	}, configVersionSQL)
}

// changeConfigs is the change configuration of each process an edit has
// worked in, as of the version read with it.
type changeConfigs struct {
	mu        sync.Mutex
	byProcess map[int64]*changeConfig
}

// latest returns the configuration last kept for process, or nil.
func (c *changeConfigs) latest(process int64) *changeConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byProcess[process]
}

// get returns the configuration of process at version, or nil.
func (c *changeConfigs) get(process int64, version string) *changeConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cfg := c.byProcess[process]; cfg != nil && cfg.version == version {
		return cfg
	}
	return nil
}

// put keeps cfg as process's configuration.
func (c *changeConfigs) put(process int64, cfg *changeConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byProcess == nil {
		c.byProcess = map[int64]*changeConfig{}
	}
	c.byProcess[process] = cfg
}

// queueChangeConfig queues the reads of the configuration of the process the
// SQL expression process names (createProcessSQL, or $1 for a process id)
// with arg, its version first: each statement reads its own snapshot, so the
// configuration read is at least as new as the version it is kept under, and
// a change made in between only costs another read.
func queueChangeConfig(rb *pg.Batch, c *changeConfig, process string, arg int64) {
	queueVersion(rb, &c.version)
	queueProcessFields(rb, &c.fields, process, arg)
	pg.QueueRows(rb, &c.targets, fmt.Sprintf(outboundTargetsSQL, process), arg)
}

// readChangeConfig reads the configuration of the process the SQL
// expression process names (createProcessSQL) with arg.
func (s *Store) readChangeConfig(ctx context.Context, process string, arg int64) (*changeConfig, error) {
	var c changeConfig
	var rb pg.Batch
	queueChangeConfig(&rb, &c, process, arg)
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
	taker := s.takerNow()
	defer editing(taker)()
	owner, leaseSeconds := leaseOf(taker)
	var handed []queue.Handed // transactions written leased to taker
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
		outs, err := s.planOutbound(cfg.targets, t, nil, models.TicketChange{Event: models.TriggerCreate})
		if err != nil {
			return err
		}
		for _, n := range outs {
			n.LeaseOwner, n.LeaseSeconds = owner, leaseSeconds
			h, err := insertOutbound(tx, n)
			if err != nil {
				return err
			}
			if h.Transaction.LeaseOwner != nil {
				handed = append(handed, *h)
			}
		}
		return pg.LogActivity(tx, actor, "create ticket", "ticket", t.ID, t.Number, nil, ticketSnapshot(t))
	})
	if err != nil {
		return nil, fmt.Errorf("create ticket: %w", err)
	}
	handOver(taker, handed)
	return t, nil
}

// leaseOf is the lease a ticket change writes what it can send at once
// with: the engine's of this process, or none ("") when none runs here.
func leaseOf(taker queue.Taker) (owner string, seconds float64) {
	if taker == nil {
		return "", 0
	}
	return taker.Lease()
}

// editing tells the engine of this process, if one runs here, that a ticket
// change runs until the returned func is called (queue.Taker).
func editing(taker queue.Taker) (done func()) {
	if taker == nil {
		return func() {}
	}
	return taker.Editing()
}

// handOver gives the engine of this process the committed transactions a
// ticket change wrote leased to it.
func handOver(taker queue.Taker, handed []queue.Handed) {
	if len(handed) > 0 {
		taker.Take(handed)
	}
}

// collectHanded reads the transaction an outbound statement created and
// appends it to handed when it was written leased to the engine of this
// process (outboundSQL).
func collectHanded(handed *[]queue.Handed) func(pgx.Rows) error {
	return func(rows pgx.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var h queue.Handed
			if err := rows.Scan(outboundFields(&h)...); err != nil {
				return err
			}
			if h.Transaction.LeaseOwner != nil {
				*handed = append(*handed, h)
			}
		}
		return rows.Err()
	}
}

// outboundFields are the scan targets of outboundSQL's columns.
func outboundFields(h *queue.Handed) []any {
	var woken int64
	return append(pg.TransactionFields(nil, &h.Transaction), &h.StageData, &h.StageStamps, &h.StageTimeStamp,
		&h.InternalReference, &h.ExternalReference, &woken)
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

// planOutbound returns the transactions a ticket change creates: for every
// Active or Paused integration of the ticket's process that has an active
// connection, one per outbound message of targets (readChangeConfig) the
// change fires (models.Fires), on the ticket's bond on the integration.
// Each carries the wire stamps of the ticket's fields and the old values of
// those this change made (before; nil on a create). A required field the
// ticket leaves empty refuses the change.
//
// A message's Advanced trigger condition script can skip it, and its Source
// to Stage script refines the Stage (outbound_script.go).
func (s *Store) planOutbound(targets []outboundTarget, t, before *models.Ticket, change models.TicketChange) ([]newOutbound, error) {
	var outs []newOutbound
	var bonds []bondSlot // the bonds given a message so far, by integration
	for _, tg := range targets {
		if !models.Fires(tg.Trigger, tg.TriggerFields.V, change) {
			continue
		}
		data, err := models.MapOutbound(t, tg.fields())
		if err != nil {
			return nil, err
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
		i := slices.IndexFunc(bonds, func(b bondSlot) bool { return b.IntegrationID == tg.IntegrationID })
		if i < 0 { // a bond to create
			bonds, i = append(bonds, bondSlot{IntegrationID: tg.IntegrationID}), len(bonds)
		}
		bond := &bonds[i]
		stamps := models.OutboundStamps(t, before, tg.fields())
		// The message's time stamp is given here, under the bond's lock and
		// in its order, and only goes up on the bond, whatever the clock does.
		var last time.Time
		if bond.LastOutboundAt != nil {
			last = *bond.LastOutboundAt
		}
		ts := models.MessageStamp(last, s.now(), stamps)
		bond.NextSeq++
		bond.LastOutboundAt = &ts
		n := newOutbound{IntegrationID: tg.IntegrationID, IntegrationState: tg.IntegrationState,
			TicketNumber: t.Number, MessageID: tg.MessageID, TicketID: t.ID, Data: data,
			Stamps: stamps, TimeStamp: ts, Seq: bond.NextSeq}
		if tg.AttachLogs {
			// "UpdateIncident MSG0000042 created for INC0000007 (update trigger), Sending"
			n.LogBefore = tg.MessageName + " "
			n.LogAfter = fmt.Sprintf(" created for %s (%s trigger), ", t.Number, tg.Trigger)
			n.ScriptLogs = logs
		}
		outs = append(outs, n)
	}
	return outs, nil
}

// bondSlot is the sequence number and time stamp a ticket change last gave
// a message on its bond on an integration. The first message on a bond is
// planned as if the bond were new (sequence number 1, the change's stamp);
// outboundTicketBondSQL's greatest() moves both past the bond's own, read
// under its lock, as models.MessageStamp would.
type bondSlot struct {
	IntegrationID, NextSeq int64
	LastOutboundAt         *time.Time
}

// newOutbound describes an outbound transaction to create.
type newOutbound struct {
	IntegrationID    int64
	IntegrationState models.IntegrationState
	MessageID        int64
	TicketID         int64
	Data             map[string]any
	Stamps           map[string]models.WireStamp // the Stage's wire stamps; nil: none (stored NULL)
	// TimeStamp is the envelope's time_stamp (models.MessageStamp; a replay
	// keeps the original's); zero: stamped when sent (stored NULL). The
	// bond's last_outbound_at moves up to it.
	TimeStamp time.Time
	// Seq is the message's sequence number on its bond (planOutbound; a
	// replay keeps the original's).
	Seq int64
	// BondID is a replay's bond, which the replay has locked; 0: the ticket's
	// bond on the integration, created Pending (owned by us, internal
	// reference = TicketNumber) when missing.
	BondID       int64
	TicketNumber string
	// Replays: the number and Message ID are given, not drawn.
	Number, MessageIdent string
	ReplayOfID           *int64
	// LogBefore and LogAfter, when set, write a "message send" log line:
	// LogBefore + the Message ID + LogAfter + the start state, then
	// ScriptLogs, the lines its scripts logged.
	LogBefore, LogAfter string
	ScriptLogs          []string
	// LeaseOwner, when set, is the engine of this process (queue.Taker): a
	// transaction that starts Sending is written leased to it for
	// LeaseSeconds plus the integration's sync timeout, and handed over
	// after the commit.
	LeaseOwner   string
	LeaseSeconds float64
}

// The statement that creates an outbound transaction is a bond step (CTE b:
// the bond's id, the message's seq and time stamp) followed by outboundSQL,
// one round trip. The ticket's bond is upserted under its lock: a new bond
// takes the sequence number and time stamp planOutbound gave (bondSlot), an
// existing one the next number after its own and the later of that stamp and
// a microsecond after its last (models.MessageStamp's rule, in SQL). A
// replay's bond is given, and its last stamp only moves up.
const (
	outboundTicketBondSQL = `WITH b AS (
			INSERT INTO bonds (integration_id, ticket_id, internal_reference, state, owner, next_seq, last_outbound_at)
			VALUES ($3, $5, $14, '` + string(models.BondPending) + `', true, $15, $13::timestamptz)
			ON CONFLICT (integration_id, ticket_id) DO UPDATE SET updated_at = now(),
				next_seq = greatest(bonds.next_seq + 1, excluded.next_seq),
				last_outbound_at = greatest(bonds.last_outbound_at + interval '1 microsecond', excluded.last_outbound_at)
			RETURNING id, next_seq AS seq, last_outbound_at AS ts, internal_reference, external_reference)`
	outboundGivenBondSQL = `WITH b AS (
			UPDATE bonds SET last_outbound_at = greatest(last_outbound_at, $13::timestamptz) WHERE id = $14
			RETURNING id, $15::bigint AS seq, $13::timestamptz AS ts, internal_reference, external_reference)`
)

// outboundSQL inserts the transaction on bond b with its Stage and log lines,
// numbered from the sequences unless $1 and $2 give the numbers. The start
// state is Sending, or Queued when the integration is not Active ($6) or an
// earlier outbound transaction on the bond is unfinished
// (queue.UnfinishedOutboundSQL). One that may be sent now is leased to the
// engine of this process ($16, for $17 seconds; queue.Taker) when one runs
// and the integration has an active connection (the claim's test), else it
// wakes every engine with a NOTIFY. Its parameters are newOutbound.args.
var outboundSQL = `,
		nums AS (
			SELECT CASE WHEN $1::text = '' THEN nextval('transaction_number_seq') END AS t,
			       CASE WHEN $2::text = '' THEN nextval('message_number_seq') END AS m),
		t AS (
			INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id, ticket_id,
				table_name, direction, state, seq, replay_of_id, lease_owner, lease_expires_at, next_attempt_at)
			SELECT CASE WHEN $1 = '' THEN 'TRN' || lpad(nums.t::text, greatest(7, length(nums.t::text)), '0') ELSE $1 END,
			       CASE WHEN $2 = '' THEN 'MSG' || lpad(nums.m::text, greatest(7, length(nums.m::text)), '0') ELSE $2 END,
			       $3::bigint, b.id, $4::bigint, $5::bigint, 'incident', 'Outbound', st.state, b.seq, $7::bigint,
			       CASE WHEN l.expires IS NOT NULL THEN $16::text END, l.expires, coalesce(l.expires, now())
			FROM nums CROSS JOIN b
			CROSS JOIN LATERAL (SELECT CASE WHEN $6::boolean AND NOT ` + queue.UnfinishedOutboundSQL("b.id") + `
			            THEN ` + pg.StateSQL(models.Sending) + ` ELSE ` + pg.StateSQL(models.Queued) + ` END AS state) st
			-- Handed over (queue.Taker): leased as a claim would lease it,
			-- due again when the lease expires, as chained work is.
			LEFT JOIN LATERAL (SELECT now() + make_interval(secs => $17::float8 + i.sync_timeout_s) AS expires
			            FROM integrations i WHERE i.id = $3 AND $16::text <> '' AND st.state = ` + pg.StateSQL(models.Sending) + `
			              AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = i.id AND c.active)) l ON true
			RETURNING ` + pg.TransactionColumns + `),
		s AS (INSERT INTO stages (transaction_id, data, stamps, time_stamp)
			SELECT t.id, $8::jsonb, $9::jsonb, b.ts FROM t, b
			RETURNING data, stamps, time_stamp),
		l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line)
			SELECT t.id, x.kind, 'info', x.line FROM t, LATERAL (
				SELECT 0::bigint AS n, '` + string(models.LogMessageSend) + `' AS kind, $10::text || t.message_ident || $11::text ||
					CASE t.state WHEN ` + pg.StateSQL(models.Sending) + ` THEN '` + models.Sending.String() + `' ELSE '` + models.Queued.String() + `' END AS line
				UNION ALL
				SELECT u.n, '` + string(models.LogScript) + `', u.line FROM unnest($12::text[]) WITH ORDINALITY AS u(line, n)) x
			WHERE $10 <> '' ORDER BY x.n),
		wake AS (SELECT pg_notify('` + queue.NotifyChannel + `', '') FROM t
			WHERE t.state = ` + pg.StateSQL(models.Sending) + ` AND t.lease_owner IS NULL)
		SELECT t.*, s.data, s.stamps, s.time_stamp, b.internal_reference, b.external_reference,
			(SELECT count(*) FROM wake) AS woken
		FROM t, s, b`

// The two statements that create an outbound transaction.
var (
	outboundOnTicketBondSQL = outboundTicketBondSQL + outboundSQL
	outboundOnGivenBondSQL  = outboundGivenBondSQL + outboundSQL
)

// sql returns the statement that creates n.
func (n *newOutbound) sql() string {
	if n.BondID != 0 {
		return outboundOnGivenBondSQL
	}
	return outboundOnTicketBondSQL
}

// args returns the parameters of n's statement.
func (n *newOutbound) args() []any {
	data := n.Data
	if data == nil {
		data = map[string]any{}
	}
	var stamps any
	if n.Stamps != nil {
		stamps = models.JSON[map[string]models.WireStamp]{V: n.Stamps}
	}
	var ts *time.Time
	if !n.TimeStamp.IsZero() {
		ts = &n.TimeStamp
	}
	var bond any = n.TicketNumber
	if n.BondID != 0 {
		bond = n.BondID
	}
	return []any{n.Number, n.MessageIdent, n.IntegrationID, n.MessageID, n.TicketID,
		n.IntegrationState == models.IntegrationActive, n.ReplayOfID, models.JSON[map[string]any]{V: data}, stamps,
		n.LogBefore, n.LogAfter, n.ScriptLogs, ts, bond, n.Seq, n.LeaseOwner, n.LeaseSeconds}
}

// insertOutbound creates n in the database transaction tx and returns it
// with its Stage and bond references.
func insertOutbound(tx *gorm.DB, n newOutbound) (*queue.Handed, error) {
	var h queue.Handed
	err := pg.Query(tx, n.sql(), func(rows *sql.Rows) error {
		return rows.Scan(outboundFields(&h)...)
	}, n.args()...)
	if err != nil {
		return nil, fmt.Errorf("create transaction for ticket %d: %w", n.TicketID, err)
	}
	if h.Transaction.ID == 0 {
		return nil, fmt.Errorf("create transaction for ticket %d: no row returned", n.TicketID)
	}
	return &h, nil
}

// addLog writes one transaction log line.
func addLog(tx *gorm.DB, transactionID int64, kind models.LogKind, level, line string) error {
	err := tx.Create(&models.TransactionLog{TransactionID: transactionID, Kind: kind, Level: level, Line: line}).Error
	if err != nil {
		return fmt.Errorf("log transaction %d: %w", transactionID, err)
	}
	return nil
}
