package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/queue"
)

// The operator tools of docs/domain.md ("The queue per bond"). Each checks the role first (403 whatever the
// state), then, inside the database transaction and after locking what it
// changes, the record's state (409 when it does not allow the action), applies
// the change with a guarded update and writes an activity log entry.

// PauseIntegration holds sending on an Active integration: transactions
// created afterwards queue in creation order until Resume.
func (s *Store) PauseIntegration(ctx context.Context, actor models.Actor, id int64) (*models.Integration, error) {
	if err := models.RoleMay(actor.Role, models.ActionPause); err != nil {
		return nil, err
	}
	var in models.Integration
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&in, id).Error; err != nil {
			return pg.NotFound(err, "find integration")
		}
		if err := models.Can(actor.Role, models.ActionPause, in.State); err != nil {
			return err
		}
		res := tx.Model(&models.Integration{}).Where("id = ? AND state = ?", id, models.IntegrationActive).
			Updates(map[string]any{"state": models.IntegrationPaused, "paused_at": gorm.Expr("now()"), "updated_at": gorm.Expr("now()")})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return &models.ConflictError{Reason: "This integration was changed by someone else meanwhile; reload it."}
		}
		before := in.State
		if err := tx.Take(&in, id).Error; err != nil {
			return err
		}
		return pg.LogActivity(tx, actor, "pause integration", "integration", in.ID, in.Name,
			map[string]any{"state": before}, map[string]any{"state": in.State})
	})
	if err != nil {
		return nil, fmt.Errorf("pause integration %d: %w", id, err)
	}
	return &in, nil
}

// ResumeIntegration makes a Paused integration Active and starts a resume
// bulk job whose items are its Queued outbound transactions in creation
// order; the engine releases them bond by bond and the job's stored progress
// follows their delivery.
func (s *Store) ResumeIntegration(ctx context.Context, actor models.Actor, id int64) (*models.BulkJob, error) {
	if err := models.RoleMay(actor.Role, models.ActionResume); err != nil {
		return nil, err
	}
	var job *models.BulkJob
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var in models.Integration
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&in, id).Error; err != nil {
			return pg.NotFound(err, "find integration")
		}
		if err := models.Can(actor.Role, models.ActionResume, in.State); err != nil {
			return err
		}
		res := tx.Model(&models.Integration{}).Where("id = ? AND state = ?", id, models.IntegrationPaused).
			Updates(map[string]any{"state": models.IntegrationActive, "paused_at": nil, "updated_at": gorm.Expr("now()")})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return &models.ConflictError{Reason: "This integration was changed by someone else meanwhile; reload it."}
		}
		// A resume still running from before an earlier pause is superseded:
		// its unfinished items are this job's items too.
		var superseded []int64
		if err := tx.Raw(`UPDATE bulk_jobs SET state = ?, finished_at = now(), updated_at = now(),
				error = 'Superseded by a later Resume' WHERE integration_id = ? AND kind = ? AND state = ?
			RETURNING id`, models.BulkCancelled, id, models.BulkResume, models.BulkRunning).Scan(&superseded).Error; err != nil {
			return err
		}
		if len(superseded) > 0 {
			if err := dropOpenItems(tx, "id = ANY(?::bigint[])", pg.Int64s(superseded)); err != nil {
				return err
			}
		}
		var err error
		job, err = createBulkJob(tx, actor, models.BulkResume, &in.ID, `SELECT id FROM transactions
			WHERE integration_id = ? AND direction = 'Outbound' AND state = `+pg.StateSQL(models.Queued)+` ORDER BY id`, in.ID)
		if err != nil {
			return err
		}
		if err := pg.LogActivity(tx, actor, "resume integration", "integration", in.ID, in.Name,
			map[string]any{"state": models.IntegrationPaused},
			map[string]any{"state": models.IntegrationActive, "bulk_job_id": job.ID, "queued": job.Total}); err != nil {
			return err
		}
		return queue.Notify(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("resume integration %d: %w", id, err)
	}
	return job, nil
}

