package enginedb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/queue"
)

// The engine's side of the Store: claiming work with a lease, recording what
// a send did, rescuing expired leases and sweeping overdue receipts. The
// worker package does the HTTP; everything it decides lands here, in the
// database, so several server processes can share the work.

// Work is one claimed transaction with everything needed to send it.
type Work struct {
	Transaction models.Transaction
	Integration *models.Integration
	Connection  *models.Connection
	Message     *models.Message // the transaction's message
	Receipt     *models.Message // for Sending Receipt: the receipt message to send; nil otherwise
	Bond        *models.Bond
	Ticket      string                       // our ticket number (source_reference)
	Data        map[string]any               // the Stage data
	Stamps      *map[string]models.WireStamp // the Stage's wire stamps; nil: none
	TimeStamp   *time.Time                   // the Stage's time stamp (models.MessageStamp); nil: stamp when sent
	PendingID   int64                        // the Pending HTTP Request waiting for this attempt, or 0
	// Scripts are the message's scripts by point (docs/scripting.md); Vars the
	// active connection's variables. Both from the cached configuration.
	Scripts map[string]*models.MessageScript
	Vars    map[string]string
}

// Attempt is this attempt's number (1 for the first send).
func (w *Work) Attempt() int { return w.Transaction.Attempts + 1 }

// IsReceipt reports whether the work is a receipt for an inbound transaction.
func (w *Work) IsReceipt() bool { return w.Transaction.State == models.SendingReceipt }

// ClaimOpts configures ClaimWork.
type ClaimOpts struct {
	Owner string        // lease owner: the instance name
	Limit int           // at most this many; each value is a statement of its own (claimWorkSQL)
	Lease time.Duration // lease length; the integration's sync timeout is added
	// Config, when set, supplies integrations, connections and messages
	// (the engine caches them briefly); otherwise they are read each time.
	Config *EngineConfig
}

// EngineConfig is the configuration the engine sends with.
type EngineConfig struct {
	Integrations map[int64]*models.Integration
	Connections  map[int64]*models.Connection // active connection by integration id
	Messages     map[int64]*models.Message
	Scripts      map[int64]map[string]*models.MessageScript // by message id, then point
	Vars         map[int64]map[string]string                // by connection id
}

// LoadEngineConfig reads every integration, active connection and message.
// Configuration, so GORM (docs/architecture.md, the data-access rule): the
// pool caches it and reads it again at most every poll interval, not per
// transaction.
func (s *DB) LoadEngineConfig(ctx context.Context) (*EngineConfig, error) {
	db := s.store.DB(ctx)
	var ins []models.Integration
	var conns []models.Connection
	var msgs []models.Message
	if err := db.Find(&ins).Error; err != nil {
		return nil, fmt.Errorf("load engine config: %w", err)
	}
	if err := db.Where("active").Find(&conns).Error; err != nil {
		return nil, fmt.Errorf("load engine config: %w", err)
	}
	if err := db.Find(&msgs).Error; err != nil {
		return nil, fmt.Errorf("load engine config: %w", err)
	}
	var scripts []models.MessageScript
	if err := db.Find(&scripts).Error; err != nil {
		return nil, fmt.Errorf("load engine config: %w", err)
	}
	var vars []models.ConnectionVariable
	if err := db.Joins("JOIN connections c ON c.id = connection_variables.connection_id AND c.active").Find(&vars).Error; err != nil {
		return nil, fmt.Errorf("load engine config: %w", err)
	}
	c := &EngineConfig{Integrations: map[int64]*models.Integration{}, Connections: map[int64]*models.Connection{},
		Messages: map[int64]*models.Message{}, Scripts: map[int64]map[string]*models.MessageScript{},
		Vars: map[int64]map[string]string{}}
	for i := range scripts {
		sc := &scripts[i]
		if c.Scripts[sc.MessageID] == nil {
			c.Scripts[sc.MessageID] = map[string]*models.MessageScript{}
		}
		c.Scripts[sc.MessageID][sc.Point] = sc
	}
	for _, v := range vars {
		if c.Vars[v.ConnectionID] == nil {
			c.Vars[v.ConnectionID] = map[string]string{}
		}
		c.Vars[v.ConnectionID][v.Name] = v.Value
	}
	for i := range ins {
		c.Integrations[ins[i].ID] = &ins[i]
	}
	for i := range conns {
		if err := s.store.OpenSecret(&conns[i]); err != nil {
			return nil, fmt.Errorf("load engine config: %w", err)
		}
		c.Connections[conns[i].IntegrationID] = &conns[i]
	}
	for i := range msgs {
		c.Messages[msgs[i].ID] = &msgs[i]
	}
	return c, nil
}

// claimedRow is a claimed transaction with its stage, bond and waiting retry.
type claimedRow struct {
	models.Transaction
	StageData         models.JSON[map[string]any]
	StageStamps       *map[string]models.WireStamp
	StageTimeStamp    *time.Time
	InternalReference string
	ExternalReference string
	PendingID         *int64
}

// ClaimWork claims up to Limit transactions that are due (Sending or Sending
// Receipt, next attempt due, no lease, integration Active — or Paused for
// receipts — with an active connection) with one FOR UPDATE SKIP LOCKED
// statement that also sets the lease and returns, with each, its Stage data,
// its bond's references and its waiting retry request.
func (s *DB) ClaimWork(ctx context.Context, o ClaimOpts) ([]*Work, error) {
	rows, err := s.readWork(ctx, claimWorkSQL(o.Limit), o.Owner, o.Lease.Seconds())
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	out, err := s.works(ctx, rows, o.Config)
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	return out, nil
}

