package models

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"gorm.io/gorm"
)

// The engine's side of the Store: claiming work with a lease, recording what
// a send did, rescuing expired leases and sweeping overdue receipts. The
// worker package does the HTTP; everything it decides lands here, in the
// database, so several server processes can share the work.

// Work is one claimed transaction with everything needed to send it.
type Work struct {
	Transaction Transaction
	Integration *Integration
	Connection  *Connection
	Message     *Message // the transaction's message
	Receipt     *Message // for Sending Receipt: the receipt message to send; nil otherwise
	Bond        *Bond
	Ticket      string         // our ticket number (source_reference)
	Data        map[string]any // the Stage data
	PendingID   int64          // the Pending HTTP Request waiting for this attempt, or 0
}

// Attempt is this attempt's number (1 for the first send).
func (w *Work) Attempt() int { return w.Transaction.Attempts + 1 }

// IsReceipt reports whether the work is a receipt for an inbound transaction.
func (w *Work) IsReceipt() bool { return w.Transaction.State == SendingReceipt }

// ClaimOpts configures ClaimWork.
type ClaimOpts struct {
	Owner string        // lease owner: the instance name
	Limit int           // at most this many
	Lease time.Duration // lease length; the integration's sync timeout is added
}

// ClaimWork claims up to Limit transactions that are due (Sending or Sending
// Receipt, next attempt due, no lease, integration Active — or Paused for
// receipts — with an active connection) with one FOR UPDATE SKIP LOCKED
// statement that also sets the lease, and loads what sending them needs.
func (s *Store) ClaimWork(ctx context.Context, o ClaimOpts) ([]*Work, error) {
	now := s.now()
	var claimed []Transaction
	err := s.db.WithContext(ctx).Raw(`WITH due AS (
			SELECT t.id, i.sync_timeout_s FROM transactions t
			JOIN integrations i ON i.id = t.integration_id
			WHERE t.state IN (?, ?) AND t.next_attempt_at <= ? AND t.lease_owner IS NULL
			  AND (i.state = ? OR (t.state = ? AND i.state = ?))
			  AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = t.integration_id AND c.active)
			ORDER BY t.next_attempt_at, t.id
			LIMIT ?
			FOR UPDATE OF t SKIP LOCKED)
		UPDATE transactions t SET lease_owner = ?,
			lease_expires_at = ?::timestamptz + make_interval(secs => ?::float8 + due.sync_timeout_s)
		FROM due WHERE t.id = due.id
		RETURNING t.*`,
		Sending, SendingReceipt, now, IntegrationActive, SendingReceipt, IntegrationPaused, o.Limit,
		o.Owner, now, o.Lease.Seconds()).Scan(&claimed).Error
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	if len(claimed) == 0 {
		return nil, nil
	}
	sort.Slice(claimed, func(i, j int) bool { return claimed[i].ID < claimed[j].ID })
	work, err := s.loadWork(ctx, claimed)
	if err != nil {
		return nil, fmt.Errorf("claim work: %w", err)
	}
	return work, nil
}