// RepairIntegration starts a repair bulk job that replays every Error and
// Timed Out outbound transaction of the integration, oldest first.
func (s *Store) RepairIntegration(ctx context.Context, actor models.Actor, id int64) (*models.BulkJob, error) {
	if err := models.RoleMay(actor.Role, models.ActionRepair); err != nil {
		return nil, err
	}
	var job *models.BulkJob
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var in models.Integration
		if err := tx.Clauses(clause.Locking{Strength: "SHARE"}).Take(&in, id).Error; err != nil {
			return pg.NotFound(err, "find integration")
		}
		if err := models.Can(actor.Role, models.ActionRepair, in.State); err != nil {
			return err
		}
		var running int64
		if err := tx.Model(&models.BulkJob{}).Where("integration_id = ? AND kind = ? AND state = ?", id, models.BulkRepair,
			models.BulkRunning).Count(&running).Error; err != nil {
			return err
		}
		if running > 0 {
			return &models.ConflictError{Reason: "A repair of this integration is already running; wait for it to finish."}
		}
		var err error
		job, err = createBulkJob(tx, actor, models.BulkRepair, &in.ID, `SELECT id FROM transactions
			WHERE integration_id = ? AND direction = 'Outbound' AND state IN (`+pg.StateSQL(models.Error, models.TimedOut)+`) ORDER BY id`, in.ID)
		if err != nil {
			return err
		}
		if job.Total == 0 {
			return &models.ConflictError{Reason: "This integration has no Error or Timed Out transactions to repair."}
		}
		if err := pg.LogActivity(tx, actor, "repair integration", "integration", in.ID, in.Name, nil,
			map[string]any{"bulk_job_id": job.ID, "broken": job.Total}); err != nil {
			return err
		}
		return queue.Notify(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("repair integration %d: %w", id, err)
	}
	return job, nil
}

// StartBulk starts a bulk replay or ignore of the given transactions, in
// the order given. Items the actor may not act on fail one by one with the
// reason, when the job reaches them.
func (s *Store) StartBulk(ctx context.Context, actor models.Actor, kind models.BulkJobKind, ids []int64) (*models.BulkJob, error) {
	action := models.ActionReplay
	switch kind {
	case models.BulkReplay:
	case models.BulkIgnore:
		action = models.ActionIgnore
	default:
		return nil, &models.ValidationError{Fields: map[string]string{"kind": "Choose replay or ignore."}}
	}
	if err := models.RoleMay(actor.Role, models.ActionBulkTransactions); err != nil {
		return nil, err
	}
	if err := models.RoleMay(actor.Role, action); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, &models.ValidationError{Fields: map[string]string{"ids": "Select at least one transaction."}}
	}
	seen := map[int64]bool{}
	ordered := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			ordered = append(ordered, id)
		}
	}
	var job *models.BulkJob
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var integ []int64
		if err := tx.Raw("SELECT DISTINCT integration_id FROM transactions WHERE id IN ?", ordered).
			Scan(&integ).Error; err != nil {
			return err
		}
		var integrationID *int64
		if len(integ) == 1 {
			integrationID = &integ[0]
		}
		var err error
		job, err = createBulkJob(tx, actor, kind, integrationID, `SELECT t.id FROM unnest(?::bigint[]) WITH ORDINALITY AS x(id, n)
			JOIN transactions t ON t.id = x.id ORDER BY x.n`, pg.Int64s(ordered))
		if err != nil {
			return err
		}
		if job.Total == 0 {
			return &models.ValidationError{Fields: map[string]string{"ids": "None of the selected transactions exists."}}
		}
		if err := pg.LogActivity(tx, actor, "bulk "+string(kind), "bulk_job", job.ID, fmt.Sprintf("%d transactions", job.Total),
			nil, map[string]any{"bulk_job_id": job.ID, "total": job.Total}); err != nil {
			return err
		}
		return queue.Notify(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("start bulk %s: %w", kind, err)
	}
	return job, nil
}

