package inbound

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"unifi/models"
	"unifi/models/inbound/httprecord"
	"unifi/models/inbound/inboundsql"
	"unifi/models/queue"
)

// Group commit for inbound updates. Concurrent update messages are applied
// together: one database transaction, three set-based statements and two
// round trips for the whole group, instead of a transaction of six round
// trips each. Each message is still decided on its own, in arrival order,
// exactly as the one-message path decides it (updateTx: the same rules, the
// same texts, the same rows); only the writing is shared.
//
// Requests queue their messages; a committer goroutine, started by the first
// request that finds none running, applies them group after group on one
// connection until the queue is empty, then ends (it is not a background
// worker: it lives as long as requests wait for it, and Store.Wait joins it).
// A group is everything waiting when the previous one was decided, up to
// Opts.BatchMax messages, so the busier the API, the larger the
// groups. The next group's reads (its configuration version, duplicates,
// numbers and bond locks) are sent in the same round trip as the current
// group's write and COMMIT, so the database goes from one group to the next
// without waiting for this process. One group at a time: with two at once,
// each was smaller and a message cost more database CPU (docs/inbound.md).
//
// What a group does not decide itself goes back to its request, which then
// takes the full one-message path after the group committed: a message whose
// configuration version is not the database's, whose bond is not found, whose
// bond rules refuse it, and every message of a group that fails as a whole (a
// concurrent copy caught by the unique index, a deadlock, a lost connection).
// A group refuses nothing but duplicates, and answers nothing before its
// COMMIT returned.

// defaultInboundBatchMax is the default of Opts.BatchMax.
const defaultInboundBatchMax = 64

// inboundBatchTimeout bounds one round trip of a group.
const inboundBatchTimeout = 30 * time.Second

// inboundLockTimeout bounds a group's wait for a row lock held elsewhere
// (PostgreSQL's lock_timeout on the committer's connection). Bonds and
// tickets are locked for milliseconds (inbound messages, receipts, the
// engine's results, ticket edits); a longer wait is someone else's long
// transaction, and the group's messages then take the one-message path.
const inboundLockTimeout = 2 * time.Second

// inboundItem is one update message in a group.
type inboundItem struct {
	ctx     context.Context
	rc      *inboundCall
	version string // configuration version its checks were made against

	// Set by the committer before done is closed.
	res      *Result
	err      error
	fallback bool // take the full path
	done     chan struct{}
	finished bool // done is closed
}

// inboundBatcher queues update messages for the committer.
type inboundBatcher struct {
	mu      sync.Mutex
	queue   []*inboundItem
	running bool          // a committer is running; it sets this false when it finds the queue empty
	ended   chan struct{} // closed when the last committer started has returned
}

// inboundState is the Service's inbound machinery: the configuration snapshot
// and the group committer.
type inboundState struct {
	cache    inboundCache
	batcher  inboundBatcher
	batchMax int
	// lockTimeout bounds a group's waits for row locks (inboundLockTimeout).
	lockTimeout time.Duration
	// beforeWriteFunc, when set (tests), runs after a group decided and
	// before it writes.
	beforeWriteFunc func()
}

// Wait returns once the inbound committer has ended: after the HTTP server
// shut down, no request waits for it, and it ends when its queue is empty.
func (s *Service) Wait() {
	if s.inbound == nil {
		return
	}
	b := &s.inbound.batcher
	for {
		b.mu.Lock()
		ended := b.ended
		b.mu.Unlock()
		if ended == nil {
			return
		}
		<-ended
		b.mu.Lock()
		last := b.ended == ended
		b.mu.Unlock()
		if last {
			return
		}
	}
}

// applyGrouped applies it in a group and returns its outcome; fallback means
// the caller must take the full path.
func (s *Service) applyGrouped(it *inboundItem) (*Result, bool, error) {
	s.enqueueInbound(it)
	<-it.done
	return it.res, it.fallback, it.err
}

// enqueueInbound queues items (together: in one group, unless the queue
// holds more than BatchMax messages), starting a committer when none
// runs.
func (s *Service) enqueueInbound(items ...*inboundItem) {
	b := &s.inbound.batcher
	for _, it := range items {
		it.done = make(chan struct{})
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, items...)
	if !b.running {
		b.running = true
		ended := make(chan struct{})
		b.ended = ended
		// The committer serves other requests too: this one's cancellation
		// must not end it.
		ctx := context.WithoutCancel(items[0].ctx)
		go func() {
			defer close(ended)
			s.inboundCommitter(ctx)
		}()
	}
}

