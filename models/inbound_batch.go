package models

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"
)

// Group commit for inbound updates. Concurrent update messages are applied
// together: one database transaction, three set-based statements and two
// round trips for the whole group, instead of a transaction of six round
// trips each. Each message is still decided on its own, in arrival order,
// exactly as the one-message path decides it (updateTx: the same rules, the
// same texts, the same rows); only the writing is shared.
//
// A group is led by one of its own requests, so no goroutine outlives the
// requests it serves: the first request to find a free slot (at most
// StoreOpts.InboundBatches groups run at once, one by default) takes
// everything waiting, up to StoreOpts.InboundBatchMax messages, applies it,
// hands its slot to the oldest request still waiting, which leads the next
// group, and answers the others. Requests arriving while a group runs wait and
// go together in the next one: the busier the API, the larger the groups.
//
// What a group does not decide itself goes back to its request, which then
// takes the full one-message path after the group committed: a message whose
// configuration version is not the database's, whose bond is not found, whose
// bond rules refuse it, and every message of a group that fails as a whole (a
// concurrent copy caught by the unique index, a deadlock, a lost connection).
// A group refuses nothing but duplicates, and answers nothing before its
// COMMIT returned.

// Defaults for StoreOpts.InboundBatchMax and InboundBatches. One group at a
// time: with two, each group was smaller and a message cost more database
// CPU (docs/inbound.md).
const (
	defaultInboundBatchMax = 64
	defaultInboundBatches  = 1
)

// inboundBatchTimeout bounds one group's database work.
const inboundBatchTimeout = 30 * time.Second

// inboundItem is one update message in a group.
type inboundItem struct {
	ctx     context.Context
	rc      *inboundCall
	version string // configuration version its checks were made against

	// Set by the group, read after wake.
	res      *InboundResult
	err      error
	fallback bool // take the full path
	wake     chan bool
}

// inboundBatcher queues update messages for groups.
type inboundBatcher struct {
	mu      sync.Mutex
	queue   []*inboundItem
	running int
}

// inboundState is the Store's inbound machinery: the configuration snapshot
// and the group committer.
type inboundState struct {
	cache      inboundCache
	batcher    inboundBatcher
	batchMax   int
	batchSlots int
	// writing is held from a group's write to its COMMIT, so that with
	// several groups at once (InboundBatches > 1) they read and lock
	// concurrently but write one at a time: concurrent writers would share
	// the foreign-key locks on the integration's and the message's rows (FOR
	// KEY SHARE), which PostgreSQL keeps in a MultiXact that every later
	// check of those rows has to look up.
	writing sync.Mutex
	// beforeWriteFunc, when set (tests), runs after a group decided and
	// before it writes.
	beforeWriteFunc func()
}

// applyGrouped applies it in a group and returns its outcome; fallback means
// the caller must take the full path.
func (s *Store) applyGrouped(it *inboundItem) (*InboundResult, error, bool) {
	b := &s.inbound.batcher
	it.wake = make(chan bool, 1)
	b.mu.Lock()
	if b.running >= s.inbound.batchSlots {
		b.queue = append(b.queue, it)
		b.mu.Unlock()
		if lead := <-it.wake; !lead {
			return it.res, it.err, it.fallback
		}
		b.mu.Lock() // handed a slot: lead the next group
	} else {
		b.running++
	}
	n := min(len(b.queue), s.inbound.batchMax-1)
	group := make([]*inboundItem, 0, n+1)
	group = append(group, it)
	group = append(group, b.queue[:n]...)
	b.queue = append(b.queue[:0:0], b.queue[n:]...)
	b.mu.Unlock()

	s.runInboundGroup(it.ctx, group)

	// The next group first (it waits for the database), then the answers.
	b.mu.Lock()
	if len(b.queue) > 0 {
		next := b.queue[0]
		b.queue = b.queue[1:]
		next.wake <- true
	} else {
		b.running--
	}
	b.mu.Unlock()
	for _, o := range group[1:] {
		o.wake <- false
	}
	return it.res, it.err, it.fallback
}