// createBulkJob inserts a running job and its items from itemsSQL (a query
// returning transaction ids in order) and sets its total.
func createBulkJob(tx *gorm.DB, actor models.Actor, kind models.BulkJobKind, integrationID *int64, itemsSQL string, args ...any) (*models.BulkJob, error) {
	job := &models.BulkJob{Kind: kind, IntegrationID: integrationID, State: models.BulkRunning}
	if actor.UserID != 0 {
		job.StartedByID = &actor.UserID
	}
	if err := tx.Omit("CreatedAt", "UpdatedAt").Clauses(clause.Returning{}).Create(job).Error; err != nil {
		if pg.IsUniqueViolation(err) {
			return nil, &models.ConflictError{Reason: fmt.Sprintf("A %s of this integration is already running.", kind)}
		}
		return nil, fmt.Errorf("create bulk job: %w", err)
	}
	// A resume acts per bond (releaseItems): its items are acted on from
	// the start and settle as their transactions finish.
	state := "pending"
	if kind == models.BulkResume {
		state = "acted"
	}
	res := tx.Exec(`INSERT INTO bulk_job_items (job_id, transaction_id, position, state)
		SELECT ?, id, row_number() OVER (), ? FROM (`+itemsSQL+`) items`, append([]any{job.ID, state}, args...)...)
	if res.Error != nil {
		return nil, fmt.Errorf("add items to bulk job %d: %w", job.ID, res.Error)
	}
	job.Total = int(res.RowsAffected)
	if err := tx.Model(job).Update("total", job.Total).Error; err != nil {
		return nil, err
	}
	return job, queue.NotifyOn(tx, queue.BulkNotifyChannel)
}

// GetBulkJob returns the bulk job with id.
func (s *Store) GetBulkJob(ctx context.Context, id int64) (*models.BulkJob, error) {
	var j models.BulkJob
	if err := s.db.WithContext(ctx).Take(&j, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get bulk job %d", id))
	}
	return &j, nil
}

// RunningBulkJob returns the integration's newest running bulk job, or
// ErrNotFound when none runs.
func (s *Store) RunningBulkJob(ctx context.Context, integrationID int64) (*models.BulkJob, error) {
	var j models.BulkJob
	err := s.db.WithContext(ctx).Where("integration_id = ? AND state = ?", integrationID, models.BulkRunning).
		Order("id DESC").Take(&j).Error
	if err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("running bulk job of integration %d", integrationID))
	}
	return &j, nil
}

// ReplayTransaction ignores transaction id and creates its replay: the same
// Stage data, the number and Message ID with the next decimal suffix of the
// root transaction (.1, .2, ...), and the original's sequence number, so it
// takes the original's place in its bond's order.
func (s *Store) ReplayTransaction(ctx context.Context, actor models.Actor, id int64) (*models.Transaction, error) {
	if err := models.RoleMay(actor.Role, models.ActionReplay); err != nil {
		return nil, err
	}
	var out *models.Transaction
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = replayTx(tx, actor, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replay transaction %d: %w", id, err)
	}
	return out, nil
}

// lockTransaction locks the bond of transaction id (the queue rule: the bond
// first), then reads the transaction.
func lockTransaction(tx *gorm.DB, id int64) (*models.Transaction, error) {
	var bondID int64
	if err := tx.Raw("SELECT bond_id FROM transactions WHERE id = ?", id).Scan(&bondID).Error; err != nil {
		return nil, err
	}
	if bondID == 0 {
		return nil, fmt.Errorf("find transaction: %w", models.ErrNotFound)
	}
	if err := queue.LockBond(tx, bondID); err != nil {
		return nil, err
	}
	var t models.Transaction
	if err := tx.Take(&t, id).Error; err != nil {
		return nil, pg.NotFound(err, "find transaction")
	}
	return &t, nil
}

// replayTx retires transaction id and queues its replay, in tx.
func replayTx(tx *gorm.DB, actor models.Actor, id int64) (*models.Transaction, error) {
	orig, err := retireForReplay(tx, actor, id)
	if err != nil {
		return nil, err
	}
	number, ident, err := nextReplayNumbers(tx, orig)
	if err != nil {
		return nil, err
	}
	nt, attachLogs, err := insertReplay(tx, orig, number, ident)
	if err != nil {
		return nil, err
	}
	if err := releaseReplay(tx, orig, nt); err != nil {
		return nil, err
	}
	if err := recordReplay(tx, actor, orig, nt, attachLogs); err != nil {
		return nil, err
	}
	return nt, nil
}

