package inboundsql

import (
	"unifi/models"
	"unifi/models/pg"
)

// InitiatingExists: is target_id one of our outbound Message IDs on the
// integration? Message ids are found in transaction_keys (migration 00300).
const InitiatingExists = `SELECT EXISTS (SELECT 1 FROM transaction_keys k JOIN transactions t ON t.id = k.id
						WHERE k.integration_id = $1 AND t.direction = $2 AND k.message_ident = $3)`

// InboundConfig reads everything the one-message path checks, in one
// statement: $1 the sender's source_id, $2 the message name, $3 the integration name.
const InboundConfig = `SELECT i.id, i.name, i.state, i.attach_logs, i.process_id,
			p.number_prefix, p.ticket_table, c.id AS connection_id, c.inbound_user_id,
			m.id AS message_id, m.name AS message_name, m.type AS message_type, m.async, m.bond_ownership,
			m.allowed_bond_states, m.set_bond_state, m.receipt_message_id, rm.name AS receipt_name,
			(SELECT coalesce(json_agg(json_build_object('id', f.id, 'ticket_field', f.ticket_field,
			        'property', f.property, 'value_map', f.value_map, 'required', f.required, 'direction', f.direction,
			        'default_value', f.default_value, 'inbound_value_map', f.inbound_value_map) ORDER BY f.position, f.id), '[]')
			   FROM fields f WHERE f.message_id = m.id) AS fields,
			(SELECT coalesce(json_agg(json_build_object('id', f.id, 'ticket_field', f.ticket_field,
			        'property', f.property, 'value_map', f.value_map, 'required', f.required, 'direction', f.direction,
			        'default_value', f.default_value, 'inbound_value_map', f.inbound_value_map) ORDER BY f.position, f.id), '[]')
			   FROM fields f WHERE f.message_id = m.response_message_id) AS response_fields,
			($1 <> '' AND EXISTS (SELECT 1 FROM transactions t WHERE t.integration_id = i.id
			        AND t.direction = 'Inbound' AND t.external_message_id = $1)) AS seen,
			(SELECT version::text FROM inbound_config_version) AS config_version
		FROM integrations i
		JOIN processes p ON p.id = i.process_id
		LEFT JOIN connections c ON c.integration_id = i.id AND c.active
		LEFT JOIN messages m ON m.integration_id = i.id AND m.name = $2 AND m.direction IN ('Inbound', 'Bidirectional')
		LEFT JOIN messages rm ON rm.id = m.receipt_message_id
		WHERE i.name = $3`

// Original reads what a source_id received before became and the answer
// stored with it: $1 the integration, $2 the source_id.
const Original = `SELECT t.message_ident, t.external_message_id, k.number, b.external_reference,
			(SELECT h.response_body FROM http_requests h WHERE h.transaction_id = t.id AND h.direction = 'Inbound'
			  ORDER BY h.id LIMIT 1) AS first_answer
		FROM transactions t JOIN tickets k ON k.id = t.ticket_id JOIN bonds b ON b.id = t.bond_id
		WHERE t.integration_id = $1 AND t.direction = 'Inbound' AND t.external_message_id = $2`

// LockRemoteReference serialises Creates for one remote ticket ($1) on an integration ($2).
const LockRemoteReference = `SELECT pg_advisory_xact_lock(hashtextextended($1, $2))`

// BondedRemote is our number of the remote ticket $2 bonded on integration $1.
//
// Each lookup by external_reference repeats the partial index's predicate
// (external_reference <> ”): a prepared statement's generic plan cannot
// prove it from "= $2", and without it scans every bond (1 ms a lookup at
// 10,000 bonds, bench -only poll).
const BondedRemote = `SELECT internal_reference FROM bonds WHERE integration_id = $1 AND external_reference = $2
		AND external_reference <> '' ORDER BY id LIMIT 1`

// CreateNumbers draws a Create's ticket, transaction and message numbers.
const CreateNumbers = `SELECT nextval('ticket_number_seq') AS k, nextval('transaction_number_seq') AS trn,
		nextval('message_number_seq') AS msg`