// takeInbound takes the next group from the queue, leaving out (and
// answering) messages whose request is gone. With stop, an empty queue ends
// the committer: it returns nil and the next request starts a new one.
func (s *Service) takeInbound(stop bool) []*inboundItem {
	b := &s.inbound.batcher
	for {
		b.mu.Lock()
		if len(b.queue) == 0 {
			if stop {
				b.running = false
			}
			b.mu.Unlock()
			return nil
		}
		n := min(len(b.queue), s.inbound.batchMax)
		group := append([]*inboundItem(nil), b.queue[:n]...)
		b.queue = append(b.queue[:0:0], b.queue[n:]...)
		b.mu.Unlock()
		live := group[:0]
		for _, it := range group {
			if err := it.ctx.Err(); err != nil {
				it.err = err
				it.finished = true
				close(it.done)
				continue
			}
			live = append(live, it)
		}
		if len(live) > 0 {
			return live
		}
	}
}

// finishInbound answers a group's messages not answered yet; with fallback,
// they take the full path.
func finishInbound(group []*inboundItem, fallback bool) {
	for _, it := range group {
		if it.finished {
			continue
		}
		if fallback {
			it.res, it.err, it.fallback = nil, nil, true
		}
		it.finished = true
		close(it.done)
	}
}

// inboundCommitter applies groups until the queue is empty. A connection
// that fails sends the groups in flight to the full path; the next group
// gets a new connection.
func (s *Service) inboundCommitter(ctx context.Context) {
	for {
		group := s.takeInbound(true)
		if group == nil {
			return
		}
		if s.inboundChain(ctx, group) {
			return
		}
	}
}

// inboundChain applies group and the groups after it on one connection. It
// reports whether it ended the committer (the queue was empty).
func (s *Service) inboundChain(ctx context.Context, group []*inboundItem) (stopped bool) {
	sqlDB, err := s.db.DB()
	if err != nil {
		finishInbound(group, true)
		return false
	}
	cctx, cancel := context.WithTimeout(ctx, inboundBatchTimeout)
	conn, err := sqlDB.Conn(cctx)
	cancel()
	if err != nil {
		finishInbound(group, true)
		return false
	}
	defer conn.Close()
	_ = conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok { // not pgx: every message takes the full path
			finishInbound(group, true)
			return nil
		}
		pc := sc.Conn()
		// For this connection's chain only (RESET below): plan the group's
		// statements once per connection — left to choose, PostgreSQL plans
		// them again for almost every group of a few messages, and that
		// planning cost more than the rest of a small group's work — and
		// bound lock waits: a bond locked elsewhere for long would hold up
		// every message behind it, so the group gives up and its messages
		// take the one-message path, where only that bond's message waits.
		lockTimeout := strconv.FormatInt(s.inbound.lockTimeout.Milliseconds(), 10)
		if err := execShort(ctx, pc, inboundsql.GroupConnSet, lockTimeout); err != nil {
			finishInbound(group, true)
			return driver.ErrBadConn
		}
		var err error
		stopped, err = s.inboundChainOn(ctx, pc, group)
		if err != nil && !pc.IsClosed() && pc.PgConn().TxStatus() != 'I' {
			if rerr := execShort(ctx, pc, sqlRollback); rerr != nil {
				return driver.ErrBadConn // database/sql drops the connection
			}
		}
		if pc.IsClosed() || execShort(ctx, pc, inboundsql.GroupConnReset) != nil {
			return driver.ErrBadConn
		}
		return nil
	})
	return stopped
}

// sqlBegin, sqlCommit and sqlRollback delimit a group's database transaction.
const (
	sqlBegin    = `BEGIN`
	sqlCommit   = `COMMIT`
	sqlRollback = `ROLLBACK`
)

// execShort runs a statement of no result, bounded by inboundBatchTimeout.
func execShort(ctx context.Context, pc *pgx.Conn, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, inboundBatchTimeout)
	defer cancel()
	_, err := pc.Exec(ctx, sql, args...)
	return err
}

// groupStep is a batch sent to the database and the context its results
// are read under.
type groupStep struct {
	br     pgx.BatchResults
	cancel context.CancelFunc
}

func (st *groupStep) close() error {
	err := st.br.Close()
	st.cancel()
	return err
}

func (s *Service) sendGroupStep(ctx context.Context, pc *pgx.Conn, b *pgx.Batch) *groupStep {
	sctx, cancel := context.WithTimeout(ctx, inboundBatchTimeout)
	return &groupStep{br: pc.SendBatch(sctx, b), cancel: cancel}
}