// retireForReplay locks transaction id, checks that actor may replay it and
// moves it out of the way: Replay transition, pending requests cancelled,
// bulk-job item settled.
func retireForReplay(tx *gorm.DB, actor models.Actor, id int64) (*models.Transaction, error) {
	orig, err := lockTransaction(tx, id)
	if err != nil {
		return nil, err
	}
	if err := models.Can(actor.Role, models.ActionReplay, orig.State); err != nil {
		return nil, err
	}
	if orig.Direction != models.Outbound {
		return nil, &models.ConflictError{Reason: "Only outbound transactions can be replayed here; an inbound message is replayed by the system that sent it."}
	}
	if _, err := queue.Transition(tx, orig.ID, orig.State, models.EventReplay, nil); err != nil {
		return nil, err
	}
	if err := cancelPendingRequests(tx, orig.ID); err != nil {
		return nil, err
	}
	if err := queue.SettleItems(tx, []queue.ItemSettle{{ID: orig.ID}}); err != nil {
		return nil, err
	}
	return orig, nil
}

// nextReplayNumbers counts a replay on the root of orig's lineage and returns
// the replay's number and Message ID. The root keeps the count, so a replay of
// a replay continues it: MSG1.1 replayed gives MSG1.2.
func nextReplayNumbers(tx *gorm.DB, orig *models.Transaction) (number, ident string, err error) {
	rootID := orig.ID
	for cur := orig; cur.ReplayOfID != nil; {
		var parent models.Transaction
		if err := tx.Select("id", "replay_of_id").Take(&parent, *cur.ReplayOfID).Error; err != nil {
			return "", "", fmt.Errorf("find replayed transaction: %w", err)
		}
		rootID, cur = parent.ID, &parent
	}
	var root struct {
		Number, MessageIdent string
		ReplayCount          int
	}
	if err := tx.Raw(`UPDATE transactions SET replay_count = replay_count + 1 WHERE id = ?
		RETURNING number, message_ident, replay_count`, rootID).Scan(&root).Error; err != nil {
		return "", "", fmt.Errorf("count replays: %w", err)
	}
	return fmt.Sprintf("%s.%d", root.Number, root.ReplayCount), fmt.Sprintf("%s.%d", root.MessageIdent, root.ReplayCount), nil
}

// insertReplay inserts the replay of orig with orig's Stage data and sequence
// number; attachLogs says whether the integration attaches logs.
func insertReplay(tx *gorm.DB, orig *models.Transaction, number, ident string) (*models.Transaction, bool, error) {
	var stage models.Stage
	if err := tx.Where("transaction_id = ?", orig.ID).Take(&stage).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, fmt.Errorf("load stage: %w", err)
	}
	var in models.Integration
	if err := tx.Select("id", "state", "attach_logs").Take(&in, orig.IntegrationID).Error; err != nil {
		return nil, false, err
	}
	origID := orig.ID
	nt, err := insertOutbound(tx, newOutbound{IntegrationID: orig.IntegrationID, IntegrationState: in.State,
		BondID: orig.BondID, MessageID: orig.MessageID, TicketID: orig.TicketID, Data: stage.Data.V, Stamps: stage.Stamps.V,
		Number: number, MessageIdent: ident, Seq: orig.Seq, ReplayOfID: &origID, TimeStamp: replayStamp(stage.TimeStamp)})
	if err != nil {
		return nil, false, err
	}
	return &nt.Transaction, in.AttachLogs, nil
}

// replayStamp is a replay's time stamp: the original's, so the replay, first
// in line on the bond with the original's sequence number, is not stamped
// after the messages queued behind it (they would then be older than it at
// the receiver and not applied). A message staged before stamps were kept is
// stamped when sent, as it was.
func replayStamp(orig *time.Time) time.Time {
	if orig == nil {
		return time.Time{}
	}
	return *orig
}

// releaseReplay releases the bond's next transaction when the replay is
// Queued. Later transactions may be Queued on the bond with nothing in
// progress (the original was the head): the replay, holding the original's
// sequence number, is first in line.
func releaseReplay(tx *gorm.DB, orig, nt *models.Transaction) error {
	if nt.State != models.Queued {
		return nil
	}
	rel, err := queue.Release(tx, []int64{orig.BondID}, nil)
	if err != nil {
		return err
	}
	if next := rel.ID(); next == nt.ID {
		nt.State = models.Sending
	} else if next != 0 {
		return logNextQueued(tx, next)
	}
	return nil
}

