package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/queue"
)

// Bulk jobs run in the engine of whichever server process holds their lease
// (bulk_jobs.lease_owner / lease_expires_at). All progress is in the
// database, so a restart, or another process taking over after the lease
// expires, continues where the job stopped. A job is stepped: each step
// renews the lease, acts on the next chunk of pending items (resume: release
// their bonds; repair and replay: replay; ignore: ignore) and brings the
// stored done/failed counts up to date from the items' transactions.

// ErrLeaseLost says the bulk job is no longer held by this process.
var ErrLeaseLost = errors.New("bulk job lease lost")

// bulkChunk is how many items a step acts on, and how many bonds a resume
// releases per statement.
const bulkChunk = 200

// resumeChunk is how many items a resume step walks to find bonds to
// release (a bond is released once, for its first item). A variable for
// the tests.
var resumeChunk = 5000

// ClaimBulkJob claims a running bulk job that no live process holds. It
// returns ErrNotFound when there is none.
func (s *Store) ClaimBulkJob(ctx context.Context, owner string, lease time.Duration) (*models.BulkJob, error) {
	var jobs []models.BulkJob
	// The lease is in database time (docs/engine.md, "Whose clock").
	err := s.db.WithContext(ctx).Raw(`UPDATE bulk_jobs SET lease_owner = ?,
			lease_expires_at = now() + make_interval(secs => ?::float8), updated_at = now()
		WHERE id = (SELECT id FROM bulk_jobs WHERE state = ? AND (lease_owner IS NULL OR lease_expires_at < now())
		            ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING *`, owner, lease.Seconds(), models.BulkRunning).Scan(&jobs).Error
	if err != nil {
		return nil, fmt.Errorf("claim bulk job: %w", err)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("claim bulk job: %w", models.ErrNotFound)
	}
	return &jobs[0], nil
}

// AnalyzeBulkItems refreshes the statistics of bulk job items for a large
// job just claimed (1,000 items or more), so that settling them as their
// transactions finish uses the index and not a scan of every item. The
// runner calls it after the job's first step: the first bonds are released
// without waiting for it.
func (s *Store) AnalyzeBulkItems(ctx context.Context, job *models.BulkJob) error {
	if job.Total < 1000 {
		return nil
	}
	if err := s.db.WithContext(ctx).Exec("ANALYZE bulk_job_items").Error; err != nil {
		return fmt.Errorf("analyze items of bulk job %d: %w", job.ID, err)
	}
	return nil
}

// StepBulkJob advances bulk job id, held by owner, by one step and returns
// its progress; the job has finished when its State is no longer running.
// Items settle as their transactions finish (the engine does it when it
// records them); full also re-derives every open item from its transaction
// and finds items held behind a broken transaction: the runner asks for it
// when a step made no progress. count recounts the done and failed items (a
// count visits every open item: the runner spaces counts out on large jobs);
// without it the job's stored counts are returned. ErrLeaseLost means
// another process holds it.
func (s *Store) StepBulkJob(ctx context.Context, owner string, id int64, lease time.Duration, full, count bool) (*models.BulkJob, error) {
	db := s.db.WithContext(ctx)
	var jobs []models.BulkJob
	if err := db.Raw(`UPDATE bulk_jobs SET lease_expires_at = now() + make_interval(secs => ?::float8)
		WHERE id = ? AND lease_owner = ? AND state = ?
		RETURNING *`, lease.Seconds(), id, owner, models.BulkRunning).Scan(&jobs).Error; err != nil {
		return nil, fmt.Errorf("step bulk job %d: %w", id, err)
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("step bulk job %d: %w", id, ErrLeaseLost)
	}
	job := &jobs[0]
	if job.Kind == models.BulkResume {
		var st models.IntegrationState
		if err := db.Raw("SELECT state FROM integrations WHERE id = ?", job.IntegrationID).Scan(&st).Error; err != nil {
			return nil, fmt.Errorf("step bulk job %d: %w", id, err)
		}
		if st != models.IntegrationActive {
			return s.finishBulkJob(ctx, job, models.BulkCancelled, fmt.Sprintf("The integration is %s again; Resume it to send the rest.", st))
		}
	}
	if err := s.actOnItems(ctx, job); err != nil {
		return nil, fmt.Errorf("step bulk job %d: %w", id, err)
	}
	if full {
		if err := s.trackItems(ctx, job); err != nil {
			return nil, fmt.Errorf("step bulk job %d: %w", id, err)
		}
	}
	if !count {
		return job, nil
	}
	left, err := s.countItems(ctx, job)
	if err != nil {
		return nil, fmt.Errorf("step bulk job %d: %w", id, err)
	}
	if left == 0 {
		return s.finishBulkJob(ctx, job, models.BulkComplete, "")
	}
	return job, nil
}