// CreateBond inserts a Create's new bond.
const CreateBond = `INSERT INTO bonds (integration_id, ticket_id, internal_reference, external_reference, state, owner,
		history, process_error, next_seq, last_inbound_at, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, '', '', 0, $7, $8, $9) RETURNING id`

// LockTargetColumns are what an update needs of its bond and ticket, and its numbers.
const LockTargetColumns = `b.id AS bond_id, b.internal_reference, b.external_reference, b.state AS bond_state, b.owner,
		b.last_inbound_at, k.id AS ticket_id, k.number, k.short_description, k.description, k.state, k.priority,
		k.urgency, k.impact, k.assignment_group, k.work_notes, k.version, k.field_stamps,
		nextval('transaction_number_seq') AS trn, nextval('message_number_seq') AS msg`

// LockByOurNumber locks the bond of our ticket $2 on integration $1, and its ticket.
const LockByOurNumber = `SELECT ` + LockTargetColumns + ` FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = $1 AND k.number = $2 FOR NO KEY UPDATE`

// LockByTheirNumber locks the bond of their ticket $2 on integration $1, and its ticket.
const LockByTheirNumber = `SELECT ` + LockTargetColumns + ` FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = $1 AND b.external_reference = $2 AND b.external_reference <> ''
			ORDER BY b.id LIMIT 1 FOR NO KEY UPDATE`

// WriteBondHead starts the bond's update: $1 updated_at.
const WriteBondHead = `WITH b AS (UPDATE bonds SET next_seq = next_seq + 1, updated_at = $1`

// WriteBondHistory appends the history line $1.
const WriteBondHistory = `, history = history || $1`

// WriteBondSet sets one more bond column (the column name is one of a fixed list) to $1.
const WriteBondSet = `, %s = $1`

// WriteBondTail ends the bond's update: $1 the bond.
const WriteBondTail = ` WHERE id = $1 RETURNING next_seq)`

// WriteTicketHead starts the ticket's update: $1 updated_at; then one
// WriteBondSet per ticket field.
const WriteTicketHead = `, k AS (UPDATE tickets SET version = version + 1, updated_at = $1`

// WriteTicketStamps sets the ticket's field stamps to $1.
const WriteTicketStamps = `, field_stamps = $1::jsonb`

// WriteTicketTail ends the ticket's update: $1 the ticket.
const WriteTicketTail = ` WHERE id = $1)`

// WriteTransaction inserts the transaction, its Stage and its HTTP Request record.
const WriteTransaction = `, t AS (INSERT INTO transactions (number, message_ident, external_message_id, integration_id,
			bond_id, message_id, ticket_id, table_name, direction, state, process_state, process_error, seq,
			next_attempt_at, created_at, updated_at, finished_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'Inbound', $9, $10, $11, b.next_seq, now(), $12, $13, $14 FROM b RETURNING id, seq),
		s AS (INSERT INTO stages (transaction_id, data, created_at) SELECT id, $15::jsonb, $16 FROM t),
		h AS (INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			created_at, updated_at)
		SELECT id, $17, 'Inbound', $18, 1, $19, $20, $21::jsonb, $22, 200, $23::jsonb, $24, $25, '', $26, $27 FROM t)`

// WriteLog adds the transaction's log line.
const WriteLog = `, l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at)
			SELECT id, $1, $2, $3, $4 FROM t)`

// WriteLogs adds the transaction's log lines $3 (kinds $1, levels $2) in
// their order, for a message whose inbound scripts logged.
const WriteLogs = `, l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at)
			SELECT t.id, x.kind, x.level, x.line, $4 FROM t,
				unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(kind, level, line, n) ORDER BY x.n)`

// WriteResult ends the statement.
const WriteResult = ` SELECT id, seq FROM t`

// WriteNotify wakes the engine on channel $1: it sends the receipt.
const WriteNotify = `, pg_notify($1, '')`

