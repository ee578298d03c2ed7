package enginedb

import (
	"context"
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
	Ticket      string         // our ticket number (source_reference)
	Data        map[string]any // the Stage data
	PendingID   int64          // the Pending HTTP Request waiting for this attempt, or 0
}

// Attempt is this attempt's number (1 for the first send).
func (w *Work) Attempt() int { return w.Transaction.Attempts + 1 }

// IsReceipt reports whether the work is a receipt for an inbound transaction.
func (w *Work) IsReceipt() bool { return w.Transaction.State == models.SendingReceipt }

// ClaimOpts configures ClaimWork.
type ClaimOpts struct {
	Owner string        // lease owner: the instance name
	Limit int           // at most this many
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
}

// LoadEngineConfig reads every integration, active connection and message.
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
	c := &EngineConfig{Integrations: map[int64]*models.Integration{}, Connections: map[int64]*models.Connection{},
		Messages: map[int64]*models.Message{}}
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
	InternalReference string
	ExternalReference string
	PendingID         *int64
}

// ClaimWork claims up to Limit transactions that are due (Sending or Sending
// Receipt, next attempt due, no lease, integration Active — or Paused for
// receipts — with an active connection) with one FOR UPDATE SKIP LOCKED
// statement that also sets the lease and returns, with each, its Stage data,
// its bond's references and its waiting retry request. The states are
// parameters on purpose: PostgreSQL then plans each claim for its own due
// time (a custom plan) and walks transactions_claimable in due order; a
// generic plan, possible with literal states, sorted every claimable row
// (324 buffer reads per transaction claimed during a 100,000 drain).
func (s *DB) ClaimWork(ctx context.Context, o ClaimOpts) ([]*Work, error) {
	rows, err := s.readWork(ctx, claimWorkSQL,
		int16(models.Sending), int16(models.SendingReceipt), string(models.IntegrationActive), string(models.IntegrationPaused), o.Limit,
		o.Owner, o.Lease.Seconds())
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	out, err := s.works(ctx, rows, o.Config)
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	return out, nil
}

// claimWorkSQL is ClaimWork's statement: due and lease expiry are the
// database's now(), never the claiming process's clock (docs/engine.md,
// "Whose clock"). $1, $2 Sending, Sending Receipt; $3 Active; $4 Paused;
// $5 limit; $6 owner; $7 lease seconds.
var claimWorkSQL = `WITH due AS (
			SELECT t.id, i.sync_timeout_s FROM transactions t
			JOIN integrations i ON i.id = t.integration_id
			WHERE t.state IN ($1, $2) AND t.next_attempt_at <= now() AND t.lease_owner IS NULL
			  AND (i.state = $3 OR (t.state = $2 AND i.state = $4))
			  AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = t.integration_id AND c.active)
			ORDER BY t.next_attempt_at, t.id
			LIMIT $5
			FOR UPDATE OF t SKIP LOCKED),
		claimed AS (
			UPDATE transactions t SET lease_owner = $6,
				lease_expires_at = now() + make_interval(secs => $7::float8 + due.sync_timeout_s)
			FROM due WHERE t.id = due.id
			RETURNING t.*)
		` + fmt.Sprintf(workSelect, "claimed")

// workSelect reads claimed transactions (the relation named by %s) with their
// Stage data, bond references and waiting retry request, in the columns
// readWork scans.
var workSelect = `SELECT ` + prefixColumns("c.", pg.TransactionColumns) + `,
			s.data, b.internal_reference, b.external_reference,
			(SELECT h.id FROM http_requests h WHERE h.transaction_id = c.id AND h.state = ` +
	strconv.Itoa(int(models.RequestPending)) + ` ORDER BY h.id LIMIT 1)
		FROM %s c
		JOIN bonds b ON b.id = c.bond_id
		LEFT JOIN stages s ON s.transaction_id = c.id
		ORDER BY c.id`

// prefixColumns qualifies every column of a list with prefix.
func prefixColumns(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// readWork runs a query of workSelect's columns through pgx, scanning by
// position (GORM's reflection was a tenth of the engine's CPU).
func (s *DB) readWork(ctx context.Context, sql string, args ...any) ([]claimedRow, error) {
	var out []claimedRow
	var rb pg.ReadBatch
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		defer rows.Close()
		targets := make([]any, 0, 32)
		for rows.Next() {
			out = append(out, claimedRow{})
			r := &out[len(out)-1]
			var data []byte
			targets = append(pg.TransactionFields(targets[:0], &r.Transaction), &data, &r.InternalReference,
				&r.ExternalReference, &r.PendingID)
			if err := rows.Scan(targets...); err != nil {
				return err
			}
			if data != nil {
				if err := json.Unmarshal(data, &r.StageData.V); err != nil {
					return fmt.Errorf("stage of transaction %d: %w", r.ID, err)
				}
			}
		}
		return rows.Err()
	}, sql, args...)
	if err := rb.Run(ctx, s.store.DB(ctx)); err != nil {
		return nil, err
	}
	return out, nil
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
			Bond:   &models.Bond{ID: r.BondID, InternalReference: r.InternalReference, ExternalReference: r.ExternalReference},
			Ticket: r.InternalReference}
		if r.PendingID != nil {
			w.PendingID = *r.PendingID
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
	// SetStatus, when set, is the integration status the answer implies.
	SetStatus *models.IntegrationStatus
}