// recordReplay writes the replay's log line and activity, and wakes the
// engine when the replay is Sending.
func recordReplay(tx *gorm.DB, actor models.Actor, orig, nt *models.Transaction, attachLogs bool) error {
	if attachLogs {
		if err := addLog(tx, nt.ID, models.LogMessageSend, "info", fmt.Sprintf("%s replays %s (by %s), %s",
			nt.Number, orig.Number, actor.Name, nt.State)); err != nil {
			return err
		}
	}
	if err := pg.LogActivity(tx, actor, "replay transaction", "transaction", orig.ID, orig.Number,
		map[string]any{"state": orig.State.String()},
		map[string]any{"state": models.Ignored.String(), "replay_id": nt.ID, "replay_number": nt.Number}); err != nil {
		return err
	}
	if nt.State == models.Sending {
		return queue.Notify(tx)
	}
	return nil
}

// IgnoreTransaction moves transaction id to Ignored; its bond's queue proceeds.
func (s *Store) IgnoreTransaction(ctx context.Context, actor models.Actor, id int64) (*models.Transaction, error) {
	if err := models.RoleMay(actor.Role, models.ActionIgnore); err != nil {
		return nil, err
	}
	var out *models.Transaction
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		out, err = ignoreTx(tx, actor, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("ignore transaction %d: %w", id, err)
	}
	return out, nil
}

func ignoreTx(tx *gorm.DB, actor models.Actor, id int64) (*models.Transaction, error) {
	t, err := lockTransaction(tx, id)
	if err != nil {
		return nil, err
	}
	if err := models.Can(actor.Role, models.ActionIgnore, t.State); err != nil {
		return nil, err
	}
	before := t.State
	if _, err := queue.Transition(tx, t.ID, t.State, models.EventIgnore, nil); err != nil {
		return nil, err
	}
	if err := cancelPendingRequests(tx, t.ID); err != nil {
		return nil, err
	}
	if err := queue.SettleItems(tx, []queue.ItemSettle{{ID: t.ID}}); err != nil {
		return nil, err
	}
	if t.Direction == models.Outbound {
		rel, err := queue.Release(tx, []int64{t.BondID}, nil)
		next := rel.ID()
		if err != nil {
			return nil, err
		}
		if next != 0 {
			if err := logNextQueued(tx, next); err != nil {
				return nil, err
			}
		}
	}
	if err := pg.LogActivity(tx, actor, "ignore transaction", "transaction", t.ID, t.Number,
		map[string]any{"state": before.String()}, map[string]any{"state": models.Ignored.String()}); err != nil {
		return nil, err
	}
	if err := tx.Take(t, id).Error; err != nil {
		return nil, err
	}
	return t, nil
}

// logNextQueued writes "transaction next queued" on a released transaction
// when its integration attaches logs.
func logNextQueued(tx *gorm.DB, id int64) error {
	return tx.Exec(`INSERT INTO transaction_logs (transaction_id, kind, level, line)
		SELECT t.id, ?, 'info', t.number || ' is next on its bond: Queued -> Sending'
		FROM transactions t JOIN integrations i ON i.id = t.integration_id WHERE t.id = ? AND i.attach_logs`,
		models.LogTransactionQueued, id).Error
}

// cancelPendingRequests cancels the retries a transaction was waiting for.
func cancelPendingRequests(tx *gorm.DB, transactionID int64) error {
	return tx.Exec(`UPDATE http_requests SET state = ?, send_after = NULL, updated_at = now()
		WHERE transaction_id = ? AND state IN (?, ?)`, models.RequestCancelled, transactionID, models.RequestPending, models.RequestReady).Error
}