// runInboundGroup applies a group, or sends every message of it to the full
// path when the group fails as a whole.
func (s *Store) runInboundGroup(ctx context.Context, group []*inboundItem) {
	// The group serves other requests too: the leader's cancellation must
	// not cut it short.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inboundBatchTimeout)
	defer cancel()
	live := make([]*inboundItem, 0, len(group))
	for _, it := range group {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			continue
		}
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	if err := s.applyInboundGroup(ctx, live); err != nil {
		for _, it := range live {
			it.res, it.err, it.fallback = nil, nil, true
		}
	}
}

// groupBond is a locked bond with its ticket, as the group's messages leave them.
type groupBond struct {
	integrationID      int64
	target             inboundTarget // current values
	origExternal       string        // external_reference as locked
	nextSeq            int64
	ticket             Ticket
	bondTID, ticketTID pgtype.TID // where the locked rows are: the write finds them without an index
	ticketChanged      bool
	used               bool // a message of the group landed on it
	history            strings.Builder
	processError       *string
	lastInboundAt      *time.Time
	stateSet           *BondState
	externalReferenced *string
}

const inboundGroupNumbers = `SELECT (SELECT version::text FROM inbound_config_version),
	d.message_ident, d.external_message_id, d.number, d.external_reference,
	CASE WHEN d.message_ident IS NULL THEN nextval('transaction_number_seq') END,
	CASE WHEN d.message_ident IS NULL THEN nextval('message_number_seq') END
	FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY AS w(integration_id, source_id, i)
	LEFT JOIN LATERAL (SELECT t.message_ident, t.external_message_id, k.number, b.external_reference
		FROM transactions t JOIN tickets k ON k.id = t.ticket_id JOIN bonds b ON b.id = t.bond_id
		WHERE t.integration_id = w.integration_id AND t.direction = 'Inbound' AND t.external_message_id = w.source_id
		LIMIT 1) d ON true
	ORDER BY w.i`

// inboundGroupLock finds each message's bond as lockTarget does — by our
// number, else by theirs (lowest id) — and locks the bonds and their tickets
// in bond id order, so that groups and the engine cannot deadlock on each
// other. Bonds and tickets are both looked up by id lists (with a join on
// tickets the generic plan scanned the whole table).
const inboundGroupLock = `WITH r AS MATERIALIZED (SELECT coalesce(
		(SELECT b2.id FROM bonds b2 JOIN tickets k2 ON k2.id = b2.ticket_id
		  WHERE w.tref <> '' AND b2.integration_id = w.integration_id AND k2.number = w.tref),
		(SELECT b3.id FROM bonds b3 WHERE w.sref <> '' AND b3.integration_id = w.integration_id
		  AND b3.external_reference = w.sref AND b3.external_reference <> '' ORDER BY b3.id LIMIT 1)) AS bond_id
		FROM unnest($1::bigint[], $2::text[], $3::text[]) AS w(integration_id, tref, sref))
	SELECT b.ctid, k.ctid, b.id, b.integration_id, b.internal_reference, b.external_reference, b.state, b.owner,
	b.last_inbound_at, b.next_seq, k.id, k.number, k.short_description, k.description, k.state, k.priority, k.urgency,
	k.impact, k.assignment_group, k.work_notes, k.version
	FROM bonds b JOIN tickets k ON k.id = b.ticket_id
	WHERE b.id = ANY (ARRAY(SELECT bond_id FROM r))
	  AND k.id = ANY (ARRAY(SELECT b4.ticket_id FROM bonds b4 WHERE b4.id = ANY (ARRAY(SELECT bond_id FROM r))))
	ORDER BY b.id
	FOR NO KEY UPDATE OF b, k`