func (s *Store) finishBulkJob(ctx context.Context, job *models.BulkJob, state models.BulkJobState, msg string) (*models.BulkJob, error) {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		res := tx.Exec(`UPDATE bulk_jobs SET state = ?, error = ?, finished_at = now(), updated_at = now(),
			lease_owner = NULL, lease_expires_at = NULL WHERE id = ? AND state = ?`, state, msg, job.ID, models.BulkRunning)
		if res.Error != nil || res.RowsAffected == 0 || state != models.BulkCancelled {
			return res.Error
		}
		return dropOpenItems(tx, "id = ?", job.ID)
	})
	if err != nil {
		return nil, fmt.Errorf("finish bulk job %d: %w", job.ID, err)
	}
	return s.GetBulkJob(ctx, job.ID)
}

// dropOpenItems gives the open items of cancelled jobs (bulk_jobs matching
// where) back to pending: no longer followed by the engine's settling, they
// stay as the job left them.
func dropOpenItems(tx *gorm.DB, where string, args ...any) error {
	return tx.Exec(`UPDATE bulk_job_items SET state = 'pending' WHERE state = 'acted'
		AND job_id IN (SELECT id FROM bulk_jobs WHERE `+where+`)`, args...).Error
}

// bulkActor is who acts in a job: the user who started it.
func (s *Store) bulkActor(ctx context.Context, job *models.BulkJob) (models.Actor, error) {
	if job.StartedByID == nil {
		return models.SystemActor, nil
	}
	u, err := s.accounts.GetUser(ctx, *job.StartedByID)
	if err != nil {
		return models.Actor{}, err
	}
	return models.ActorOf(u, "bulk job"), nil
}

type pendingItem struct {
	TransactionID int64
	BondID        int64
	Position      int
}

func (s *Store) actOnItems(ctx context.Context, job *models.BulkJob) error {
	if job.Kind == models.BulkResume {
		return s.releaseItems(ctx, job)
	}
	var items []pendingItem
	err := s.db.WithContext(ctx).Raw(`SELECT it.transaction_id, t.bond_id, it.position FROM bulk_job_items it
		JOIN transactions t ON t.id = it.transaction_id
		WHERE it.job_id = ? AND it.state = 'pending' ORDER BY it.position LIMIT ?`, job.ID, bulkChunk).Scan(&items).Error
	if err != nil || len(items) == 0 {
		return err
	}
	actor, err := s.bulkActor(ctx, job)
	if err != nil {
		return err
	}
	for _, it := range items {
		err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			var result *models.Transaction
			state := "acted"
			if job.Kind == models.BulkIgnore {
				_, err = ignoreTx(tx, actor, it.TransactionID)
				state = "done"
			} else {
				result, err = replayTx(tx, actor, it.TransactionID)
			}
			if err != nil {
				return err
			}
			cols := map[string]any{"state": state}
			if result != nil {
				cols["result_transaction_id"] = result.ID
			}
			return tx.Model(&models.BulkJobItem{}).Where("job_id = ? AND transaction_id = ?", job.ID, it.TransactionID).
				Updates(cols).Error
		})
		var fe *models.ForbiddenError
		var ce *models.ConflictError
		switch {
		case errors.As(err, &fe), errors.As(err, &ce), errors.Is(err, models.ErrNotFound), errors.Is(err, models.ErrInvalidTransition):
			if err := s.db.WithContext(ctx).Model(&models.BulkJobItem{}).
				Where("job_id = ? AND transaction_id = ?", job.ID, it.TransactionID).
				Updates(map[string]any{"state": "failed", "error": reasonOf(err)}).Error; err != nil {
				return err
			}
		case err != nil:
			return err
		}
	}
	return nil
}

