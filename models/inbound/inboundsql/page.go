package inboundsql

// PageSavepoint is the savepoint before a page's batch of Creates.
const PageSavepoint = "inbound_page"

// PageSeen: has integration $1 received message ID $2 before?
const PageSeen = `SELECT EXISTS (SELECT 1 FROM transactions t WHERE t.integration_id = $1
			AND t.direction = 'Inbound' AND t.external_message_id = $2)`

// PageLock serialises Creates for the remote tickets $1 on integration
// $2, as LockRemoteReference does for one: in one order, so two pages
// cannot wait for each other.
const PageLock = `SELECT count(pg_advisory_xact_lock(hashtextextended(r, $2)))
		FROM (SELECT DISTINCT r FROM unnest($1::text[]) r ORDER BY r) l`

// PageChecks finds, on integration $1, which message IDs of $2 were
// received before and which remote tickets of $3 are bonded already (our
// number, the first bond made; the partial index's predicate repeated).
// One index probe per element (LATERAL ... LIMIT 1, as GroupNumbers): with
// "= ANY ($2)" the planner, its statistics far behind tables that a poll
// fills, read every row of the integration through the index and filtered
// them, a cost growing with each page (27 ms a page on average over 10,000
// items, bench -only poll; 1 ms with the probes).
const PageChecks = `SELECT 'seen', x.id, '' FROM unnest($2::text[]) AS x(id)
		JOIN LATERAL (SELECT 1 FROM transactions t WHERE t.integration_id = $1 AND t.direction = 'Inbound'
			AND t.external_message_id = x.id LIMIT 1) t ON true
	UNION ALL
	SELECT 'bonded', r.ref, b.internal_reference FROM unnest($3::text[]) AS r(ref)
		JOIN LATERAL (SELECT b.internal_reference FROM bonds b WHERE b.integration_id = $1 AND b.external_reference = r.ref
			AND b.external_reference <> '' ORDER BY b.id LIMIT 1) b ON true`

// PageNumbers draws $1 Creates' ticket, transaction and message numbers,
// in the order one Create after another draws them.
const PageNumbers = `SELECT nextval('ticket_number_seq'), nextval('transaction_number_seq'),
		nextval('message_number_seq') FROM generate_series(1, $1::int) g ORDER BY g`

// PageBonds inserts new bonds on integration $1 at $2, in order, as a
// Create's bond is once its message is written (CreateBond, then the
// write's update: next_seq 1, the history line, no process error).
const PageBonds = `INSERT INTO bonds (integration_id, ticket_id, internal_reference, external_reference, state, owner,
		history, process_error, next_seq, last_inbound_at, created_at, updated_at)
	SELECT $1, v.ticket_id, v.internal, v.external, v.state, false, v.history, '', 1, v.last_inbound_at, $2, $2
	FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::timestamptz[]) WITH ORDINALITY
		AS v(ticket_id, internal, external, state, history, last_inbound_at, i)
	ORDER BY v.i
	RETURNING id, ticket_id`

// PageRelease ends the batch's savepoint once it is written.
const PageRelease = `RELEASE SAVEPOINT ` + PageSavepoint