// inboundChainOn is inboundChain's loop on a pgx connection. Every message
// it was given or took is answered when it returns; an error means the
// connection may be in a transaction.
func (s *Service) inboundChainOn(ctx context.Context, pc *pgx.Conn, group []*inboundItem) (stopped bool, err error) {
	var next []*inboundItem
	defer func() {
		if r := recover(); r != nil { // a bug here must not leave requests waiting or end the process
			finishInbound(group, true)
			finishInbound(next, true)
			stopped, err = false, fmt.Errorf("inbound group: panic: %v", r)
		}
	}()
	var b pgx.Batch
	queueGroupReads(&b, group)
	step := s.sendGroupStep(ctx, pc, &b)
	for {
		// The group's reads: begin, configuration version, duplicates,
		// numbers, bonds locked.
		g, err := readGroup(step.br, group)
		if cerr := step.close(); err == nil {
			err = cerr
		}
		if err != nil {
			finishInbound(group, true)
			return false, err
		}
		w := s.decideGroup(g, group)

		// One round trip: the group's write and COMMIT, then the next
		// group's reads.
		next = s.takeInbound(false)
		b = pgx.Batch{}
		if len(w.done) > 0 {
			if f := s.inbound.beforeWriteFunc; f != nil {
				f()
			}
			b.Queue(inboundsql.GroupWrite, w.args(g.now)...)
		}
		b.Queue(sqlCommit)
		queueGroupReads(&b, next)
		step = s.sendGroupStep(ctx, pc, &b)
		if err := readGroupWrite(step.br, w); err != nil {
			_ = step.close()
			finishInbound(group, true)
			finishInbound(next, true) // its reads came after the failed write: not run
			return false, err
		}
		w.finish(g.now)
		finishInbound(group, false)
		if len(next) == 0 {
			if err := step.close(); err != nil {
				return false, err
			}
			if next = s.takeInbound(true); next == nil {
				return true, nil
			}
			b = pgx.Batch{}
			queueGroupReads(&b, next)
			step = s.sendGroupStep(ctx, pc, &b)
		}
		group = next
	}
}

// groupBond is a locked bond with its ticket, as the group's messages leave them.
type groupBond struct {
	integrationID      int64
	target             inboundTarget // current values
	origExternal       string        // external_reference as locked
	nextSeq            int64
	ticket             models.Ticket
	bondTID, ticketTID pgtype.TID // where the locked rows are: the write finds them without an index
	ticketChanged      bool
	used               bool // a message of the group landed on it
	history            strings.Builder
	processError       *string
	lastInboundAt      *time.Time
	stateSet           *models.BondState
	externalReferenced *string
}

// queueGroupReads queues a group's reads: begin, the configuration version,
// duplicates and numbers, then the bonds locked. Nothing for no group.
func queueGroupReads(b *pgx.Batch, group []*inboundItem) {
	if len(group) == 0 {
		return
	}
	n := len(group)
	integ, sids, trefs, srefs := make([]int64, n), make([]string, n), make([]string, n), make([]string, n)
	for i, it := range group {
		integ[i], sids[i], trefs[i], srefs[i] = it.rc.in.ID, it.rc.env.SourceID, it.rc.env.TargetReference,
			it.rc.env.SourceReference
	}
	b.Queue(sqlBegin)
	b.Queue(inboundsql.GroupNumbers, integ, sids)
	b.Queue(inboundsql.GroupLock, integ, trefs, srefs)
}

// groupNumbers is one message's row of inboundsql.GroupNumbers.
type groupNumbers struct {
	version                          string
	dupIdent, dupExt, dupNum, dupRef pgtype.Text
	dupAnswer                        pgtype.Text // the body we answered the original with
	trn, msg                         pgtype.Int8
}

// groupRead is what a group's reads found.
type groupRead struct {
	nums  []groupNumbers
	bonds map[int64]*groupBond
	order []int64 // bond ids in lock order
	now   time.Time
}