func reasonOf(err error) string {
	var fe *models.ForbiddenError
	var ce *models.ConflictError
	switch {
	case errors.As(err, &fe):
		return fe.Reason
	case errors.As(err, &ce):
		return ce.Reason
	case errors.Is(err, models.ErrNotFound):
		return "The transaction no longer exists."
	}
	return err.Error()
}

// releaseItems releases the bonds of a resume job's next items, in order of
// their first item: each bond's oldest Queued transaction goes to Sending
// and the rest follow as each one finishes. A bond needs releasing once, so
// a step walks a large chunk of items (most of them on bonds released
// already) and the job remembers how far it got.
func (s *Store) releaseItems(ctx context.Context, job *models.BulkJob) error {
	var items []pendingItem
	err := s.db.WithContext(ctx).Raw(`SELECT it.transaction_id, t.bond_id, it.position FROM bulk_job_items it
		JOIN transactions t ON t.id = it.transaction_id
		WHERE it.job_id = ? AND it.state = 'acted' AND it.position > ? ORDER BY it.position LIMIT ?`,
		job.ID, job.ReleasedThrough, resumeChunk).Scan(&items).Error
	if err != nil || len(items) == 0 {
		return err
	}
	seen := map[int64]bool{}
	var bonds []int64
	for _, it := range items {
		if !seen[it.BondID] {
			seen[it.BondID] = true
			bonds = append(bonds, it.BondID)
		}
	}
	// One database transaction per chunk: each locks its bonds in one
	// statement, in id order, as the engine does, and holds them briefly.
	// Should the process stop half-way, the next step releases the chunk
	// again, which changes nothing for the bonds already released.
	for len(bonds) > 0 {
		n := min(len(bonds), bulkChunk)
		if err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			return releaseBonds(tx, bonds[:n])
		}); err != nil {
			return err
		}
		bonds = bonds[n:]
	}
	through := items[len(items)-1].Position
	if err := s.db.WithContext(ctx).Exec(`UPDATE bulk_jobs SET released_through = ? WHERE id = ?`,
		through, job.ID).Error; err != nil {
		return err
	}
	job.ReleasedThrough = through
	return nil
}

// releaseBonds releases the next transaction of each bond that has nothing
// in progress, in the caller's database transaction tx.
func releaseBonds(tx *gorm.DB, bonds []int64) error {
	if err := queue.LockBonds(tx, bonds); err != nil {
		return err
	}
	released, err := queue.Release(tx, bonds, nil) // wakes the engines
	if err != nil || len(released) == 0 {
		return err
	}
	var logs []models.TransactionLog
	for _, r := range released {
		if r.AttachLogs {
			logs = append(logs, models.TransactionLog{TransactionID: r.ID, Kind: models.LogTransactionQueued, Level: "info",
				Line: fmt.Sprintf("%s is next on its bond: Queued -> Sending (resume)", r.Number)})
		}
	}
	return pg.InsertLogs(tx, logs)
}

// trackItems moves acted items to done or failed from their transactions'
// states. Delivered (Awaiting Receipt or later, Complete) or Ignored is done;
// Error or Timed Out is failed, and so is an item held in Queued behind one.
// The engine settles items as it records transactions (SettleItems); this
// full pass catches whatever changed by other paths.
func (s *Store) trackItems(ctx context.Context, job *models.BulkJob) error {
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		err := tx.Exec(`UPDATE bulk_job_items it SET
				state = CASE WHEN t.state IN (?, ?) THEN 'failed' ELSE 'done' END,
				error = CASE WHEN t.state IN (?, ?) THEN t.number || ': ' || t.error ELSE '' END
			FROM transactions t
			WHERE it.job_id = ? AND it.state = 'acted' AND t.id = coalesce(it.result_transaction_id, it.transaction_id)
			  AND t.state IN (?, ?, ?, ?, ?, ?)`,
			models.Error, models.TimedOut, models.Error, models.TimedOut, job.ID,
			models.AwaitingReceipt, models.ReceivedReceipt, models.Complete, models.Ignored, models.Error, models.TimedOut).Error
		if err != nil {
			return err
		}
		return tx.Exec(`UPDATE bulk_job_items it SET state = 'failed',
				error = t.number || ' is held in the queue behind ' || h.number || ', which is ' ||
				        CASE h.state WHEN ? THEN 'Timed Out' ELSE 'Error' END
			FROM transactions t
			JOIN transactions h ON h.bond_id = t.bond_id AND h.direction = 'Outbound' AND h.state IN (?, ?)
			WHERE it.job_id = ? AND it.state = 'acted' AND it.position <= ?
			  AND t.id = coalesce(it.result_transaction_id, it.transaction_id) AND t.state = ?`,
			models.TimedOut, models.TimedOut, models.Error, job.ID, actedThrough(job), models.Queued).Error
	})
	if err != nil {
		return fmt.Errorf("track items: %w", err)
	}
	if job.Kind == models.BulkResume {
		return s.rekickStranded(ctx, job)
	}
	return nil
}