// loadWork fetches, in a handful of queries, what the claimed transactions need.
func (s *Store) loadWork(ctx context.Context, txs []Transaction) ([]*Work, error) {
	db := s.db.WithContext(ctx)
	ids := make([]int64, len(txs))
	integ, bondIDs, msgIDs := map[int64]bool{}, map[int64]bool{}, map[int64]bool{}
	for i, t := range txs {
		ids[i] = t.ID
		integ[t.IntegrationID], bondIDs[t.BondID], msgIDs[t.MessageID] = true, true, true
	}
	var integrations []Integration
	if err := db.Where("id IN ?", keys(integ)).Find(&integrations).Error; err != nil {
		return nil, err
	}
	var conns []Connection
	if err := db.Where("integration_id IN ? AND active", keys(integ)).Find(&conns).Error; err != nil {
		return nil, err
	}
	for i := range conns {
		if err := s.openSecret(&conns[i]); err != nil {
			return nil, err
		}
	}
	var msgs []Message
	if err := db.Where("id IN ? OR id IN (SELECT receipt_message_id FROM messages WHERE id IN ?)",
		keys(msgIDs), keys(msgIDs)).Find(&msgs).Error; err != nil {
		return nil, err
	}
	var bonds []Bond
	if err := db.Where("id IN ?", keys(bondIDs)).Find(&bonds).Error; err != nil {
		return nil, err
	}
	var stages []Stage
	if err := db.Where("transaction_id IN ?", ids).Find(&stages).Error; err != nil {
		return nil, err
	}
	var pending []struct{ ID, TransactionID int64 }
	if err := db.Raw("SELECT id, transaction_id FROM http_requests WHERE transaction_id IN ? AND state = ?",
		ids, RequestPending).Scan(&pending).Error; err != nil {
		return nil, err
	}
	byInteg := map[int64]*Integration{}
	for i := range integrations {
		byInteg[integrations[i].ID] = &integrations[i]
	}
	byConn := map[int64]*Connection{}
	for i := range conns {
		byConn[conns[i].IntegrationID] = &conns[i]
	}
	byMsg := map[int64]*Message{}
	for i := range msgs {
		byMsg[msgs[i].ID] = &msgs[i]
	}
	byBond := map[int64]*Bond{}
	for i := range bonds {
		byBond[bonds[i].ID] = &bonds[i]
	}
	byStage := map[int64]map[string]any{}
	for _, st := range stages {
		byStage[st.TransactionID] = st.Data.V
	}
	byPending := map[int64]int64{}
	for _, p := range pending {
		byPending[p.TransactionID] = p.ID
	}
	out := make([]*Work, 0, len(txs))
	for _, t := range txs {
		w := &Work{Transaction: t, Integration: byInteg[t.IntegrationID], Connection: byConn[t.IntegrationID],
			Message: byMsg[t.MessageID], Bond: byBond[t.BondID], Data: byStage[t.ID], PendingID: byPending[t.ID]}
		if w.Data == nil {
			w.Data = map[string]any{}
		}
		if w.Bond != nil {
			w.Ticket = w.Bond.InternalReference
		}
		if w.IsReceipt() && w.Message != nil && w.Message.ReceiptMessageID != nil {
			w.Receipt = byMsg[*w.Message.ReceiptMessageID]
		}
		out = append(out, w)
	}
	return out, nil
}