// claimWorkSQL is ClaimWork's statement for a limit: due and lease expiry
// are the database's now(), never the claiming process's clock
// (docs/engine.md, "Whose clock"). $1 owner, $2 lease seconds.
//
// Everything that shapes the plan is a literal (the states, the limit), so
// after its first executions PostgreSQL keeps one generic plan per limit
// and plans no more. With the states and the limit as parameters each claim
// was planned afresh: 0.6 ms of planning against 0.08 ms of execution on an
// idle machine, and under the latency bench's load 8.9 s of planning in a
// 14 s window (7,000 claims of 1.9 rows; pg_stat_statements with
// track_planning, docs/engine.md). A generic plan with the states literal
// but the limit a parameter was worse than planning: PostgreSQL plans an
// unknown LIMIT for a tenth of the rows and sorted every claimable one. So
// each limit is its own prepared statement: keep the limits asked few
// (worker.claimLimit rounds them to fifths of a batch).
//
// It sets the lease only: moving the due time to the lease's expiry as well
// (as chained work does), so that the next claim's walk skips the work in
// flight, made the claim a non-HOT update (next_attempt_at is in
// transactions_claimable) and bought nothing measurable: alternating runs on
// a quiet machine, WAL per transaction +1.5-3 % (delivery), +6 % (drain),
// +13 % (latency load), latency p50 15.8 and 15.2 ms against 16.0 and 13.3
// (bench/results/engine-claim-due.txt).
func claimWorkSQL(limit int) string {
	return `WITH due AS (
			SELECT t.id, i.sync_timeout_s FROM transactions t
			JOIN integrations i ON i.id = t.integration_id
			WHERE t.state IN (` + pg.StateSQL(models.Sending, models.SendingReceipt) + `) AND t.next_attempt_at <= now()
			  AND t.lease_owner IS NULL
			  AND (i.state = '` + string(models.IntegrationActive) + `'
			       OR (t.state = ` + pg.StateSQL(models.SendingReceipt) + ` AND i.state = '` + string(models.IntegrationPaused) + `'))
			  AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = t.integration_id AND c.active)
			ORDER BY t.next_attempt_at, t.id
			LIMIT ` + strconv.Itoa(max(limit, 0)) + `
			FOR UPDATE OF t SKIP LOCKED),
		claimed AS (
			UPDATE transactions t SET lease_owner = $1,
				lease_expires_at = now() + make_interval(secs => $2::float8 + due.sync_timeout_s)
			FROM due WHERE t.id = due.id
			RETURNING t.*)
		` + fmt.Sprintf(workSelect, "claimed")
}

// workSelect reads claimed transactions (the relation named by %s) with their
// Stage data, bond references and waiting retry request, in the columns
// readWork scans. Only a transaction attempted before can have a retry
// waiting (recordRequests writes it with the failed attempt): a first attempt,
// nearly every row, skips the probe of http_requests.
var workSelect = `SELECT ` + pg.QualifiedTransactionColumns("c") + `,
			s.data, s.stamps, s.time_stamp, b.internal_reference, b.external_reference,
			CASE WHEN c.attempts > 0 THEN (SELECT h.id FROM http_requests h WHERE h.transaction_id = c.id AND h.state = ` +
	strconv.Itoa(int(models.RequestPending)) + ` ORDER BY h.id LIMIT 1) END
		FROM %s c
		JOIN bonds b ON b.id = c.bond_id
		LEFT JOIN stages s ON s.transaction_id = c.id
		ORDER BY c.id`

// readWork runs a query of workSelect's columns through pgx, scanning by
// position (GORM's reflection was a tenth of the engine's CPU).
func (s *DB) readWork(ctx context.Context, query string, args ...any) ([]claimedRow, error) {
	var out []claimedRow
	var rb pg.Batch
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		defer rows.Close()
		targets := make([]any, 0, 32)
		for rows.Next() {
			out = append(out, claimedRow{})
			r := &out[len(out)-1]
			var data, stamps []byte
			targets = append(pg.TransactionFields(targets[:0], &r.Transaction), &data, &stamps, &r.StageTimeStamp, &r.InternalReference,
				&r.ExternalReference, &r.PendingID)
			if err := rows.Scan(targets...); err != nil {
				return err
			}
			if err := r.setStage(data, stamps); err != nil {
				return err
			}
		}
		return rows.Err()
	}, query, args...)
	if err := rb.Run(ctx, s.store.DB(ctx)); err != nil {
		return nil, err
	}
	return out, nil
}

// setStage decodes the Stage's data and wire stamps as stored.
func (r *claimedRow) setStage(data, stamps []byte) error {
	if data != nil {
		if err := json.Unmarshal(data, &r.StageData.V); err != nil {
			return fmt.Errorf("stage of transaction %d: %w", r.ID, err)
		}
	}
	if stamps != nil {
		m := map[string]models.WireStamp{}
		if err := json.Unmarshal(stamps, &m); err != nil {
			return fmt.Errorf("stamps of transaction %d: %w", r.ID, err)
		}
		r.StageStamps = &m
	}
	return nil
}