// ReceiptTransaction finds our outbound transaction $3 on integration $1
// ($2: Outbound), by its message id in transaction_keys.
const ReceiptTransaction = `SELECT ` + pg.TransactionColumns + ` FROM transactions
		WHERE id = (SELECT id FROM transaction_keys WHERE message_ident = $3 AND integration_id = $1)
		  AND direction = $2`

// TransactionState reads a transaction's state (under its bond's lock).
const TransactionState = `SELECT state FROM transactions WHERE id = $1`

// TransactionNumber reads a transaction's number.
const TransactionNumber = `SELECT number FROM transactions WHERE id = $1`

// ReceiptBond reads what a receipt needs of its bond.
const ReceiptBond = `SELECT id, internal_reference, external_reference, state FROM bonds WHERE id = $1`

// ReceiptMessage reads what a receipt needs of its initiating message.
const ReceiptMessage = `SELECT name, set_bond_state FROM messages WHERE id = $1`

// ReceiptBondUpdate records a receipt on its bond: $2 updated_at, $3 the
// process error, $4 the new state (NULL: unchanged), $5 the learned external
// reference (NULL: unchanged), $6 the history line.
const ReceiptBondUpdate = `UPDATE bonds SET updated_at = $2, process_error = $3, state = coalesce($4, state),
		external_reference = coalesce($5, external_reference), history = history || $6 WHERE id = $1`

// AddLog adds one transaction log line.
const AddLog = `INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at) VALUES ($1, $2, $3, $4, $5)`

// RecordRequest writes the HTTP Request record of an accepted receipt or heartbeat.
const RecordRequest = `INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			created_at, updated_at)
		VALUES ($1, $2, 'Inbound', $3, 1, $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10, $11, $12, $13, $14)`

// RecordRefusal writes the HTTP Request record of a refused request, finding
// the integration by its name ($1).
const RecordRefusal = `INSERT INTO http_requests (integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			created_at, updated_at)
		VALUES ((SELECT id FROM integrations WHERE name = $1), 'Inbound', $2, 1, $3, $4, $5::jsonb, $6, $7, $8::jsonb, $9, $10, $11, $12, $13)`

// TicketCustom reads a ticket's custom values (an update that maps a
// process field): $1 the ticket.
const TicketCustom = `SELECT custom FROM tickets WHERE id = $1`

// WriteTicketCustom sets the ticket's custom values (an update that maps
// a process field) to $1.
const WriteTicketCustom = `, custom = $1::jsonb`

// FindBond is the bond of the remote ticket $2 on integration $1, the
// first made when several are (the lookup findBond gives inbound scripts).
// It repeats the partial index's predicate, as BondedRemote does: without
// it the generic plan scans every bond of the integration.
const FindBond = `SELECT internal_reference, external_reference, state FROM bonds
		WHERE integration_id = $1 AND external_reference = $2 AND external_reference <> ''
		ORDER BY id LIMIT 1`

// ConfigRow is the row InboundConfig reads.
type ConfigRow struct {
	ID                int64
	Name              string
	State             models.IntegrationState
	AttachLogs        bool
	ProcessID         int64
	NumberPrefix      string
	TicketTable       string
	ConnectionID      *int64
	InboundUserID     *int64
	MessageID         *int64
	MessageName       *string
	MessageType       *string
	Async             *bool
	BondOwnership     *string
	AllowedBondStates models.JSON[[]models.BondState]
	SetBondState      *string
	ReceiptMessageID  *int64
	ReceiptName       *string
	Fields            string
	ResponseFields    string
	Seen              bool
	ConfigVersion     string
}

// Dest are the scan destinations of InboundConfig's columns, in order.
func (r *ConfigRow) Dest() []any {
	return []any{&r.ID, &r.Name, &r.State, &r.AttachLogs, &r.ProcessID, &r.NumberPrefix, &r.TicketTable,
		&r.ConnectionID, &r.InboundUserID, &r.MessageID, &r.MessageName, &r.MessageType, &r.Async,
		&r.BondOwnership, &r.AllowedBondStates, &r.SetBondState, &r.ReceiptMessageID, &r.ReceiptName,
		&r.Fields, &r.ResponseFields, &r.Seen, &r.ConfigVersion}
}