func keys(m map[int64]bool) []int64 {
	out := make([]int64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ResponseActions returns every response action, for the engine to match.
func (s *Store) ResponseActions(ctx context.Context) ([]ResponseAction, error) {
	var out []ResponseAction
	if err := s.db.WithContext(ctx).Order("id").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list response actions: %w", err)
	}
	return out, nil
}

// MatchResponseAction picks the most specific response action for a status:
// integration and message, then integration, then the global default.
func MatchResponseAction(actions []ResponseAction, integrationID, messageID int64, status int) *ResponseAction {
	var best *ResponseAction
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
	OutcomeRetry                    // failed; another attempt at RetryAt
	OutcomeFailed                   // failed for good: Error
)

// AttemptResult is what one send did, for RecordAttempts.
type AttemptResult struct {
	Work    *Work
	Request HTTPRequest // what went on the wire and what came back (state OK or Error)
	Outcome Outcome
	RetryAt time.Time // OutcomeRetry: when the next attempt is due
	Error   string    // OutcomeFailed: the error in plain words
	// From a synchronous envelope answer: the remote ticket's reference.
	ExternalReference string
	// SetStatus, when set, is the integration status the answer implies.
	SetStatus *IntegrationStatus
}

type txUpdate struct {
	ID            int64      `json:"id"`
	From          int16      `json:"from_state"`
	To            int16      `json:"to_state"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	ReceiptDueAt  *time.Time `json:"receipt_due_at"`
	Error         string     `json:"error"`
	Finished      bool       `json:"finished"`
}

// RecordAttempts stores the results of a batch of sends in one database
// transaction: every attempt becomes an HTTP Request record; transactions
// move with guarded updates (a transaction changed meanwhile, e.g. ignored by
// an operator, keeps its new state); bonds are locked before their queue
// changes and the next queued transaction of each finished one is released.
// It returns the ids of transactions whose guarded update applied.
func (s *Store) RecordAttempts(ctx context.Context, owner string, results []AttemptResult) ([]int64, error) {
	if len(results) == 0 {
		return nil, nil
	}
	now := s.now()
	var applied []int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// Lock the bonds whose queue changes, in id order (no deadlocks).
		var bondIDs []int64
		for _, r := range results {
			if r.Outcome == OutcomeDelivered && !r.Work.IsReceipt() {
				bondIDs = append(bondIDs, r.Work.Transaction.BondID)
			}
		}
		if err := lockBonds(tx, bondIDs); err != nil {
			return err
		}
		ups := make([]txUpdate, 0, len(results))
		for _, r := range results {
			t := r.Work.Transaction
			u := txUpdate{ID: t.ID, From: int16(t.State), Attempts: t.Attempts + 1}
			var ev Event
			switch {
			case r.Outcome == OutcomeDelivered && r.Work.IsReceipt():
				ev = EventReceiptSent
			case r.Outcome == OutcomeDelivered && r.Work.Message.Async:
				ev = EventDeliveredAsync
				due := now.Add(r.Work.Integration.AsyncTimeout())
				u.ReceiptDueAt = &due
			case r.Outcome == OutcomeDelivered:
				ev = EventDelivered
			case r.Outcome == OutcomeRetry:
				ev = EventRetry
				at := r.RetryAt
				u.NextAttemptAt = &at
				u.Error = r.Error
			default:
				ev = EventFail
				u.Error = r.Error
			}
			to, err := Next(t.State, ev)
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
		err = tx.Raw(`UPDATE transactions t SET state = v.to_state, attempts = v.attempts,
				next_attempt_at = coalesce(v.next_attempt_at, t.next_attempt_at),
				receipt_due_at = coalesce(v.receipt_due_at, t.receipt_due_at),
				error = v.error, lease_owner = NULL, lease_expires_at = NULL,
				finished_at = CASE WHEN v.finished THEN now() ELSE t.finished_at END, updated_at = now()
			FROM jsonb_to_recordset(?::jsonb) AS v(id bigint, from_state smallint, to_state smallint,
				attempts integer, next_attempt_at timestamptz, receipt_due_at timestamptz, error text, finished boolean)
			WHERE t.id = v.id AND t.state = v.from_state AND t.lease_owner = ?
			RETURNING t.id, t.bond_id`, string(body), owner).Scan(&rows).Error
		if err != nil {
			return fmt.Errorf("move transactions: %w", err)
		}
		ok := make(map[int64]bool, len(rows))
		for _, r := range rows {
			ok[r.ID] = true
			applied = append(applied, r.ID)
		}
		if err := recordRequests(tx, results, ok); err != nil {
			return err
		}
		var logs []TransactionLog
		var release []int64
		statusUp := map[int64]IntegrationStatus{}
		for i, r := range results {
			w := r.Work
			if w.Integration.AttachLogs {
				logs = append(logs, TransactionLog{TransactionID: w.Transaction.ID, Kind: LogTransactionSend,
					Level: logLevel(r.Outcome), Line: attemptLine(r, ok[w.Transaction.ID], TransportState(ups[i].To))})
			}
			if r.SetStatus != nil {
				statusUp[w.Integration.ID] = *r.SetStatus
			} else if r.Outcome == OutcomeDelivered {
				if _, set := statusUp[w.Integration.ID]; !set {
					statusUp[w.Integration.ID] = StatusUp
				}
			}
			if !ok[w.Transaction.ID] || r.Outcome != OutcomeDelivered || w.IsReceipt() {
				continue
			}
			if err := updateBondOnDelivery(tx, r); err != nil {
				return err
			}
			if TransportState(ups[i].To).Finished() {
				release = append(release, w.Transaction.BondID)
			}
		}
		released, err := releaseNextMany(tx, release)
		if err != nil {
			return err
		}
		if len(released) > 0 {
			var attach []struct {
				ID     int64
				Number string
			}
			if err := tx.Raw(`SELECT t.id, t.number FROM transactions t JOIN integrations i ON i.id = t.integration_id
				WHERE t.id IN ? AND i.attach_logs`, released).Scan(&attach).Error; err != nil {
				return err
			}
			for _, a := range attach {
				logs = append(logs, TransactionLog{TransactionID: a.ID, Kind: LogTransactionQueued, Level: "info",
					Line: fmt.Sprintf("%s is next on its bond: Queued -> Sending", a.Number)})
			}
		}
		if len(logs) > 0 {
			if err := tx.Create(&logs).Error; err != nil {
				return fmt.Errorf("write transaction logs: %w", err)
			}
		}
		for id, st := range statusUp {
			if err := tx.Exec("UPDATE integrations SET status = ?, updated_at = now() WHERE id = ? AND status <> ?",
				st, id, st).Error; err != nil {
				return fmt.Errorf("set status of integration %d: %w", id, err)
			}
		}
		if len(released) > 0 {
			return notify(tx)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record %d attempts: %w", len(results), err)
	}
	return applied, nil
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

func attemptLine(r AttemptResult, applied bool, to TransportState) string {
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
		fmt.Fprintf(&b, "; retry at %s", r.RetryAt.UTC().Format(time.RFC3339))
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
	var inserts []HTTPRequest
	for _, r := range results {
		req := r.Request
		tid, iid := r.Work.Transaction.ID, r.Work.Integration.ID
		req.TransactionID, req.IntegrationID, req.Direction, req.Attempt = &tid, &iid, Outbound, r.Work.Attempt()
		if r.Work.PendingID != 0 {
			err := tx.Model(&HTTPRequest{}).Where("id = ? AND state = ?", r.Work.PendingID, RequestPending).
				Updates(map[string]any{"state": req.State, "attempt": req.Attempt, "method": req.Method, "url": req.URL,
					"request_headers": req.RequestHeaders, "request_body": req.RequestBody,
					"response_status": req.ResponseStatus, "response_headers": req.ResponseHeaders,
					"response_body": req.ResponseBody, "duration_ms": req.DurationMS, "error": req.Error,
					"response_action": req.ResponseAction, "send_after": nil, "updated_at": gorm.Expr("now()")}).Error
			if err != nil {
				return fmt.Errorf("record attempt of transaction %d: %w", tid, err)
			}
		} else {
			inserts = append(inserts, req)
		}
		if r.Outcome == OutcomeRetry && applied[tid] {
			at := r.RetryAt
			inserts = append(inserts, HTTPRequest{TransactionID: &tid, IntegrationID: &iid, Direction: Outbound,
				State: RequestPending, Attempt: req.Attempt + 1, Method: req.Method, URL: req.URL,
				RequestHeaders: req.RequestHeaders, RequestBody: req.RequestBody, SendAfter: &at,
				ResponseHeaders: JSON[map[string]string]{V: map[string]string{}}})
		}
	}
	if len(inserts) == 0 {
		return nil
	}
	if err := tx.Omit("CreatedAt", "UpdatedAt").Create(&inserts).Error; err != nil {
		return fmt.Errorf("record http requests: %w", err)
	}
	return nil
}

// updateBondOnDelivery stores the remote ticket's reference from a
// synchronous answer (the bond opens) and applies a synchronous message's
// bond state. The bond is locked.
func updateBondOnDelivery(tx *gorm.DB, r AttemptResult) error {
	w := r.Work
	cols := map[string]any{}
	if r.ExternalReference != "" && (w.Bond == nil || w.Bond.ExternalReference != r.ExternalReference) {
		cols["external_reference"] = r.ExternalReference
		cols["state"] = gorm.Expr("CASE WHEN state = ? THEN ? ELSE state END", BondPending, BondOpen)
	}
	if !w.Message.Async && w.Message.SetBondState != nil {
		cols["state"] = *w.Message.SetBondState
	}
	if len(cols) == 0 {
		return nil
	}
	cols["updated_at"] = gorm.Expr("now()")
	if err := tx.Model(&Bond{}).Where("id = ?", w.Transaction.BondID).Updates(cols).Error; err != nil {
		return fmt.Errorf("update bond %d: %w", w.Transaction.BondID, err)
	}
	return nil
}

// lockBonds locks several bonds in id order.
func lockBonds(tx *gorm.DB, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var got []int64
	if err := tx.Raw("SELECT id FROM bonds WHERE id IN ? ORDER BY id FOR UPDATE", ids).Scan(&got).Error; err != nil {
		return fmt.Errorf("lock bonds: %w", err)
	}
	return nil
}

// releaseNextMany is releaseNext for several bonds in one statement. The
// bonds must be locked. It returns the released transactions' ids.
func releaseNextMany(tx *gorm.DB, bondIDs []int64) ([]int64, error) {
	if len(bondIDs) == 0 {
		return nil, nil
	}
	var ids []int64
	err := tx.Raw(`UPDATE transactions t SET state = ?, next_attempt_at = now(), updated_at = now()
		FROM (SELECT DISTINCT ON (q.bond_id) q.id FROM transactions q
		      JOIN bonds b ON b.id = q.bond_id
		      JOIN integrations i ON i.id = b.integration_id AND i.state = ?
		      WHERE q.bond_id IN ? AND q.direction = 'Outbound' AND q.state = ?
		        AND NOT EXISTS (SELECT 1 FROM transactions x WHERE x.bond_id = q.bond_id
		                        AND x.direction = 'Outbound' AND x.state IN (?, ?, ?, ?, ?))
		      ORDER BY q.bond_id, q.seq, q.id) n
		WHERE t.id = n.id AND t.state = ?
		RETURNING t.id`,
		Sending, IntegrationActive, bondIDs, Queued, Sending, AwaitingReceipt, ReceivedReceipt, TimedOut, Error,
		Queued).Scan(&ids).Error
	if err != nil {
		return nil, fmt.Errorf("release next on %d bonds: %w", len(bondIDs), err)
	}
	return ids, nil
}

// RescueLeases clears the leases that expired (their process died or hung),
// so the work can be claimed again. It returns how many it rescued.
func (s *Store) RescueLeases(ctx context.Context) (int64, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE transactions SET lease_owner = NULL, lease_expires_at = NULL
		WHERE lease_owner IS NOT NULL AND lease_expires_at < ?`, s.now())
	if res.Error != nil {
		return 0, fmt.Errorf("rescue leases: %w", res.Error)
	}
	if res.RowsAffected > 0 {
		if err := notify(s.db.WithContext(ctx)); err != nil {
			return res.RowsAffected, err
		}
	}
	return res.RowsAffected, nil
}