// inboundGroupWrite stores a group's accepted messages: the bonds' sequences,
// histories and states, the tickets' changes, the transactions (in the state
// Received moves to), their Stages, HTTP Request records and log lines.
const inboundGroupWrite = `WITH m AS MATERIALIZED (SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[],
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
		assignment_group = u.assignment_group, work_notes = u.work_notes
	FROM unnest($31::bigint[], $32::int[], $33::text[], $34::text[], $35::text[], $36::smallint[], $37::smallint[],
		$38::smallint[], $39::text[], $40::text[])
		AS u(id, version, short_description, description, state, priority, urgency, impact, assignment_group, work_notes)
	WHERE k.ctid = ANY ($45::tid[]) AND k.id = u.id),
t AS (INSERT INTO transactions (number, message_ident, external_message_id, integration_id, bond_id, message_id,
		ticket_id, table_name, direction, state, process_state, process_error, seq, next_attempt_at, created_at,
		updated_at, finished_at)
	SELECT number, ident, ext_id, integration_id, bond_id, message_id, ticket_id, table_name, 'Inbound', state,
		process_state, process_error, seq, $1, $1, $1, finished_at FROM m
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
SELECT id, message_ident FROM t`

// applyInboundGroup runs a group in one database transaction. It sets each
// message's result, refusal or fallback; an error means nothing was stored.
func (s *Store) applyInboundGroup(ctx context.Context, group []*inboundItem) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("inbound group: %w", err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("inbound group: the database driver is %T, not pgx", dc)
		}
		pc := sc.Conn()
		err := s.applyInboundGroupOn(ctx, pc, group)
		if err != nil && pc.PgConn().TxStatus() != 'I' {
			if _, rerr := pc.Exec(ctx, "ROLLBACK"); rerr != nil {
				return errors.Join(err, driver.ErrBadConn) // database/sql drops the connection
			}
		}
		return err
	})
}