type txUpdate struct {
	ID          int64    `json:"id"`
	From        int16    `json:"from_state"`
	To          int16    `json:"to_state"`
	Attempts    int      `json:"attempts"`
	RetryDelayS *float64 `json:"retry_delay_s"` // next attempt due at now() + this, in the database
	ReceiptDueS *float64 `json:"receipt_due_s"` // receipt due at now() + this, in the database
	Error       string   `json:"error"`
	Finished    bool     `json:"finished"`
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
	owner := next.Owner
	var applied, leased []int64
	err := s.store.DB(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock the bonds whose queue changes, in id order (no deadlocks).
		var bondIDs []int64
		for _, r := range results {
			if r.Outcome == OutcomeDelivered && !r.Work.IsReceipt() {
				bondIDs = append(bondIDs, r.Work.Transaction.BondID)
			}
		}
		if err := queue.LockBonds(tx, bondIDs); err != nil {
			return err
		}
		// Both state-changing statements below write their own history.
		if err := queue.OwnHistory(tx); err != nil {
			return err
		}
		ups := make([]txUpdate, 0, len(results))
		for _, r := range results {
			t := r.Work.Transaction
			u := txUpdate{ID: t.ID, From: int16(t.State), Attempts: t.Attempts + 1}
			var ev models.Event
			switch {
			case r.Outcome == OutcomeDelivered && r.Work.IsReceipt():
				ev = models.EventReceiptSent
			case r.Outcome == OutcomeDelivered && r.Work.Message.Async:
				ev = models.EventDeliveredAsync
				due := r.Work.Integration.AsyncTimeout().Seconds()
				u.ReceiptDueS = &due
			case r.Outcome == OutcomeDelivered:
				ev = models.EventDelivered
			case r.Outcome == OutcomeRetry:
				ev = models.EventRetry
				d := r.RetryDelay.Seconds()
				u.RetryDelayS = &d
				u.Error = r.Error
			default:
				ev = models.EventFail
				u.Error = r.Error
			}
			to, err := models.Next(t.State, ev)
			if err != nil {
				return err
			}
			u.To, u.Finished = int16(to), to.Finished()
			ups = append(ups, u)
		}
		body, err := json.Marshal(ups)
		if err != nil {
			return err
		}
		var rows []struct{ ID, BondID int64 }
		err = tx.Raw(`WITH moved AS (UPDATE transactions t SET state = v.to_state, attempts = v.attempts,
				next_attempt_at = CASE WHEN v.retry_delay_s IS NULL THEN t.next_attempt_at
					ELSE now() + make_interval(secs => v.retry_delay_s) END,
				receipt_due_at = CASE WHEN v.receipt_due_s IS NULL THEN t.receipt_due_at
					ELSE now() + make_interval(secs => v.receipt_due_s) END,
				error = v.error, lease_owner = NULL, lease_expires_at = NULL,
				finished_at = CASE WHEN v.finished THEN now() ELSE t.finished_at END, updated_at = now()
			FROM jsonb_to_recordset(?::jsonb) AS v(id bigint, from_state smallint, to_state smallint,
				attempts integer, retry_delay_s float8, receipt_due_s float8, error text, finished boolean)
			WHERE t.id = v.id AND t.state = v.from_state AND t.lease_owner = ?
			RETURNING t.id, t.bond_id, t.integration_id, v.from_state, v.to_state),
			`+queue.HistoryCTE+`
			SELECT id, bond_id FROM moved`, string(body), owner).Scan(&rows).Error
		if err != nil {
			return fmt.Errorf("move transactions: %w", err)
		}
		ok := make(map[int64]bool, len(rows))
		for _, r := range rows {
			ok[r.ID] = true
			applied = append(applied, r.ID)
		}
		var settle []queue.ItemSettle
		for i, r := range results {
			if !ok[r.Work.Transaction.ID] || r.Work.IsReceipt() || r.Outcome == OutcomeRetry {
				continue
			}
			st := queue.ItemSettle{ID: r.Work.Transaction.ID}
			if models.TransportState(ups[i].To) == models.Error {
				st.Failed, st.Error = true, r.Work.Transaction.Number+": "+r.Error
			}
			settle = append(settle, st)
		}
		if err := queue.SettleItems(tx, settle); err != nil {
			return err
		}
		if err := recordRequests(tx, results, ok); err != nil {
			return err
		}
		var logs []models.TransactionLog
		var release []int64
		statusUp := map[int64]models.IntegrationStatus{}
		statusNow := map[int64]models.IntegrationStatus{}
		for i, r := range results {
			w := r.Work
			statusNow[w.Integration.ID] = w.Integration.Status
			if w.Integration.AttachLogs {
				logs = append(logs, models.TransactionLog{TransactionID: w.Transaction.ID, Kind: models.LogTransactionSend,
					Level: logLevel(r.Outcome), Line: attemptLine(r, ok[w.Transaction.ID], models.TransportState(ups[i].To))})
			}
			if r.SetStatus != nil {
				statusUp[w.Integration.ID] = *r.SetStatus
			} else if r.Outcome == OutcomeDelivered {
				if _, set := statusUp[w.Integration.ID]; !set {
					statusUp[w.Integration.ID] = models.StatusUp
				}
			}
			if !ok[w.Transaction.ID] || r.Outcome != OutcomeDelivered || w.IsReceipt() {
				continue
			}
			if err := updateBondOnDelivery(tx, r); err != nil {
				return err
			}
			if models.TransportState(ups[i].To).Finished() {
				release = append(release, w.Transaction.BondID)
			}
		}
		released, err := queue.Release(tx, release, &queue.ChainLease{Owner: owner, Limit: next.Limit, Lease: next.Lease})
		if err != nil {
			return err
		}
		for _, a := range released {
			if a.AttachLogs {
				logs = append(logs, models.TransactionLog{TransactionID: a.ID, Kind: models.LogTransactionQueued, Level: "info",
					Line: fmt.Sprintf("%s is next on its bond: Queued -> Sending", a.Number)})
			}
			if a.Leased {
				leased = append(leased, a.ID)
			}
		}
		if err := pg.InsertLogs(tx, logs); err != nil {
			return err
		}
		for id, st := range statusUp {
			if cur, known := statusNow[id]; known && cur == st {
				continue
			}
			if err := tx.Exec("UPDATE integrations SET status = ?, updated_at = now() WHERE id = ? AND status <> ?",
				st, id, st).Error; err != nil {
				return fmt.Errorf("set status of integration %d: %w", id, err)
			}
		}
		return nil // queue.Release woke the engines for what it released unleased
	})
	if err != nil {
		return nil, nil, fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	if len(leased) == 0 {
		return applied, nil, nil
	}
	// Read after the commit: the leases keep other engines off them, and one
	// an operator finished meanwhile is left out. The rows are found by id
	// first (a materialized CTE), then checked: given the lease and state
	// too, the planner walked the whole claimable index instead.
	chained, err := s.readWork(ctx, `WITH leased AS MATERIALIZED (SELECT * FROM transactions WHERE id = ANY($1::bigint[]))
		`+fmt.Sprintf(workSelect, "(SELECT * FROM leased WHERE lease_owner = $2 AND state = $3)"),
		leased, owner, int16(models.Sending))
	if err != nil {
		return applied, nil, fmt.Errorf("record %d attempts: read chained work: %w", len(results), err)
	}
	work, err := s.works(ctx, chained, next.Config)
	if err != nil {
		// Committed: the chained leases expire and the rescuer frees them.
		return applied, nil, fmt.Errorf("record %d attempts: chained work: %w", len(results), err)
	}
	return applied, work, nil
}

