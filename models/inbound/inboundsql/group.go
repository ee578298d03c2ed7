package inboundsql

// GroupConnSet sets the committer's connection up for its chain: generic
// plans, and $1 milliseconds of lock_timeout (session settings, reset by
// GroupConnReset when the connection goes back to the pool).
const GroupConnSet = `SELECT set_config('plan_cache_mode', 'force_generic_plan', false), set_config('lock_timeout', $1, false)`

// GroupConnReset undoes GroupConnSet.
const GroupConnReset = `RESET plan_cache_mode; RESET lock_timeout`

const GroupNumbers = `SELECT (SELECT version::text FROM inbound_config_version),
	d.message_ident, d.external_message_id, d.number, d.external_reference, d.first_answer,
	CASE WHEN d.message_ident IS NULL THEN nextval('transaction_number_seq') END,
	CASE WHEN d.message_ident IS NULL THEN nextval('message_number_seq') END
	FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS w(integration_id, source_id, i)
	LEFT JOIN LATERAL (SELECT t.message_ident, t.external_message_id, k.number, b.external_reference,
			(SELECT h.response_body FROM http_requests h WHERE h.transaction_id = t.id AND h.direction = 'Inbound'
			  ORDER BY h.id LIMIT 1) AS first_answer
		FROM transactions t JOIN tickets k ON k.id = t.ticket_id JOIN bonds b ON b.id = t.bond_id
		WHERE t.integration_id = w.integration_id AND t.direction = 'Inbound' AND t.external_message_id = w.source_id
		LIMIT 1) d ON true
	ORDER BY w.i`

// GroupLock finds each message's bond as lockTarget does — by our
// number, else by theirs (lowest id) — and locks each bond, then its ticket,
// in bond id order, as lockTarget locks one: groups and the engine cannot
// deadlock on each other. Each ticket is looked up by its id from the locked
// bond (a generic plan for an id list scanned the whole tickets table).
const GroupLock = `WITH r AS MATERIALIZED (SELECT x.bond_id
		FROM unnest($1::bigint[], $2::text[], $3::text[]) AS w(integration_id, tref, sref)
		CROSS JOIN LATERAL (
			(SELECT b2.id AS bond_id FROM bonds b2 JOIN tickets k2 ON k2.id = b2.ticket_id
			  WHERE w.tref <> '' AND b2.integration_id = w.integration_id AND k2.number = w.tref)
			UNION ALL
			(SELECT b3.id FROM bonds b3 WHERE w.sref <> '' AND b3.integration_id = w.integration_id
			  AND b3.external_reference = w.sref AND b3.external_reference <> '' ORDER BY b3.id LIMIT 1)
			LIMIT 1) x),
	lb AS MATERIALIZED (SELECT b.ctid, b.id, b.integration_id, b.internal_reference, b.external_reference, b.state,
			b.owner, b.last_inbound_at, b.next_seq, b.ticket_id
		FROM bonds b WHERE b.id = ANY (ARRAY(SELECT bond_id FROM r))
		ORDER BY b.id FOR NO KEY UPDATE)
	SELECT lb.ctid, k.ctid, lb.id, lb.integration_id, lb.internal_reference, lb.external_reference, lb.state, lb.owner,
		lb.last_inbound_at, lb.next_seq, k.id, k.number, k.short_description, k.description, k.state, k.priority,
		k.urgency, k.impact, k.assignment_group, k.work_notes, k.version, k.field_stamps
	FROM lb CROSS JOIN LATERAL (SELECT k.ctid, k.id, k.number, k.short_description, k.description, k.state,
			k.priority, k.urgency, k.impact, k.assignment_group, k.work_notes, k.version, k.field_stamps
		FROM tickets k WHERE k.id = lb.ticket_id FOR NO KEY UPDATE) k`

// GroupWrite stores a group's accepted messages: the bonds' sequences,
// histories and states, the tickets' changes, the transactions (in the state
// Received moves to), their Stages, HTTP Request records and log lines, and
// wakes the engine when a receipt must go back.
const GroupWrite = `WITH m AS MATERIALIZED (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[],
		$6::bigint[], $7::bigint[], $8::bigint[], $9::text[], $10::smallint[], $11::smallint[], $12::text[], $13::bigint[],
		$14::timestamptz[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::int[],
		$22::text[], $23::text[])
	AS m(number, ident, ext_id, integration_id, bond_id, message_id, ticket_id, table_name, state, process_state,
		process_error, seq, finished_at, stage, method, url, req_headers, req_body, resp_body, duration_ms, log_level,
		log_line)),
bu AS (UPDATE bonds b SET next_seq = u.next_seq, updated_at = $1, history = b.history || u.history,
		process_error = coalesce(u.process_error, b.process_error),
		last_inbound_at = coalesce(u.last_inbound_at, b.last_inbound_at), state = coalesce(u.state, b.state),
		external_reference = coalesce(u.external_reference, b.external_reference)
	FROM unnest($24::bigint[], $25::bigint[], $26::text[], $27::text[], $28::timestamptz[], $29::text[], $30::text[])
		AS u(id, next_seq, history, process_error, last_inbound_at, state, external_reference)
	WHERE b.ctid = ANY ($44::tid[]) AND b.id = u.id),
ku AS (UPDATE tickets k SET version = u.version, updated_at = $1, short_description = u.short_description,
		description = u.description, state = u.state, priority = u.priority, urgency = u.urgency, impact = u.impact,
		assignment_group = u.assignment_group, work_notes = u.work_notes, field_stamps = u.field_stamps::jsonb
	FROM unnest($31::bigint[], $32::int[], $33::text[], $34::text[], $35::text[], $36::smallint[], $37::smallint[],
		$38::smallint[], $39::text[], $40::text[], $48::text[])
		AS u(id, version, short_description, description, state, priority, urgency, impact, assignment_group, work_notes,
			field_stamps)
	WHERE k.ctid = ANY ($45::tid[]) AND k.id = u.id),
t AS (INSERT INTO transactions (number, message_ident, external_message_id, integration_id, bond_id, message_id,
		ticket_id, table_name, direction, state, process_state, process_error, seq, next_attempt_at, created_at,
		updated_at, finished_at)
	SELECT number, ident, ext_id, integration_id, bond_id, message_id, ticket_id, table_name, 'Inbound', state,
		process_state, process_error, seq, now(), $1, $1, finished_at FROM m
	RETURNING id, message_ident),
s AS (INSERT INTO stages (transaction_id, data, created_at)
	SELECT t.id, m.stage::jsonb, $1 FROM t JOIN m ON m.ident = t.message_ident),
h AS (INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
		request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
		created_at, updated_at)
	SELECT t.id, m.integration_id, 'Inbound', $41, 1, m.method, m.url, m.req_headers::jsonb, m.req_body, 200,
		$42::jsonb, m.resp_body, m.duration_ms, '', $1, $1 FROM t JOIN m ON m.ident = t.message_ident),
l AS (INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at)
	SELECT t.id, $43, m.log_level, m.log_line, $1 FROM t JOIN m ON m.ident = t.message_ident
	WHERE m.log_line IS NOT NULL)
-- the engine's wake-up when a receipt must go back
SELECT id, message_ident, (SELECT count(*) FROM (SELECT pg_notify($46, '') WHERE $47::boolean) n) FROM t`