// ReplayHTTPRequest re-sends an outbound HTTP Request as a new record: the
// new record starts Ready and the engine sends it with the active
// connection's current credentials. It does not move the transaction.
func (s *Store) ReplayHTTPRequest(ctx context.Context, actor models.Actor, id int64) (*models.HTTPRequest, error) {
	if err := models.RoleMay(actor.Role, models.ActionReplayRequest); err != nil {
		return nil, err
	}
	var out *models.HTTPRequest
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var orig models.HTTPRequest
		if err := tx.Take(&orig, id).Error; err != nil {
			return pg.NotFound(err, "find http request")
		}
		if err := models.Can(actor.Role, models.ActionReplayRequest, orig.State); err != nil {
			return err
		}
		if orig.Direction != models.Outbound || orig.IntegrationID == nil {
			return &models.ConflictError{Reason: "Only outbound requests can be replayed; an inbound request is re-sent by the system that made it."}
		}
		origID := orig.ID
		out = &models.HTTPRequest{TransactionID: orig.TransactionID, IntegrationID: orig.IntegrationID, Direction: models.Outbound,
			State: models.RequestReady, Attempt: orig.Attempt, Method: orig.Method, URL: orig.URL,
			RequestHeaders: orig.RequestHeaders, RequestBody: orig.RequestBody, ReplayOfID: &origID,
			ResponseHeaders: models.JSON[map[string]string]{V: map[string]string{}}}
		if err := tx.Omit("CreatedAt", "UpdatedAt").Clauses(clause.Returning{}).Create(out).Error; err != nil {
			return err
		}
		if err := pg.LogActivity(tx, actor, "replay http request", "http_request", orig.ID, fmt.Sprintf("%s %s", orig.Method, orig.URL),
			nil, map[string]any{"replay_id": out.ID}); err != nil {
			return err
		}
		return queue.Notify(tx)
	})
	if err != nil {
		return nil, fmt.Errorf("replay http request %d: %w", id, err)
	}
	return out, nil
}

// GetHTTPRequest returns the HTTP request with id.
func (s *Store) GetHTTPRequest(ctx context.Context, id int64) (*models.HTTPRequest, error) {
	var r models.HTTPRequest
	if err := s.db.WithContext(ctx).Take(&r, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get http request %d", id))
	}
	return &r, nil
}

// GetTransaction returns the transaction with id.
func (s *Store) GetTransaction(ctx context.Context, id int64) (*models.Transaction, error) {
	var t models.Transaction
	if err := s.db.WithContext(ctx).Take(&t, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get transaction %d", id))
	}
	return &t, nil
}

// SendReadyRequests sends replayed HTTP Requests waiting in Ready, one at a
// time, through send (the engine's HTTP client), and stores what came back.
// The row stays locked while it is sent, so only one process sends it; when
// the process dies the lock goes and another one sends it. It returns how
// many it sent.
func (s *Store) SendReadyRequests(ctx context.Context, send func(ctx context.Context, req *models.HTTPRequest, conn *models.Connection, in *models.Integration) models.HTTPRequest) (int, error) {
	n := 0
	for {
		sent := false
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var req models.HTTPRequest
			err := tx.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"}).
				Where("state = ? AND direction = ?", models.RequestReady, models.Outbound).Order("id").Take(&req).Error
			if errors.Is(err, gorm.ErrRecordNotFound) {
				return nil
			}
			if err != nil {
				return err
			}
			var conn models.Connection
			var in models.Integration
			if err := tx.Where("integration_id = ? AND active", req.IntegrationID).Take(&conn).Error; err != nil {
				return tx.Model(&req).Updates(map[string]any{"state": models.RequestError,
					"error": "The integration has no active connection to send it with.", "updated_at": gorm.Expr("now()")}).Error
			}
			if err := tx.Take(&in, *req.IntegrationID).Error; err != nil {
				return err
			}
			if err := s.OpenSecret(&conn); err != nil {
				return err
			}
			got := send(ctx, &req, &conn, &in)
			sent = true
			return tx.Model(&models.HTTPRequest{}).Where("id = ?", req.ID).Updates(map[string]any{"state": got.State,
				"url": got.URL, "request_headers": got.RequestHeaders, "response_status": got.ResponseStatus,
				"response_headers": got.ResponseHeaders, "response_body": got.ResponseBody,
				"duration_ms": got.DurationMS, "error": got.Error, "updated_at": gorm.Expr("now()")}).Error
		})
		if err != nil {
			return n, fmt.Errorf("send replayed requests: %w", err)
		}
		if !sent {
			return n, nil
		}
		n++
	}
}