// ReleaseLeases gives up owner's leases on transactions it has not sent (a
// worker stopping with chained work), so that any engine can claim them now.
func (s *DB) ReleaseLeases(ctx context.Context, owner string, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	db := s.store.DB(ctx)
	if err := db.Exec(`UPDATE transactions SET lease_owner = NULL, lease_expires_at = NULL, next_attempt_at = now()
		WHERE id = ANY(?::bigint[]) AND lease_owner = ? AND state IN (?, ?)`,
		pg.Int64s(ids), owner, models.Sending, models.SendingReceipt).Error; err != nil {
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
	var inserts []models.HTTPRequest
	var delays []*float64 // per insert: send after now() + this, in the database; nil: no wait
	for _, r := range results {
		req := r.Request
		tid, iid := r.Work.Transaction.ID, r.Work.Integration.ID
		req.TransactionID, req.IntegrationID, req.Direction, req.Attempt = &tid, &iid, models.Outbound, r.Work.Attempt()
		if r.Work.PendingID != 0 {
			err := tx.Model(&models.HTTPRequest{}).Where("id = ? AND state = ?", r.Work.PendingID, models.RequestPending).
				Updates(map[string]any{"state": req.State, "attempt": req.Attempt, "method": req.Method, "url": req.URL,
					"request_headers": req.RequestHeaders, "request_body": req.RequestBody,
					"response_status": req.ResponseStatus, "response_headers": req.ResponseHeaders,
					"response_body": req.ResponseBody, "duration_ms": req.DurationMS, "error": req.Error,
					"response_action": req.ResponseAction, "send_after": nil, "updated_at": gorm.Expr("now()")}).Error
			if err != nil {
				return fmt.Errorf("record attempt of transaction %d: %w", tid, err)
			}
		} else {
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
	return tx.Exec(`INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
			request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
			response_action, send_after)
		SELECT tid, iid, 'Outbound', state, attempt, method, url, req_headers::jsonb, req_body, status,
			resp_headers::jsonb, resp_body, duration, error, action, now() + make_interval(secs => send_after_s)
		FROM unnest(?::bigint[], ?::bigint[], ?::smallint[], ?::integer[], ?::text[], ?::text[], ?::text[], ?::text[],
			?::integer[], ?::text[], ?::text[], ?::integer[], ?::text[], ?::text[], ?::float8[])
			AS r(tid, iid, state, attempt, method, url, req_headers, req_body, status, resp_headers, resp_body,
				duration, error, action, send_after_s)`,
		pg.Array(tid), pg.Array(iid), pg.Array(state), pg.Array(attempt), pg.Array(method), pg.Array(url), pg.Array(reqHeaders),
		pg.Array(reqBody), pg.Array(status), pg.Array(respHeaders), pg.Array(respBody), pg.Array(duration), pg.Array(errText),
		pg.Array(action), pg.Array(delays)).Error
}

func int32Ptr(p *int) *int32 {
	if p == nil {
		return nil
	}
	v := int32(*p)
	return &v
}

// updateBondOnDelivery stores the remote ticket's reference from a
// synchronous answer (the bond opens) and applies a synchronous message's
// bond state. The bond is locked.
func updateBondOnDelivery(tx *gorm.DB, r AttemptResult) error {
	w := r.Work
	cols := map[string]any{}
	if r.ExternalReference != "" && (w.Bond == nil || w.Bond.ExternalReference != r.ExternalReference) {
		cols["external_reference"] = r.ExternalReference
		cols["state"] = gorm.Expr("CASE WHEN state = ? THEN ? ELSE state END", models.BondPending, models.BondOpen)
	}
	if !w.Message.Async && w.Message.SetBondState != nil {
		cols["state"] = *w.Message.SetBondState
	}
	if len(cols) == 0 {
		return nil
	}
	cols["updated_at"] = gorm.Expr("now()")
	if err := tx.Model(&models.Bond{}).Where("id = ?", w.Transaction.BondID).Updates(cols).Error; err != nil {
		return fmt.Errorf("update bond %d: %w", w.Transaction.BondID, err)
	}
	return nil
}

// RescueLeases clears the leases that expired (their process died or hung),
// so the work can be claimed again. It returns how many it rescued.
func (s *DB) RescueLeases(ctx context.Context) (int64, error) {
	// Only Sending and Sending Receipt hold leases (recording an attempt
	// clears it), so the small transactions_claimable index finds them.
	res := s.store.DB(ctx).Exec(`UPDATE transactions SET lease_owner = NULL, lease_expires_at = NULL
		WHERE state IN (?, ?) AND lease_owner IS NOT NULL AND lease_expires_at < now()`, models.Sending, models.SendingReceipt)
	if res.Error != nil {
		return 0, fmt.Errorf("rescue leases: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		if err := queue.Notify(s.store.DB(ctx)); err != nil {
			return res.RowsAffected, err
		}
	}
	return res.RowsAffected, nil
}

// SweepReceipts moves Awaiting Receipt transactions whose Receipt due by has
// passed (by the database's clock) to Timed Out. It returns how many it moved.
func (s *DB) SweepReceipts(ctx context.Context) (int64, error) {
	var n int64
	err := s.store.DB(ctx).Transaction(func(tx *gorm.DB) error {
		to, err := models.Next(models.AwaitingReceipt, models.EventReceiptOverdue)
		if err != nil {
			return err
		}
		var rows []struct {
			ID         int64
			Number     string
			AttachLogs bool
		}
		err = tx.Raw(`UPDATE transactions t SET state = ?, updated_at = now(),
				error = 'No receipt arrived by ' || to_char(t.receipt_due_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
			FROM integrations i
			WHERE t.id IN (SELECT id FROM transactions WHERE state = ? AND receipt_due_at < now()
			               ORDER BY receipt_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
			  AND t.state = ? AND i.id = t.integration_id
			RETURNING t.id, t.number, i.attach_logs`, to, models.AwaitingReceipt, models.AwaitingReceipt).Scan(&rows).Error
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
		if len(logs) > 0 {
			return tx.Create(&logs).Error
		}
		return nil
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