// SweepReceipts moves Awaiting Receipt transactions whose Receipt due by has
// passed (by the Store's clock) to Timed Out. It returns how many it moved.
func (s *Store) SweepReceipts(ctx context.Context) (int64, error) {
	now := s.now()
	var n int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		to, err := Next(AwaitingReceipt, EventReceiptOverdue)
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
			WHERE t.id IN (SELECT id FROM transactions WHERE state = ? AND receipt_due_at < ?
			               ORDER BY receipt_due_at LIMIT 1000 FOR UPDATE SKIP LOCKED)
			  AND t.state = ? AND i.id = t.integration_id
			RETURNING t.id, t.number, i.attach_logs`, to, AwaitingReceipt, now, AwaitingReceipt).Scan(&rows).Error
		if err != nil {
			return err
		}
		n = int64(len(rows))
		var logs []TransactionLog
		for _, r := range rows {
			if r.AttachLogs {
				logs = append(logs, TransactionLog{TransactionID: r.ID, Kind: LogTransactionRecv, Level: "error",
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

// NextDue returns when the earliest waiting transaction (a retry or an
// overdue receipt) becomes due, or nil when nothing waits; the engine sleeps
// until then at most.
func (s *Store) NextDue(ctx context.Context) (*time.Time, error) {
	var at *time.Time
	err := s.db.WithContext(ctx).Raw(`SELECT min(x) FROM (
		SELECT min(next_attempt_at) AS x FROM transactions WHERE state IN (?, ?) AND lease_owner IS NULL
		UNION ALL SELECT min(receipt_due_at) FROM transactions WHERE state = ?) m`,
		Sending, SendingReceipt, AwaitingReceipt).Scan(&at).Error
	if err != nil {
		return nil, fmt.Errorf("next due work: %w", err)
	}
	return at, nil
}