// countItems stores the job's done and failed counts and returns how many
// items are still open.
func (s *Store) countItems(ctx context.Context, job *models.BulkJob) (int64, error) {
	var c struct{ Open, Failed int }
	db := s.db.WithContext(ctx)
	// Two index scans over the open and the failed items only (done ones are
	// most of a large job).
	if err := db.Raw(`SELECT (SELECT count(*) FROM bulk_job_items WHERE job_id = ? AND state IN ('pending', 'acted')) AS open,
			(SELECT count(*) FROM bulk_job_items WHERE job_id = ? AND state = 'failed') AS failed`,
		job.ID, job.ID).Scan(&c).Error; err != nil {
		return 0, fmt.Errorf("count items: %w", err)
	}
	job.Done, job.Failed = job.Total-c.Open-c.Failed, c.Failed
	if err := db.Exec(`UPDATE bulk_jobs SET done = ?, failed = ?, updated_at = now()
		WHERE id = ? AND (done <> ? OR failed <> ?)`, job.Done, job.Failed, job.ID, job.Done, job.Failed).Error; err != nil {
		return 0, fmt.Errorf("store progress: %w", err)
	}
	return int64(c.Open), nil
}

// actedThrough is the last position a job has acted on: a resume has
// released the bonds of its items up to ReleasedThrough (its items are acted
// on from the start); other jobs mark each item as they act on it.
func actedThrough(job *models.BulkJob) int {
	if job.Kind == models.BulkResume {
		return job.ReleasedThrough
	}
	return job.Total
}

// rekickStranded releases bonds whose items, released already, wait in
// Queued with nothing in progress ahead of them (e.g. the integration was
// paused and resumed while they were being released).
func (s *Store) rekickStranded(ctx context.Context, job *models.BulkJob) error {
	var bonds []int64
	err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT t.bond_id FROM bulk_job_items it
		JOIN transactions t ON t.id = coalesce(it.result_transaction_id, it.transaction_id)
		WHERE it.job_id = ? AND it.state = 'acted' AND it.position <= ? AND t.state = ?
		  AND NOT EXISTS (SELECT 1 FROM transactions h WHERE h.bond_id = t.bond_id AND h.direction = 'Outbound'
		                  AND h.state IN (?, ?, ?, ?, ?))
		LIMIT 500`, job.ID, actedThrough(job), models.Queued, models.Sending, models.AwaitingReceipt, models.ReceivedReceipt, models.TimedOut, models.Error).Scan(&bonds).Error
	if err != nil || len(bonds) == 0 {
		return err
	}
	return s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		return releaseBonds(tx, bonds)
	})
}

// ListBulkJobItems returns a job's items in order (for the progress dialog's
// list of failures, pass onlyFailed).
func (s *Store) ListBulkJobItems(ctx context.Context, jobID int64, onlyFailed bool, limit int) ([]models.BulkJobItem, error) {
	q := s.db.WithContext(ctx).Where("job_id = ?", jobID)
	if onlyFailed {
		q = q.Where("state = 'failed'")
	}
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var out []models.BulkJobItem
	if err := q.Order("position").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list items of bulk job %d: %w", jobID, err)
	}
	return out, nil
}

// ReleaseBulkJob gives up this process's lease on a bulk job (at a soft
// stop), so another process takes it over at once.
func (s *Store) ReleaseBulkJob(ctx context.Context, owner string, id int64) {
	_ = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec(`UPDATE bulk_jobs SET lease_owner = NULL, lease_expires_at = NULL
			WHERE id = ? AND lease_owner = ?`, id, owner).Error; err != nil {
			return err
		}
		return queue.NotifyOn(tx, queue.BulkNotifyChannel)
	})
}