func (s *Store) applyInboundGroupOn(ctx context.Context, pc *pgx.Conn, group []*inboundItem) error {
	n := len(group)
	integ, sids, trefs, srefs := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	for i, it := range group {
		integ[i], sids[i], trefs[i], srefs[i] = it.rc.in.ID, it.rc.env.SourceID, it.rc.env.TargetReference,
			it.rc.env.SourceReference
	}

	// Round trip 1: begin, the configuration version, duplicates and numbers,
	// then the bonds locked.
	type numbers struct {
		version                          string
		dupIdent, dupExt, dupNum, dupRef pgtype.Text
		trn, msg                         pgtype.Int8
	}
	nums := make([]numbers, 0, n)
	bonds := map[int64]*groupBond{}
	var order []int64 // bond ids in lock order
	var batch pgx.Batch
	batch.Queue("BEGIN")
	// Plan these statements once per connection: left to choose, PostgreSQL
	// plans them again for almost every group of a few messages, and that
	// planning cost more than the rest of a small group's work.
	batch.Queue("SET LOCAL plan_cache_mode = force_generic_plan")
	batch.Queue(inboundGroupNumbers, integ, sids)
	batch.Queue(inboundGroupLock, integ, trefs, srefs)
	br := pc.SendBatch(ctx, &batch)
	for range 2 {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return fmt.Errorf("inbound group: begin: %w", err)
		}
	}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var r numbers
			if err = rows.Scan(&r.version, &r.dupIdent, &r.dupExt, &r.dupNum, &r.dupRef, &r.trn, &r.msg); err != nil {
				break
			}
			nums = append(nums, r)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		_ = br.Close()
		return fmt.Errorf("inbound group: numbers: %w", err)
	}
	rows, err = br.Query()
	if err == nil {
		for rows.Next() {
			gb := &groupBond{}
			tg, k := &gb.target, &gb.ticket
			var prio, urg, imp int16
			if err = rows.Scan(&gb.bondTID, &gb.ticketTID, &tg.BondID, &gb.integrationID, &tg.InternalReference, &tg.ExternalReference,
				&tg.BondState, &tg.Owner, &tg.LastInboundAt, &gb.nextSeq, &k.ID, &k.Number, &k.ShortDescription,
				&k.Description, &k.State, &prio, &urg, &imp, &k.AssignmentGroup, &k.WorkNotes, &k.Version); err != nil {
				break
			}
			k.Priority, k.Urgency, k.Impact = int(prio), int(urg), int(imp)
			tg.TicketID, gb.origExternal = k.ID, tg.ExternalReference
			bonds[tg.BondID] = gb
			order = append(order, tg.BondID)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err == nil {
		err = br.Close()
	} else {
		_ = br.Close()
	}
	if err != nil {
		return fmt.Errorf("inbound group: lock bonds: %w", err)
	}
	if len(nums) != n {
		return fmt.Errorf("inbound group: %d numbers for %d messages", len(nums), n)
	}
	version := nums[0].version
	s.noteInboundVersion(version)

	// Each message in arrival order, as updateTx decides it, on the bonds and
	// tickets as the messages before it left them.
	now := s.now()
	var w groupWrite
	accepted := map[[2]string]*EnvelopeHeader{} // integration id and source_id of messages accepted here
	type pending struct {
		it  *inboundItem
		rec *inboundRecord
		out inboundOutcome
		tg  inboundTarget
		seq int64
	}
	var done []pending
	for i, it := range group {
		rc, nm := it.rc, nums[i]
		if it.version != version {
			it.fallback = true // checked against another configuration
			continue
		}
		if nm.dupIdent.Valid {
			it.err = rc.duplicateOf(&EnvelopeHeader{Name: "Response", TimeStamp: now.UTC(),
				SourceReference: nm.dupNum.String, TargetReference: nm.dupRef.String, SourceID: nm.dupIdent.String,
				TargetID: nm.dupExt.String})
			continue
		}
		key := [2]string{fmt.Sprint(rc.in.ID), rc.env.SourceID}
		if h, ok := accepted[key]; ok {
			orig := *h
			orig.Name, orig.TimeStamp = "Response", now.UTC()
			it.err = rc.duplicateOf(&orig)
			continue
		}
		gb := findGroupBond(bonds, order, rc.in.ID, rc.env.TargetReference, rc.env.SourceReference)
		if gb == nil {
			it.fallback = true // the full path says "Bond not found" (or finds it, now that the group committed)
			continue
		}
		tg := gb.target // a copy: decideUpdate may learn the remote reference on it
		tg.Trn, tg.Msg = nm.trn.Int64, nm.msg.Int64
		if rc.bondAllows(&tg) != nil {
			it.fallback = true // the full path refuses it, or finds it was a duplicate after all
			continue
		}
		out, updated, bondCols := rc.decideUpdate(&tg, &gb.ticket)
		rec, bondCols, err := rc.record(&tg, out, bondCols, now)
		if err != nil {
			return err
		}
		gb.apply(rec, bondCols, updated, now)
		done = append(done, pending{it: it, rec: rec, out: out, tg: tg, seq: gb.nextSeq})
		w.addMessage(rc, &tg, rec, out, gb.nextSeq)
		accepted[key] = &rec.resp.Message
	}
	if len(done) == 0 { // nothing to write: duplicates and fallbacks only
		if _, err := pc.Exec(ctx, "COMMIT"); err != nil {
			return fmt.Errorf("inbound group: commit: %w", err)
		}
		return nil
	}
	for _, id := range order {
		if gb := bonds[id]; gb.used {
			w.addBond(gb)
		}
	}

	// Round trip 2: the write, the engine's wake-up, COMMIT.
	s.inbound.writing.Lock()
	defer s.inbound.writing.Unlock()
	if f := s.inbound.beforeWriteFunc; f != nil {
		f()
	}
	batch = pgx.Batch{}
	batch.Queue(inboundGroupWrite, w.args(now)...)
	if w.notify {
		batch.Queue("SELECT pg_notify($1, '')", NotifyChannel)
	}
	batch.Queue("COMMIT")
	br = pc.SendBatch(ctx, &batch)
	ids := make(map[string]int64, len(done))
	rows, err = br.Query()
	if err == nil {
		for rows.Next() {
			var id int64
			var ident string
			if err = rows.Scan(&id, &ident); err != nil {
				break
			}
			ids[ident] = id
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err == nil && w.notify {
		_, err = br.Exec()
	}
	if err == nil {
		var tag pgconn.CommandTag
		tag, err = br.Exec()
		if err == nil && tag.String() != "COMMIT" {
			err = fmt.Errorf("the transaction ended with %s", tag)
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("inbound group: write: %w", err)
	}

	for _, p := range done {
		rc, rec, out := p.it.rc, p.rec, p.out
		t := &Transaction{ID: ids[rec.ident], Number: rec.number, MessageIdent: rec.ident,
			ExternalMessageID: rc.env.SourceID, IntegrationID: rc.in.ID, BondID: p.tg.BondID, MessageID: rc.msg.ID,
			TicketID: p.tg.TicketID, TableName: rc.cfg.TicketTable, Direction: Inbound, State: rec.to,
			ProcessState: out.process, ProcessError: out.processError, Seq: p.seq, NextAttemptAt: now, CreatedAt: now,
			UpdatedAt: now, FinishedAt: rec.finished}
		p.it.res = &InboundResult{Transaction: t, Response: rec.resp, Body: rec.body, Applied: out.applied}
	}
	return nil
}

// findGroupBond finds a message's bond among the locked ones as lockTarget
// does: our ticket number, else their reference (lowest bond id). It returns
// nil when there is none, or when a message earlier in the group taught a
// bond the same remote reference (the one-message path, after the group,
// decides then).
func findGroupBond(bonds map[int64]*groupBond, order []int64, integrationID int64, tref, sref string) *groupBond {
	if tref != "" {
		for _, id := range order {
			if gb := bonds[id]; gb.integrationID == integrationID && gb.ticket.Number == tref {
				return gb
			}
		}
	}
	if sref == "" {
		return nil
	}
	var asLocked, now *groupBond
	for _, id := range order { // ascending ids
		gb := bonds[id]
		if gb.integrationID != integrationID {
			continue
		}
		if asLocked == nil && gb.origExternal == sref {
			asLocked = gb
		}
		if now == nil && gb.target.ExternalReference == sref {
			now = gb
		}
	}
	if asLocked != now {
		return nil
	}
	return asLocked
}

// apply records on the bond and its ticket what one message did.
func (gb *groupBond) apply(rec *inboundRecord, bondCols map[string]any, updated *Ticket, now time.Time) {
	gb.used = true
	gb.nextSeq++
	if rec.history {
		gb.history.WriteString(inboundHistoryLine(now, rec.what))
	}
	if v, ok := bondCols["process_error"].(string); ok {
		gb.processError = &v
	}
	if v, ok := bondCols["last_inbound_at"].(time.Time); ok {
		gb.lastInboundAt = &v
		gb.target.LastInboundAt = &v
	}
	if v, ok := bondCols["state"].(BondState); ok {
		gb.stateSet = &v
		gb.target.BondState = v
	}
	if v, ok := bondCols["external_reference"].(string); ok {
		gb.externalReferenced = &v
		gb.target.ExternalReference = v
	}
	if updated != nil {
		version := gb.ticket.Version + 1
		gb.ticket = *updated
		gb.ticket.Version = version
		gb.ticketChanged = true
	}
}

// groupWrite collects the arrays of inboundGroupWrite.
type groupWrite struct {
	number, ident, extID, tableName, perror, stage, method, url, reqHeaders, reqBody, respBody []string
	integ, bond, message, ticket, seq                                                          []int64
	state, process                                                                             []int16
	finished                                                                                   []pgtype.Timestamptz
	duration                                                                                   []pgtype.Int4
	logLevel, logLine                                                                          []pgtype.Text
	notify                                                                                     bool

	bTID, kTID                 []pgtype.TID
	bID, bSeq                  []int64
	bHistory                   []string
	bPerror, bState, bExternal []pgtype.Text
	bLastInbound               []pgtype.Timestamptz
	kID                        []int64
	kVersion                   []int32
	kShort, kDesc, kState      []string
	kPrio, kUrg, kImp          []int16
	kGroup, kNotes             []string
}

func (w *groupWrite) addMessage(rc *inboundCall, tg *inboundTarget, rec *inboundRecord, out inboundOutcome, seq int64) {
	method, url, headers, body := rc.requestParts()
	w.number = append(w.number, rec.number)
	w.ident = append(w.ident, rec.ident)
	w.extID = append(w.extID, rc.env.SourceID)
	w.integ = append(w.integ, rc.in.ID)
	w.bond = append(w.bond, tg.BondID)
	w.message = append(w.message, rc.msg.ID)
	w.ticket = append(w.ticket, tg.TicketID)
	w.tableName = append(w.tableName, rc.cfg.TicketTable)
	w.state = append(w.state, int16(rec.to))
	w.process = append(w.process, int16(out.process))
	w.perror = append(w.perror, out.processError)
	w.seq = append(w.seq, seq)
	fin := pgtype.Timestamptz{}
	if rec.finished != nil {
		fin = pgtype.Timestamptz{Time: *rec.finished, Valid: true}
	}
	w.finished = append(w.finished, fin)
	w.stage = append(w.stage, string(rec.data))
	w.method = append(w.method, method)
	w.url = append(w.url, url)
	w.reqHeaders = append(w.reqHeaders, headers)
	w.reqBody = append(w.reqBody, body)
	w.respBody = append(w.respBody, inboundStorable(rec.body))
	dur := pgtype.Int4{}
	if rec.durationMS != nil {
		dur = pgtype.Int4{Int32: int32(*rec.durationMS), Valid: true}
	}
	w.duration = append(w.duration, dur)
	if rec.logLevel != "" {
		w.logLevel = append(w.logLevel, pgtype.Text{String: rec.logLevel, Valid: true})
		w.logLine = append(w.logLine, pgtype.Text{String: rec.what, Valid: true})
	} else {
		w.logLevel = append(w.logLevel, pgtype.Text{})
		w.logLine = append(w.logLine, pgtype.Text{})
	}
	w.notify = w.notify || rec.to == SendingReceipt
}

func groupText(p *string) pgtype.Text {
	if p == nil {
		return pgtype.Text{}
	}
	return pgtype.Text{String: *p, Valid: true}
}

func (w *groupWrite) addBond(gb *groupBond) {
	w.bTID = append(w.bTID, gb.bondTID)
	w.bID = append(w.bID, gb.target.BondID)
	w.bSeq = append(w.bSeq, gb.nextSeq)
	w.bHistory = append(w.bHistory, gb.history.String())
	w.bPerror = append(w.bPerror, groupText(gb.processError))
	var st *string
	if gb.stateSet != nil {
		v := string(*gb.stateSet)
		st = &v
	}
	w.bState = append(w.bState, groupText(st))
	w.bExternal = append(w.bExternal, groupText(gb.externalReferenced))
	last := pgtype.Timestamptz{}
	if gb.lastInboundAt != nil {
		last = pgtype.Timestamptz{Time: *gb.lastInboundAt, Valid: true}
	}
	w.bLastInbound = append(w.bLastInbound, last)
	if gb.ticketChanged {
		k := &gb.ticket
		w.kTID = append(w.kTID, gb.ticketTID)
		w.kID = append(w.kID, k.ID)
		w.kVersion = append(w.kVersion, int32(k.Version))
		w.kShort = append(w.kShort, k.ShortDescription)
		w.kDesc = append(w.kDesc, k.Description)
		w.kState = append(w.kState, k.State)
		w.kPrio = append(w.kPrio, int16(k.Priority))
		w.kUrg = append(w.kUrg, int16(k.Urgency))
		w.kImp = append(w.kImp, int16(k.Impact))
		w.kGroup = append(w.kGroup, k.AssignmentGroup)
		w.kNotes = append(w.kNotes, k.WorkNotes)
	}
}

func (w *groupWrite) args(now time.Time) []any {
	return []any{now,
		w.number, w.ident, w.extID, w.integ, w.bond, w.message, w.ticket, w.tableName, w.state, w.process, w.perror,
		w.seq, w.finished, w.stage, w.method, w.url, w.reqHeaders, w.reqBody, w.respBody, w.duration, w.logLevel,
		w.logLine,
		w.bID, w.bSeq, w.bHistory, w.bPerror, w.bLastInbound, w.bState, w.bExternal,
		w.kID, w.kVersion, w.kShort, w.kDesc, w.kState, w.kPrio, w.kUrg, w.kImp, w.kGroup, w.kNotes,
		int16(RequestOK), inboundResponseHeaders, string(LogTransactionRecv), w.bTID, w.kTID}
}