// readGroup reads the results of queueGroupReads.
func readGroup(br pgx.BatchResults, group []*inboundItem) (*groupRead, error) {
	g := &groupRead{nums: make([]groupNumbers, 0, len(group)), bonds: map[int64]*groupBond{}}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("inbound group: begin: %w", err)
	}
	rows, err := br.Query()
	if err == nil {
		for rows.Next() {
			var r groupNumbers
			if err = rows.Scan(&r.version, &r.dupIdent, &r.dupExt, &r.dupNum, &r.dupRef, &r.dupAnswer, &r.trn, &r.msg); err != nil {
				break
			}
			g.nums = append(g.nums, r)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("inbound group: numbers: %w", err)
	}
	rows, err = br.Query()
	if err == nil {
		for rows.Next() {
			gb := &groupBond{}
			tg, k := &gb.target, &gb.ticket
			var prio, urg, imp int16
			if err = rows.Scan(&gb.bondTID, &gb.ticketTID, &tg.BondID, &gb.integrationID, &tg.InternalReference,
				&tg.ExternalReference, &tg.BondState, &tg.Owner, &tg.LastInboundAt, &gb.nextSeq, &k.ID, &k.Number,
				&k.ShortDescription, &k.Description, &k.State, &prio, &urg, &imp, &k.AssignmentGroup, &k.WorkNotes,
				&k.Version, &k.FieldStamps); err != nil {
				break
			}
			k.Priority, k.Urgency, k.Impact = int(prio), int(urg), int(imp)
			tg.TicketID, gb.origExternal = k.ID, tg.ExternalReference
			g.bonds[tg.BondID] = gb
			g.order = append(g.order, tg.BondID)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("inbound group: lock bonds: %w", err)
	}
	if len(g.nums) != len(group) {
		return nil, fmt.Errorf("inbound group: %d numbers for %d messages", len(g.nums), len(group))
	}
	return g, nil
}

// decideGroup decides each message in arrival order, as updateTx decides it,
// on the bonds and tickets as the messages before it left them. Duplicates
// and fallbacks get their outcome at once; the others are in the write.
func (s *Service) decideGroup(g *groupRead, group []*inboundItem) *groupWrite {
	version := g.nums[0].version
	s.noteInboundVersion(version)
	g.now = s.now()
	now := g.now
	w := newGroupWrite(len(group))
	accepted := map[groupKey]*models.EnvelopeHeader{} // messages accepted in this group
	for i, it := range group {
		rc, nm := it.rc, g.nums[i]
		if it.version != version {
			it.fallback = true // checked against another configuration
			continue
		}
		if mapsCustom(rc.cfg.Fields) || mapsCustom(rc.cfg.ResponseFields) {
			it.fallback = true // the one-message path reads and writes the ticket's custom values
			continue
		}
		if nm.dupIdent.Valid {
			it.err = rc.duplicateOf(firstAnswered(nm.dupAnswer.String, &models.EnvelopeHeader{Name: "Response",
				TimeStamp: now.UTC(), SourceReference: nm.dupNum.String, TargetReference: nm.dupRef.String,
				SourceID: nm.dupIdent.String, TargetID: nm.dupExt.String}))
			continue
		}
		key := groupKey{rc.in.ID, rc.env.SourceID}
		if h, ok := accepted[key]; ok {
			orig := *h // the header this group answered it with
			it.err = rc.duplicateOf(&orig)
			continue
		}
		gb := findGroupBond(g.bonds, g.order, rc.in.ID, rc.env.TargetReference, rc.env.SourceReference)
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
		if len(out.conflicts) > 0 {
			// Concurrent edits are rare: the one-message path, after the
			// group, decides it again and records them. A sender has one
			// message in flight per bond, so no later message of this bond
			// is in the group to overtake it.
			it.fallback = true
			continue
		}
		answered := &gb.ticket // the answer's data: the ticket as the message leaves it
		if updated != nil {
			answered = updated
		}
		rec, bondCols, err := rc.record(&tg, out, bondCols, now, answered)
		if err != nil {
			it.fallback = true // the full path reports it
			continue
		}
		gb.apply(rec, bondCols, updated, now)
		w.addMessage(it, &tg, rec, out, gb.nextSeq)
		accepted[key] = &rec.resp.Message
	}
	for _, id := range g.order {
		if gb := g.bonds[id]; gb.used {
			w.addBond(gb)
		}
	}
	return w
}

// groupKey is an integration and a sender's Message ID.
type groupKey struct {
	integrationID int64
	sourceID      string
}

// readGroupWrite reads the results of a group's write (the new
// transactions' ids) and COMMIT.
func readGroupWrite(br pgx.BatchResults, w *groupWrite) error {
	if len(w.done) > 0 {
		rows, err := br.Query()
		if err == nil {
			w.ids = make(map[string]int64, len(w.done))
			for rows.Next() {
				var id, notified int64
				var ident string
				if err = rows.Scan(&id, &ident, &notified); err != nil {
					break
				}
				w.ids[ident] = id
			}
			rows.Close()
			if err == nil {
				err = rows.Err()
			}
		}
		if err != nil {
			return fmt.Errorf("inbound group: write: %w", err)
		}
	}
	tag, err := br.Exec()
	if err == nil && tag.String() != "COMMIT" {
		err = fmt.Errorf("the transaction ended with %s", tag)
	}
	if err != nil {
		return fmt.Errorf("inbound group: commit: %w", err)
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
func (gb *groupBond) apply(rec *inboundRecord, bondCols map[string]any, updated *models.Ticket, now time.Time) {
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
	if v, ok := bondCols["state"].(models.BondState); ok {
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

// groupWrite collects the arrays of inboundsql.GroupWrite.
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
	kStamps                    []string

	done []groupDone      // the messages written, in order
	ids  map[string]int64 // their transactions' ids by Message ID, once written
}

// newGroupWrite returns a groupWrite with room for n messages.
func newGroupWrite(n int) *groupWrite {
	strs := func() []string { return make([]string, 0, n) }
	ints := func() []int64 { return make([]int64, 0, n) }
	return &groupWrite{number: strs(), ident: strs(), extID: strs(), tableName: strs(), perror: strs(), stage: strs(),
		method: strs(), url: strs(), reqHeaders: strs(), reqBody: strs(), respBody: strs(),
		integ: ints(), bond: ints(), message: ints(), ticket: ints(), seq: ints(),
		state: make([]int16, 0, n), process: make([]int16, 0, n), finished: make([]pgtype.Timestamptz, 0, n),
		duration: make([]pgtype.Int4, 0, n), logLevel: make([]pgtype.Text, 0, n), logLine: make([]pgtype.Text, 0, n),
		done: make([]groupDone, 0, n)}
}

// groupDone is a message the group writes, with what it answers.
type groupDone struct {
	it  *inboundItem
	rec *inboundRecord
	out inboundOutcome
	tg  inboundTarget
	seq int64
}

// finish gives each written message its result, once the group committed.
func (w *groupWrite) finish(now time.Time) {
	for _, d := range w.done {
		rc, rec, out := d.it.rc, d.rec, d.out
		t := &models.Transaction{ID: w.ids[rec.ident], Number: rec.number, MessageIdent: rec.ident,
			ExternalMessageID: rc.env.SourceID, IntegrationID: rc.in.ID, BondID: d.tg.BondID, MessageID: rc.msg.ID,
			TicketID: d.tg.TicketID, TableName: rc.cfg.TicketTable, Direction: models.Inbound, State: rec.to,
			ProcessState: out.process, ProcessError: out.processError, Seq: d.seq, NextAttemptAt: now, CreatedAt: now,
			UpdatedAt: now, FinishedAt: rec.finished}
		d.it.res = &Result{Transaction: t, Response: rec.resp, Body: rec.body, Applied: out.applied}
	}
}

func (w *groupWrite) addMessage(it *inboundItem, tg *inboundTarget, rec *inboundRecord, out inboundOutcome, seq int64) {
	rc := it.rc
	w.done = append(w.done, groupDone{it: it, rec: rec, out: out, tg: *tg, seq: seq})
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
	w.respBody = append(w.respBody, httprecord.Storable(rec.body))
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
	w.notify = w.notify || rec.to == models.SendingReceipt
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
		stamps, err := json.Marshal(k.FieldStamps.V)
		if err != nil || k.FieldStamps.V == nil {
			stamps = []byte("{}") // unreachable for a map of times and names
		}
		w.kStamps = append(w.kStamps, string(stamps))
	}
}

func (w *groupWrite) args(now time.Time) []any {
	return []any{now,
		w.number, w.ident, w.extID, w.integ, w.bond, w.message, w.ticket, w.tableName, w.state, w.process, w.perror,
		w.seq, w.finished, w.stage, w.method, w.url, w.reqHeaders, w.reqBody, w.respBody, w.duration, w.logLevel,
		w.logLine,
		w.bID, w.bSeq, w.bHistory, w.bPerror, w.bLastInbound, w.bState, w.bExternal,
		w.kID, w.kVersion, w.kShort, w.kDesc, w.kState, w.kPrio, w.kUrg, w.kImp, w.kGroup, w.kNotes,
		int16(models.RequestOK), inboundResponseHeaders, string(models.LogTransactionRecv), w.bTID, w.kTID, queue.NotifyChannel, w.notify, w.kStamps}
}