// HandedWork turns transactions handed over at commit (queue.Taker) into
// Work, as a claim of them would: their rows came back from the statement
// that wrote them, leased to this engine, first attempts (no retry waiting).
func (s *DB) HandedWork(ctx context.Context, handed []queue.Handed, cfg *EngineConfig) ([]*Work, error) {
	rows := make([]claimedRow, len(handed))
	for i, h := range handed {
		rows[i] = claimedRow{Transaction: h.Transaction, StageTimeStamp: h.StageTimeStamp,
			InternalReference: h.InternalReference, ExternalReference: h.ExternalReference}
		if err := rows[i].setStage(h.StageData, h.StageStamps); err != nil {
			return nil, fmt.Errorf("handed work: %w", err)
		}
	}
	work, err := s.works(ctx, rows, cfg)
	if err != nil {
		return nil, fmt.Errorf("handed work: %w", err)
	}
	return work, nil
}

// works turns claimed rows into Work, with the configuration from cfg (or
// read now when cfg is nil or lacks what a row needs).
func (s *DB) works(ctx context.Context, rows []claimedRow, cfg *EngineConfig) ([]*Work, error) {
	if len(rows) == 0 {
		return nil, nil
	}
	if cfg == nil || missingConfig(cfg, rows) {
		var err error
		if cfg, err = s.LoadEngineConfig(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]*Work, 0, len(rows))
	for i := range rows {
		r := &rows[i]
		w := &Work{Transaction: r.Transaction, Integration: cfg.Integrations[r.IntegrationID],
			Connection: cfg.Connections[r.IntegrationID], Message: cfg.Messages[r.MessageID], Data: r.StageData.V,
			Stamps: r.StageStamps, TimeStamp: r.StageTimeStamp,
			Bond:   &models.Bond{ID: r.BondID, InternalReference: r.InternalReference, ExternalReference: r.ExternalReference},
			Ticket: r.InternalReference}
		if r.PendingID != nil {
			w.PendingID = *r.PendingID
		}
		w.Scripts = cfg.Scripts[r.MessageID]
		if w.Connection != nil {
			w.Vars = cfg.Vars[w.Connection.ID]
		}
		if w.Data == nil {
			w.Data = map[string]any{}
		}
		if w.IsReceipt() && w.Message != nil && w.Message.ReceiptMessageID != nil {
			w.Receipt = cfg.Messages[*w.Message.ReceiptMessageID]
		}
		out = append(out, w)
	}
	return out, nil
}

// missingConfig reports whether a cached config lacks what rows need.
func missingConfig(c *EngineConfig, rows []claimedRow) bool {
	for _, r := range rows {
		if c.Integrations[r.IntegrationID] == nil || c.Connections[r.IntegrationID] == nil || c.Messages[r.MessageID] == nil {
			return true
		}
	}
	return false
}

// ResponseActions returns every response action, for the engine to match.
func (s *DB) ResponseActions(ctx context.Context) ([]models.ResponseAction, error) {
	var out []models.ResponseAction
	if err := s.store.DB(ctx).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list response actions: %w", err)
	}
	return out, nil
}

// MatchResponseAction picks the most specific response action for a status:
// integration and message, then integration, then the global default.
func MatchResponseAction(actions []models.ResponseAction, integrationID, messageID int64, status int) *models.ResponseAction {
	var best *models.ResponseAction
	bestScore := -1
	for i := range actions {
		a := &actions[i]
		if a.StatusCode != status {
			continue
		}
		score := 0
		if a.IntegrationID != nil {
			if *a.IntegrationID != integrationID {
				continue
			}
			score += 2
		}
		if a.MessageID != nil {
			if *a.MessageID != messageID {
				continue
			}
			score++
		}
		if score > bestScore {
			best, bestScore = a, score
		}
	}
	return best
}

// Outcome is what an attempt leads to.
type Outcome int

// Outcomes of one attempt.
const (
	OutcomeDelivered Outcome = iota // 2xx: Complete, or Awaiting Receipt for an async message
	OutcomeRetry                    // failed; another attempt after RetryDelay
	OutcomeFailed                   // failed for good: Error
)

// AttemptResult is what one send did, for RecordAttempts.
type AttemptResult struct {
	Work    *Work
	Request models.HTTPRequest // what went on the wire and what came back (state OK or Error)
	Outcome Outcome
	// OutcomeRetry: how long until the next attempt; the database adds it
	// to its now() (the worker decides the delay, never the due time).
	RetryDelay time.Duration
	Error      string // OutcomeFailed: the error in plain words
	// From a synchronous envelope answer: the remote ticket's reference.
	ExternalReference string
	// ResponseData is a 2xx answer's data when the message names a
	// response message (nil otherwise): RecordAttempts maps it onto the
	// ticket through the response message's inbound fields (response.go).
	ResponseData map[string]any
	// SetStatus, when set, is the integration status the answer implies.
	SetStatus *models.IntegrationStatus
	// What a response action sets (worker's applyActionEffects): Complete
	// makes a delivery final even for an async message (no receipt is
	// awaited); ProcessState, when set, is the transaction's process state;
	// BondNote, when set, is appended to the bond's history; Pause pauses an
	// Active integration.
	Complete     bool
	ProcessState *models.ProcessState
	BondNote     string
	Pause        bool
	// ScriptLogs are the log(...) lines of the attempt's scripts; they go in
	// the transaction log when the integration attaches logs.
	ScriptLogs []string
}

// txUpdate is one transaction's planned move (moveTransactionsSQL).
type txUpdate struct {
	ID           int64
	From         int16
	To           int16
	Attempts     int
	RetryDelayS  *float64 // next attempt due at now() + this, in the database
	ReceiptDueS  *float64 // receipt due at now() + this, in the database
	Error        string
	Finished     bool
	ProcessState *int16 // NULL: unchanged
}

