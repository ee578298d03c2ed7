package inbound

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"gorm.io/gorm"

	"unifi/models/pg"
)

// The data-access rule (docs/architecture.md): the inbound API is a hot path,
// so every statement of this package is a named constant with $n
// placeholders, run on the connection directly — a GORM transaction's
// connection (tx.Statement.ConnPool: database/sql over pgx's stdlib driver)
// or, in a group, the pgx connection itself (inbound_batch.go). The texts are
// the ones GORM used to send, so the plans are the same.

// sqlInitiatingExists: is target_id one of our outbound Message IDs on the integration?
const sqlInitiatingExists = `SELECT EXISTS (SELECT 1 FROM transactions
						WHERE integration_id = $1 AND direction = $2 AND message_ident = $3)`

// sqlInboundConfig reads everything the one-message path checks, in one
// statement: $1 the sender's source_id, $2 the message name, $3 the integration name.
const sqlInboundConfig = `SELECT i.id, i.name, i.state, i.attach_logs, i.process_id,
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

// sqlOriginal reads what a source_id received before became and the answer
// stored with it: $1 the integration, $2 the source_id.
const sqlOriginal = `SELECT t.message_ident, t.external_message_id, k.number, b.external_reference,
			(SELECT h.response_body FROM http_requests h WHERE h.transaction_id = t.id AND h.direction = 'Inbound'
			  ORDER BY h.id LIMIT 1) AS first_answer
		FROM transactions t JOIN tickets k ON k.id = t.ticket_id JOIN bonds b ON b.id = t.bond_id
		WHERE t.integration_id = $1 AND t.direction = 'Inbound' AND t.external_message_id = $2`

// sqlLockRemoteReference serialises Creates for one remote ticket ($1) on an integration ($2).
const sqlLockRemoteReference = `SELECT pg_advisory_xact_lock(hashtextextended($1, $2))`

// sqlBondedRemote is our number of the remote ticket $2 bonded on integration $1.
//
// Each lookup by external_reference repeats the partial index's predicate
// (external_reference <> ”): a prepared statement's generic plan cannot
// prove it from "= $2", and without it scans every bond (1 ms a lookup at
// 10,000 bonds, bench -only poll).
const sqlBondedRemote = `SELECT internal_reference FROM bonds WHERE integration_id = $1 AND external_reference = $2
		AND external_reference <> '' ORDER BY id LIMIT 1`

// sqlCreateNumbers draws a Create's ticket, transaction and message numbers.
const sqlCreateNumbers = `SELECT nextval('ticket_number_seq') AS k, nextval('transaction_number_seq') AS trn,
		nextval('message_number_seq') AS msg`

// sqlCreateBond inserts a Create's new bond.
const sqlCreateBond = `INSERT INTO bonds (integration_id, ticket_id, internal_reference, external_reference, state, owner,
		history, process_error, next_seq, last_inbound_at, created_at, updated_at)
	VALUES ($1, $2, $3, $4, $5, $6, '', '', 0, $7, $8, $9) RETURNING id`

// lockTargetColumns are what an update needs of its bond and ticket, and its numbers.
const lockTargetColumns = `b.id AS bond_id, b.internal_reference, b.external_reference, b.state AS bond_state, b.owner,
		b.last_inbound_at, k.id AS ticket_id, k.number, k.short_description, k.description, k.state, k.priority,
		k.urgency, k.impact, k.assignment_group, k.work_notes, k.version, k.field_stamps,
		nextval('transaction_number_seq') AS trn, nextval('message_number_seq') AS msg`

// sqlLockByOurNumber locks the bond of our ticket $2 on integration $1, and its ticket.
const sqlLockByOurNumber = `SELECT ` + lockTargetColumns + ` FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = $1 AND k.number = $2 FOR NO KEY UPDATE`

// sqlLockByTheirNumber locks the bond of their ticket $2 on integration $1, and its ticket.
const sqlLockByTheirNumber = `SELECT ` + lockTargetColumns + ` FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = $1 AND b.external_reference = $2 AND b.external_reference <> ''
			ORDER BY b.id LIMIT 1 FOR NO KEY UPDATE`

// The write of one message (inboundCall.write) is one statement of writable
// CTEs whose optional parts depend on what the message changes; each part is
// a constant numbered from $1, renumbered after the parts before it (sqlParts).

// sqlWriteBondHead starts the bond's update: $1 updated_at.
const sqlWriteBondHead = `WITH b AS (UPDATE bonds SET next_seq = next_seq + 1, updated_at = $1`

// sqlWriteBondHistory appends the history line $1.
const sqlWriteBondHistory = `, history = history || $1`

// sqlWriteBondSet sets one more bond column (the column name is one of a fixed list) to $1.
const sqlWriteBondSet = `, %s = $1`

// sqlWriteBondTail ends the bond's update: $1 the bond.
const sqlWriteBondTail = ` WHERE id = $1 RETURNING next_seq)`

// sqlWriteTicketHead starts the ticket's update: $1 updated_at; then one
// sqlWriteBondSet per ticket field.
const sqlWriteTicketHead = `, k AS (UPDATE tickets SET version = version + 1, updated_at = $1`

// sqlWriteTicketStamps sets the ticket's field stamps to $1.
const sqlWriteTicketStamps = `, field_stamps = $1::jsonb`

// sqlWriteTicketTail ends the ticket's update: $1 the ticket.
const sqlWriteTicketTail = ` WHERE id = $1)`

// sqlWriteTransaction inserts the transaction, its Stage and its HTTP Request record.
const sqlWriteTransaction = `, t AS (INSERT INTO transactions (number, message_ident, external_message_id, integration_id,
			bond_id, message_id, ticket_id, table_name, direction, state, process_state, process_error, seq,
			next_attempt_at, created_at, updated_at, finished_at)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, 'Inbound', $9, $10, $11, b.next_seq, now(), $12, $13, $14 FROM b RETURNING id, seq),
		s AS (INSERT INTO stages (transaction_id, data, created_at) SELECT id, $15::jsonb, $16 FROM t),
		h AS (INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			created_at, updated_at)
		SELECT id, $17, 'Inbound', $18, 1, $19, $20, $21::jsonb, $22, 200, $23::jsonb, $24, $25, '', $26, $27 FROM t)`

// sqlWriteLog adds the transaction's log line.
const sqlWriteLog = `, l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at)
			SELECT id, $1, $2, $3, $4 FROM t)`

// sqlWriteLogs adds the transaction's log lines $3 (kinds $1, levels $2) in
// their order, for a message whose inbound scripts logged.
const sqlWriteLogs = `, l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at)
			SELECT t.id, x.kind, x.level, x.line, $4 FROM t,
				unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS x(kind, level, line, n) ORDER BY x.n)`

// sqlWriteResult ends the statement.
const sqlWriteResult = ` SELECT id, seq FROM t`

// sqlWriteNotify wakes the engine on channel $1: it sends the receipt.
const sqlWriteNotify = `, pg_notify($1, '')`

// sqlReceiptTransaction finds our outbound transaction $3 on integration $1 ($2: Outbound).
const sqlReceiptTransaction = `SELECT ` + pg.TransactionColumns + ` FROM transactions
		WHERE integration_id = $1 AND direction = $2 AND message_ident = $3 LIMIT 1`

// sqlTransactionState reads a transaction's state (under its bond's lock).
const sqlTransactionState = `SELECT state FROM transactions WHERE id = $1`

// sqlTransactionNumber reads a transaction's number.
const sqlTransactionNumber = `SELECT number FROM transactions WHERE id = $1`

// sqlReceiptBond reads what a receipt needs of its bond.
const sqlReceiptBond = `SELECT id, internal_reference, external_reference, state FROM bonds WHERE id = $1`

// sqlReceiptMessage reads what a receipt needs of its initiating message.
const sqlReceiptMessage = `SELECT name, set_bond_state FROM messages WHERE id = $1`

// sqlReceiptBondUpdate records a receipt on its bond: $2 updated_at, $3 the
// process error, $4 the new state (NULL: unchanged), $5 the learned external
// reference (NULL: unchanged), $6 the history line.
const sqlReceiptBondUpdate = `UPDATE bonds SET updated_at = $2, process_error = $3, state = coalesce($4, state),
		external_reference = coalesce($5, external_reference), history = history || $6 WHERE id = $1`

// sqlAddLog adds one transaction log line.
const sqlAddLog = `INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at) VALUES ($1, $2, $3, $4, $5)`

// sqlRecordRequest writes the HTTP Request record of an accepted receipt or heartbeat.
const sqlRecordRequest = `INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			created_at, updated_at)
		VALUES ($1, $2, 'Inbound', $3, 1, $4, $5, $6::jsonb, $7, $8, $9::jsonb, $10, $11, $12, $13, $14)`

// sqlRecordRefusal writes the HTTP Request record of a refused request, finding
// the integration by its name ($1).
const sqlRecordRefusal = `INSERT INTO http_requests (integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			created_at, updated_at)
		VALUES ((SELECT id FROM integrations WHERE name = $1), 'Inbound', $2, 1, $3, $4, $5::jsonb, $6, $7, $8::jsonb, $9, $10, $11, $12, $13)`

// conn is the connection a GORM transaction (or handle) runs on, and its
// context: the statements above run on it directly.
func conn(tx *gorm.DB) (context.Context, gorm.ConnPool) {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return ctx, tx.Statement.ConnPool
}

// sqlParts assembles a statement from constant parts, each numbered from $1,
// renumbering each part's placeholders after the arguments before it.
type sqlParts struct {
	sb   strings.Builder
	args []any
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// add appends part, whose placeholders $1..$n take args.
func (p *sqlParts) add(part string, args ...any) {
	off := len(p.args)
	if off == 0 {
		p.sb.WriteString(part)
	} else {
		p.sb.WriteString(placeholder.ReplaceAllStringFunc(part, func(m string) string {
			n, _ := strconv.Atoi(m[1:])
			return "$" + strconv.Itoa(n+off)
		}))
	}
	p.args = append(p.args, args...)
}

// sqlTicketCustom reads a ticket's custom values (an update that maps a
// process field): $1 the ticket.
const sqlTicketCustom = `SELECT custom FROM tickets WHERE id = $1`

// sqlWriteTicketCustom sets the ticket's custom values (an update that maps
// a process field) to $1.
const sqlWriteTicketCustom = `, custom = $1::jsonb`

// sqlFindBond is the bond of the remote ticket $2 on integration $1, the
// first made when several are (the lookup findBond gives inbound scripts).
const sqlFindBond = `SELECT internal_reference, external_reference, state FROM bonds
		WHERE integration_id = $1 AND external_reference = $2 ORDER BY id LIMIT 1`