// RecordAttempts stores the results of a batch of sends in one database
// transaction: every attempt becomes an HTTP Request record; transactions
// move with guarded updates (a transaction changed meanwhile, e.g. ignored by
// an operator, keeps its new state); bonds are locked before their queue
// changes and the next queued transaction of each finished one is released.
// It returns the ids of transactions whose guarded update applied.
//
// next chains the caller's next batch: up to next.Limit of the transactions
// released here are leased to next.Owner by the statement that releases them
// (claimed without a claim of their own) and returned as Work, to be sent
// next; the rest wait for any engine's claim. next.Owner is also the owner
// whose leases the results were claimed under.
func (s *DB) RecordAttempts(ctx context.Context, results []AttemptResult, next ClaimOpts) ([]int64, []*Work, error) {
	if len(results) == 0 {
		return nil, nil, nil
	}
	var rec *recording
	err := s.store.DB(ctx).Transaction(func(tx *gorm.DB) error {
		rec = &recording{tx: tx, results: results, owner: next.Owner}
		return rec.run(next)
	})
	if err != nil {
		return nil, nil, fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	if len(rec.leased) == 0 {
		return rec.applied, nil, nil
	}
	work, err := s.leasedWork(ctx, rec.leased, next)
	if err != nil {
		return rec.applied, nil, fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	return rec.applied, work, nil
}

// recording is one RecordAttempts database transaction, step by step.
type recording struct {
	tx      *gorm.DB
	results []AttemptResult
	owner   string
	ups     []txUpdate     // per result: its guarded move
	ok      map[int64]bool // transactions whose move applied
	applied []int64        // the same, in the order the database returned them
	logs    []models.TransactionLog
	leased  []int64 // released and leased to owner: the chained work
}

// run is the steps in order: bond locks first (the lock order), the moves,
// what follows from them, the release of the next transactions, the logs and
// the integration status.
func (r *recording) run(next ClaimOpts) error {
	if err := r.lockBonds(); err != nil {
		return err
	}
	if err := r.planMoves(); err != nil {
		return err
	}
	if err := r.moveTransactions(); err != nil {
		return err
	}
	if err := r.settleItems(); err != nil {
		return err
	}
	if err := recordRequests(r.tx, r.results, r.ok); err != nil {
		return err
	}
	release, statusUp, statusNow, err := r.deliveries()
	if err != nil {
		return err
	}
	if err := r.applyResponses(); err != nil {
		return err
	}
	if err := r.releaseNext(release, next); err != nil {
		return err
	}
	if err := pg.InsertLogs(r.tx, r.logs); err != nil {
		return err
	}
	if err := r.actionEffects(); err != nil {
		return err
	}
	// No NOTIFY here: queue.Release woke the engines for what it released
	// unleased.
	return r.setStatuses(statusUp, statusNow)
}

// lockBonds locks the bonds whose queue changes, in id order (no deadlocks).
func (r *recording) lockBonds() error {
	var bondIDs []int64
	for _, res := range r.results {
		if (res.Outcome == OutcomeDelivered && !res.Work.IsReceipt()) || res.BondNote != "" {
			bondIDs = append(bondIDs, res.Work.Transaction.BondID)
		}
	}
	return queue.LockBonds(r.tx, bondIDs)
}

// planMoves decides each transaction's move with the state machine.
func (r *recording) planMoves() error {
	r.ups = make([]txUpdate, 0, len(r.results))
	for _, res := range r.results {
		t := res.Work.Transaction
		u := txUpdate{ID: t.ID, From: int16(t.State), Attempts: t.Attempts + 1}
		var ev models.Event
		switch {
		case res.Outcome == OutcomeDelivered && res.Work.IsReceipt():
			ev = models.EventReceiptSent
		case res.Outcome == OutcomeDelivered && res.Work.Message.Async && !res.Complete:
			ev = models.EventDeliveredAsync
			due := res.Work.Integration.AsyncTimeout().Seconds()
			u.ReceiptDueS = &due
		case res.Outcome == OutcomeDelivered:
			ev = models.EventDelivered
		case res.Outcome == OutcomeRetry:
			ev = models.EventRetry
			d := res.RetryDelay.Seconds()
			u.RetryDelayS = &d
			u.Error = res.Error
		default:
			ev = models.EventFail
			u.Error = res.Error
		}
		if res.ProcessState != nil {
			ps := int16(*res.ProcessState)
			u.ProcessState = &ps
		}
		to, err := models.Next(t.State, ev)
		if err != nil {
			return err
		}
		u.To, u.Finished = int16(to), to.Finished()
		r.ups = append(r.ups, u)
	}
	return nil
}

// moveTransactionsSQL moves the transactions of the arrays $1 … $9 (one per
// txUpdate field) that are still in the state they were claimed in and
// leased to $10, due and expiry times from the database's now(). The
// triggers of migration 00130 record its state changes. Arrays rather than
// one JSON document: no JSON to build in Go nor to parse in PostgreSQL.
const moveTransactionsSQL = `UPDATE transactions t SET state = v.to_state, attempts = v.attempts,
				next_attempt_at = CASE WHEN v.retry_delay_s IS NULL THEN t.next_attempt_at
					ELSE now() + make_interval(secs => v.retry_delay_s) END,
				receipt_due_at = CASE WHEN v.receipt_due_s IS NULL THEN t.receipt_due_at
					ELSE now() + make_interval(secs => v.receipt_due_s) END,
				error = v.error, lease_owner = NULL, lease_expires_at = NULL,
				process_state = coalesce(v.process_state, t.process_state),
				finished_at = CASE WHEN v.finished THEN now() ELSE t.finished_at END, updated_at = now()
			FROM unnest($1::bigint[], $2::smallint[], $3::smallint[], $4::integer[], $5::float8[], $6::float8[],
				$7::text[], $8::boolean[], $9::smallint[]) AS v(id, from_state, to_state, attempts, retry_delay_s,
				receipt_due_s, error, finished, process_state)
			WHERE t.id = v.id AND t.state = v.from_state AND t.lease_owner = $10
			RETURNING t.id`

// moveTransactions applies the planned moves with one guarded statement.
func (r *recording) moveTransactions() error {
	n := len(r.ups)
	ids, attempts := make([]int64, n), make([]int32, n)
	from, to := make([]int16, n), make([]int16, n)
	retry, receipt := make([]*float64, n), make([]*float64, n)
	errs, finished, pstate := make([]string, n), make([]bool, n), make([]*int16, n)
	for i, u := range r.ups {
		ids[i], from[i], to[i], attempts[i] = u.ID, u.From, u.To, int32(u.Attempts)
		retry[i], receipt[i], errs[i], finished[i], pstate[i] = u.RetryDelayS, u.ReceiptDueS, u.Error, u.Finished, u.ProcessState
	}
	r.ok = make(map[int64]bool, n)
	err := pg.Query(r.tx, moveTransactionsSQL, func(rows *sql.Rows) error {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return err
		}
		r.ok[id] = true
		r.applied = append(r.applied, id)
		return nil
	}, pg.Array(ids), pg.Array(from), pg.Array(to), pg.Array(attempts), pg.Array(retry), pg.Array(receipt),
		pg.Array(errs), pg.Array(finished), pg.Array(pstate), r.owner)
	if err != nil {
		return fmt.Errorf("move transactions: %w", err)
	}
	return nil
}

// settleItems settles the bulk job items of the transactions that finished
// or went to Error.
func (r *recording) settleItems() error {
	var settle []queue.ItemSettle
	for i, res := range r.results {
		if !r.ok[res.Work.Transaction.ID] || res.Work.IsReceipt() || res.Outcome == OutcomeRetry {
			continue
		}
		st := queue.ItemSettle{ID: res.Work.Transaction.ID}
		if models.TransportState(r.ups[i].To) == models.Error {
			st.Failed, st.Error = true, res.Work.Transaction.Number+": "+res.Error
		}
		settle = append(settle, st)
	}
	return queue.SettleItems(r.tx, settle)
}

// deliveries writes each attempt's log line (kept for InsertLogs), updates
// the bonds of delivered transactions, and returns the bonds whose head
// finished (to release) and the integration status each result implies
// (statusUp) against the one the engine knew (statusNow).
func (r *recording) deliveries() (release []int64, statusUp, statusNow map[int64]models.IntegrationStatus, err error) {
	statusUp, statusNow = map[int64]models.IntegrationStatus{}, map[int64]models.IntegrationStatus{}
	for i, res := range r.results {
		w := res.Work
		statusNow[w.Integration.ID] = w.Integration.Status
		if w.Integration.AttachLogs {
			r.logs = append(r.logs, models.TransactionLog{TransactionID: w.Transaction.ID, Kind: models.LogTransactionSend,
				Level: logLevel(res.Outcome), Line: attemptLine(res, r.ok[w.Transaction.ID], models.TransportState(r.ups[i].To))})
			for _, line := range res.ScriptLogs {
				r.logs = append(r.logs, models.TransactionLog{TransactionID: w.Transaction.ID, Kind: models.LogScript,
					Level: "info", Line: line})
			}
		}
		if res.SetStatus != nil {
			statusUp[w.Integration.ID] = *res.SetStatus
		} else if res.Outcome == OutcomeDelivered {
			if _, set := statusUp[w.Integration.ID]; !set {
				statusUp[w.Integration.ID] = models.StatusUp
			}
		}
		if !r.ok[w.Transaction.ID] || res.Outcome != OutcomeDelivered || w.IsReceipt() {
			continue
		}
		if err := updateBondOnDelivery(r.tx, res); err != nil {
			return nil, nil, nil, err
		}
		if models.TransportState(r.ups[i].To).Finished() {
			release = append(release, w.Transaction.BondID)
		}
	}
	return release, statusUp, statusNow, nil
}

// releaseNext releases the next transaction of every bond whose head
// finished, leasing up to next.Limit of them to the recording worker.
func (r *recording) releaseNext(bonds []int64, next ClaimOpts) error {
	released, err := queue.Release(r.tx, bonds, &queue.ChainLease{Owner: r.owner, Limit: next.Limit, Lease: next.Lease})
	if err != nil {
		return err
	}
	for _, a := range released {
		if a.AttachLogs {
			r.logs = append(r.logs, models.TransactionLog{TransactionID: a.ID, Kind: models.LogTransactionQueued, Level: "info",
				Line: fmt.Sprintf("%s is next on its bond: Queued -> Sending", a.Number)})
		}
		if a.Leased {
			r.leased = append(r.leased, a.ID)
		}
	}
	return nil
}

// bondNoteSQL appends the line $2 to bond $1's history, stamped with the
// database's clock.
const bondNoteSQL = `UPDATE bonds SET history = history || to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')
		|| ' UTC  ' || $2 || E'\n', updated_at = now() WHERE id = $1`

// pauseSQL pauses integration $1 when it is Active (an admin may have
// paused or switched it Off meanwhile: that stays).
const pauseSQL = `UPDATE integrations SET state = 'Paused', paused_at = now(), updated_at = now()
		WHERE id = $1 AND state = 'Active'`

// actionEffects writes what the applied results' response actions set on
// the bond and the integration. The bonds with a note are locked
// (lockBonds).
func (r *recording) actionEffects() error {
	paused := map[int64]bool{}
	for _, res := range r.results {
		w := res.Work
		if !r.ok[w.Transaction.ID] {
			continue
		}
		if res.BondNote != "" {
			if _, err := pg.Exec(r.tx, bondNoteSQL, w.Transaction.BondID, res.BondNote); err != nil {
				return fmt.Errorf("note on bond %d: %w", w.Transaction.BondID, err)
			}
		}
		if res.Pause && !paused[w.Integration.ID] {
			paused[w.Integration.ID] = true
			if _, err := pg.Exec(r.tx, pauseSQL, w.Integration.ID); err != nil {
				return fmt.Errorf("pause integration %d: %w", w.Integration.ID, err)
			}
		}
	}
	return nil
}

// setStatusSQL sets integration $1's status to $2 unless it is that already.
const setStatusSQL = `UPDATE integrations SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2`

// setStatuses stores the integration statuses the answers implied, where
// they differ from what the engine knew.
func (r *recording) setStatuses(statusUp, statusNow map[int64]models.IntegrationStatus) error {
	for id, st := range statusUp {
		if cur, known := statusNow[id]; known && cur == st {
			continue
		}
		if _, err := pg.Exec(r.tx, setStatusSQL, id, string(st)); err != nil {
			return fmt.Errorf("set status of integration %d: %w", id, err)
		}
	}
	return nil
}

// leasedWorkSQL reads the transactions $1 still leased to $2 and in state
// $3. The rows are found by id first (a materialized CTE), then checked:
// given the lease and state too, the planner walked the whole claimable
// index instead.
var leasedWorkSQL = `WITH leased AS MATERIALIZED (SELECT * FROM transactions WHERE id = ANY($1::bigint[]))
		` + fmt.Sprintf(workSelect, "(SELECT * FROM leased WHERE lease_owner = $2 AND state = $3)")

// leasedWork reads, as Work, the Sending transactions RecordAttempts leased
// to o.Owner (chained work) after its commit: the leases keep other engines
// off them; one an operator finished meanwhile is left out.
func (s *DB) leasedWork(ctx context.Context, leased []int64, o ClaimOpts) ([]*Work, error) {
	rows, err := s.readWork(ctx, leasedWorkSQL, leased, o.Owner, int16(models.Sending))
	if err != nil {
		return nil, fmt.Errorf("read leased work: %w", err)
	}
	work, err := s.works(ctx, rows, o.Config)
	if err != nil {
		// Committed: the leases expire and the rescuer frees them.
		return nil, fmt.Errorf("leased work: %w", err)
	}
	return work, nil
}

// releaseLeasesSQL gives up the leases of owner $2 on the transactions $1
// in states $3, $4 (Sending, Sending Receipt).
const releaseLeasesSQL = `UPDATE transactions SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now()
		WHERE id = ANY($1::bigint[]) AND lease_owner = $2 AND state IN ($3, $4)`

// ReleaseLeases gives up owner's leases on transactions it has not sent (a
// worker stopping with chained work), so that any engine can claim them now.
func (s *DB) ReleaseLeases(ctx context.Context, owner string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	db := s.store.DB(ctx)
	if _, err := pg.Exec(db, releaseLeasesSQL, ids, owner, int16(models.Sending), int16(models.SendingReceipt)); err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	return queue.Notify(db)
}

func logLevel(o Outcome) string {
	switch o {
	case OutcomeRetry:
		return "warn"
	case OutcomeFailed:
		return "error"
	}
	return "info"
}

func attemptLine(r AttemptResult, applied bool, to models.TransportState) string {
	req := r.Request
	var b strings.Builder
	fmt.Fprintf(&b, "Attempt %d: %s %s", r.Work.Attempt(), req.Method, req.URL)
	if req.ResponseStatus != nil {
		fmt.Fprintf(&b, " answered %d", *req.ResponseStatus)
	} else if req.Error != "" {
		fmt.Fprintf(&b, " failed: %s", req.Error)
	}
	if req.DurationMS != nil {
		fmt.Fprintf(&b, " in %d ms", *req.DurationMS)
	}
	switch {
	case !applied:
		b.WriteString("; the transaction was changed meanwhile, so its state was left as it is")
	case r.Outcome == OutcomeRetry:
		fmt.Fprintf(&b, "; retry in %s", RoundDelay(r.RetryDelay))
	default:
		fmt.Fprintf(&b, "; now %s", to)
	}
	if r.Request.ResponseAction != "" {
		fmt.Fprintf(&b, " (response action: %s)", r.Request.ResponseAction)
	}
	return b.String()
}

// recordRequests writes the attempt of every result (filling the Pending
// record when the attempt was a waiting retry) and, for retries that were
// applied, a new Pending record that waits until the retry is due.
func recordRequests(tx *gorm.DB, results []AttemptResult, applied map[int64]bool) error {
	if err := fillPending(tx, results); err != nil {
		return err
	}
	var inserts []models.HTTPRequest
	var delays []*float64 // per insert: send after now() + this, in the database; nil: no wait
	for _, r := range results {
		req := r.Request
		tid, iid := r.Work.Transaction.ID, r.Work.Integration.ID
		req.TransactionID, req.IntegrationID, req.Direction, req.Attempt = &tid, &iid, models.Outbound, r.Work.Attempt()
		if r.Work.PendingID == 0 { // a waiting retry's record is filled by fillPending
			inserts, delays = append(inserts, req), append(delays, nil)
		}
		if r.Outcome == OutcomeRetry && applied[tid] {
			d := r.RetryDelay.Seconds()
			inserts = append(inserts, models.HTTPRequest{TransactionID: &tid, IntegrationID: &iid, Direction: models.Outbound,
				State: models.RequestPending, Attempt: req.Attempt + 1, Method: req.Method, URL: req.URL,
				RequestHeaders: req.RequestHeaders, RequestBody: req.RequestBody,
				ResponseHeaders: models.JSON[map[string]string]{V: map[string]string{}}})
			delays = append(delays, &d)
		}
	}
	if err := insertRequests(tx, inserts, delays); err != nil {
		return fmt.Errorf("record http requests: %w", err)
	}
	return nil
}

// fillPendingSQL fills the Pending HTTP Request $1 (still Pending) with the
// attempt that was its retry.
const fillPendingSQL = `UPDATE http_requests SET state = $2, attempt = $3, method = $4, url = $5,
		request_headers = $6::jsonb, request_body = $7, response_status = $8, response_headers = $9::jsonb,
		response_body = $10, duration_ms = $11, error = $12, response_action = $13, send_after = NULL, updated_at = now()
	WHERE id = $1 AND state = $14`

// fillPending records the attempts that were waiting retries in their
// Pending HTTP Request records.
func fillPending(tx *gorm.DB, results []AttemptResult) error {
	for _, r := range results {
		if r.Work.PendingID == 0 {
			continue
		}
		req := r.Request
		rqh, err := req.RequestHeaders.Value()
		if err != nil {
			return err
		}
		rsh, err := req.ResponseHeaders.Value()
		if err != nil {
			return err
		}
		if _, err := pg.Exec(tx, fillPendingSQL, r.Work.PendingID, int16(req.State), r.Work.Attempt(), req.Method, req.URL,
			rqh, req.RequestBody, int32Ptr(req.ResponseStatus), rsh, req.ResponseBody, int32Ptr(req.DurationMS), req.Error,
			req.ResponseAction, int16(models.RequestPending)); err != nil {
			return fmt.Errorf("record attempt of transaction %d: %w", r.Work.Transaction.ID, err)
		}
	}
	return nil
}

// insertRequestsSQL writes outbound HTTP Request records from one array
// parameter per column ($1 … $15); send_after is the database's now() plus
// the delay, or NULL.
const insertRequestsSQL = `INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			response_action, send_after)
		SELECT tid, iid, 'Outbound', state, attempt, method, url, req_headers::jsonb, req_body, status,
			resp_headers::jsonb, resp_body, duration, error, action, now() + make_interval(secs => send_after_s)
		FROM unnest($1::bigint[], $2::bigint[], $3::smallint[], $4::integer[], $5::text[], $6::text[], $7::text[], $8::text[],
			$9::integer[], $10::text[], $11::text[], $12::integer[], $13::text[], $14::text[], $15::float8[])
			AS r(tid, iid, state, attempt, method, url, req_headers, req_body, status, resp_headers, resp_body,
				duration, error, action, send_after_s)`

// insertRequests writes outbound HTTP Request records in one statement, each
// column one array parameter; a request with a delay waits until the
// database's now() plus the delay (send_after).
func insertRequests(tx *gorm.DB, reqs []models.HTTPRequest, delays []*float64) error {
	if len(reqs) == 0 {
		return nil
	}
	n := len(reqs)
	tid, iid := make([]*int64, n), make([]*int64, n)
	state := make([]int16, n)
	attempt := make([]int32, n)
	status, duration := make([]*int32, n), make([]*int32, n)
	method, url, reqBody, respBody, errText, action := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	reqHeaders, respHeaders := make([]string, n), make([]string, n)
	for i := range reqs {
		r := &reqs[i]
		if r.Direction != models.Outbound {
			return fmt.Errorf("insert requests: %s request", r.Direction)
		}
		tid[i], iid[i], state[i], attempt[i] = r.TransactionID, r.IntegrationID, int16(r.State), int32(r.Attempt)
		status[i], duration[i] = int32Ptr(r.ResponseStatus), int32Ptr(r.DurationMS)
		method[i], url[i], reqBody[i], respBody[i], errText[i], action[i] = r.Method, r.URL, r.RequestBody,
			r.ResponseBody, r.Error, r.ResponseAction
		rqh, err := r.RequestHeaders.Value()
		if err != nil {
			return err
		}
		rsh, err := r.ResponseHeaders.Value()
		if err != nil {
			return err
		}
		reqHeaders[i], respHeaders[i] = rqh.(string), rsh.(string)
	}
	_, err := pg.Exec(tx, insertRequestsSQL,
		pg.Array(tid), pg.Array(iid), pg.Array(state), pg.Array(attempt), pg.Array(method), pg.Array(url), pg.Array(reqHeaders),
		pg.Array(reqBody), pg.Array(status), pg.Array(respHeaders), pg.Array(respBody), pg.Array(duration), pg.Array(errText),
		pg.Array(action), pg.Array(delays))
	return err
}

func int32Ptr(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

// updateBondSQL updates bond $1 on a delivery: the remote ticket's
// reference $2 when not NULL (a Pending bond then opens: $3 Pending, $4
// Open), and the state $5 a synchronous message sets when not NULL.
const updateBondSQL = `UPDATE bonds SET external_reference = coalesce($2, external_reference),
		state = coalesce($5, CASE WHEN $2::text IS NOT NULL AND state = $3 THEN $4 ELSE state END), updated_at = now()
	WHERE id = $1`

// updateBondOnDelivery stores the remote ticket's reference from a
// synchronous answer (the bond opens) and applies a synchronous message's
// bond state. The bond is locked.
func updateBondOnDelivery(tx *gorm.DB, r AttemptResult) error {
	w := r.Work
	var ref, state *string
	if r.ExternalReference != "" && (w.Bond == nil || w.Bond.ExternalReference != r.ExternalReference) {
		ref = &r.ExternalReference
	}
	if !w.Message.Async && w.Message.SetBondState != nil {
		st := string(*w.Message.SetBondState)
		state = &st
	}
	if ref == nil && state == nil {
		return nil
	}
	if _, err := pg.Exec(tx, updateBondSQL, w.Transaction.BondID, ref, string(models.BondPending), string(models.BondOpen),
		state); err != nil {
		return fmt.Errorf("update bond %d: %w", w.Transaction.BondID, err)
	}
	return nil
}

// RescueLeases clears the leases that expired (their process died or hung),
// so the work can be claimed again. It returns how many it rescued.
func (s *DB) RescueLeases(ctx context.Context) (int64, error) {
	n, err := pg.Exec(s.store.DB(ctx), rescueLeasesSQL)
	if err != nil {
		return 0, fmt.Errorf("rescue leases: %w", err)
	}
	if n > 0 {
		if err := queue.Notify(s.store.DB(ctx)); err != nil {
			return n, err
		}
	}
	return n, nil
}

// rescueLeasesSQL clears the leases that expired by the database's clock.
// Only Sending and Sending Receipt hold leases (recording an attempt clears
// it), so the small transactions_claimable index finds them. The states are
// literals so that a generic plan can use that partial index too; with
// parameters it could not, and would read another state index of the whole
// history.
var rescueLeasesSQL = `UPDATE transactions SET lease_owner = NULL, lease_expires_at = NULL
		WHERE state IN (` + pg.StateSQL(models.Sending, models.SendingReceipt) + `) AND lease_owner IS NOT NULL
		  AND lease_expires_at < now()`

// sweepReceiptsSQL moves up to 1,000 Awaiting Receipt transactions whose
// receipt was due before the database's now() to $1 (Timed Out). Awaiting
// Receipt is a literal, as in rescueLeasesSQL: a generic plan can then use
// the partial index transactions_receipt_due.
var sweepReceiptsSQL = `UPDATE transactions t SET state = $1, updated_at = now(),
				error = 'No receipt arrived by ' || to_char(t.receipt_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
			FROM integrations i
			WHERE t.id IN (SELECT id FROM transactions WHERE state = ` + pg.StateSQL(models.AwaitingReceipt) + `
			                 AND receipt_due_at < now()
			               ORDER BY receipt_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
			  AND t.state = ` + pg.StateSQL(models.AwaitingReceipt) + ` AND i.id = t.integration_id
			RETURNING t.id, t.number, i.attach_logs`

// SweepReceipts moves Awaiting Receipt transactions whose Receipt due by has
// passed (by the database's clock) to Timed Out. It returns how many it moved.
func (s *DB) SweepReceipts(ctx context.Context) (int64, error) {
	var n int64
	err := s.store.DB(ctx).Transaction(func(tx *gorm.DB) error {
		to, err := models.Next(models.AwaitingReceipt, models.EventReceiptOverdue)
		if err != nil {
			return err
		}
		type row struct {
			ID         int64
			Number     string
			AttachLogs bool
		}
		var rows []row
		err = pg.Query(tx, sweepReceiptsSQL, func(rs *sql.Rows) error {
			var r row
			if err := rs.Scan(&r.ID, &r.Number, &r.AttachLogs); err != nil {
				return err
			}
			rows = append(rows, r)
			return nil
		}, int16(to))
		if err != nil {
			return err
		}
		n = int64(len(rows))
		var logs []models.TransactionLog
		settle := make([]queue.ItemSettle, 0, len(rows))
		for _, r := range rows {
			settle = append(settle, queue.ItemSettle{ID: r.ID, Failed: true, Error: r.Number + ": no receipt arrived in time"})
		}
		if err := queue.SettleItems(tx, settle); err != nil {
			return err
		}
		for _, r := range rows {
			if r.AttachLogs {
				logs = append(logs, models.TransactionLog{TransactionID: r.ID, Kind: models.LogTransactionRecv, Level: "error",
					Line: fmt.Sprintf("%s: no receipt arrived in time; now Timed Out", r.Number)})
			}
		}
		return pg.InsertLogs(tx, logs)
	})
	if err != nil {
		return 0, fmt.Errorf("sweep overdue receipts: %w", err)
	}
	return n, nil
}

// RoundDelay is a retry delay as people read it: whole seconds, or
// milliseconds below a second.
func RoundDelay(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}
