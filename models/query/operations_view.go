package query

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"unifi/models"
	"unifi/models/pg"
)

// IntegrationCard is one integration's figures on the operations view.
type IntegrationCard struct {
	Integration     models.Integration
	QueueDepth      int64
	OldestQueuedAt  *time.Time
	ErrorsLastHour  int64
	BrokenNow       int64 // transactions in Error or Timed Out
	RunningBulkJob  *models.BulkJob
	ActiveConnected bool
}

// OperationsView is the home page: what moved recently and where it is stuck.
type OperationsView struct {
	Cards           []IntegrationCard
	Recent          []TransactionRow // the last transactions processed (finished)
	BondsToday      []BondRow        // bonds worked today, newest first
	BondsTodayCount int64
	At              time.Time
}

// LoadOperationsView reads the operations view. Every query walks an index,
// so it stays fast at millions of transactions.
func (s *Reader) LoadOperationsView(ctx context.Context) (*OperationsView, error) {
	db := s.db.WithContext(ctx)
	v := &OperationsView{At: s.now()}
	ins, err := s.ListIntegrations(ctx)
	if err != nil {
		return nil, err
	}
	for _, in := range ins {
		c := IntegrationCard{Integration: in}
		counts, err := s.CountTransactionsByState(ctx, in.ID)
		if err != nil {
			return nil, err
		}
		for _, sc := range counts {
			switch sc.State {
			case models.Queued:
				c.QueueDepth = sc.Count
			case models.Error, models.TimedOut:
				c.BrokenNow += sc.Count
			}
		}
		var oldest []time.Time
		if err := db.Raw(`SELECT created_at FROM transactions WHERE integration_id = ? AND state = `+pg.StateSQL(models.Queued)+`
			ORDER BY created_at, id LIMIT 1`, in.ID).Scan(&oldest).Error; err != nil {
			return nil, fmt.Errorf("oldest queued of integration %d: %w", in.ID, err)
		}
		if len(oldest) == 1 {
			c.OldestQueuedAt = &oldest[0]
		}
		since := v.At.Add(-time.Hour)
		if err := db.Raw(`SELECT
				(SELECT count(*) FROM transaction_state_changes WHERE integration_id = @id AND to_state IN (7, 8) AND changed_at >= @since)
			  + (SELECT count(*) FROM transaction_state_changes_recent WHERE integration_id = @id AND to_state IN (7, 8) AND changed_at >= @since)`,
			map[string]any{"id": in.ID, "since": since}).Scan(&c.ErrorsLastHour).Error; err != nil {
			return nil, fmt.Errorf("errors of integration %d: %w", in.ID, err)
		}
		var jobs []models.BulkJob
		if err := db.Where("integration_id = ? AND state = ?", in.ID, models.BulkRunning).Order("id DESC").Limit(1).
			Find(&jobs).Error; err != nil {
			return nil, fmt.Errorf("bulk job of integration %d: %w", in.ID, err)
		}
		if len(jobs) == 1 {
			c.RunningBulkJob = &jobs[0]
		}
		var active int64
		if err := db.Raw("SELECT count(*) FROM connections WHERE integration_id = ? AND active", in.ID).
			Scan(&active).Error; err != nil {
			return nil, fmt.Errorf("connection of integration %d: %w", in.ID, err)
		}
		c.ActiveConnected = active > 0
		v.Cards = append(v.Cards, c)
	}
	y, m, d := v.At.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, v.At.Location())
	var rb pg.ReadBatch
	pg.QueueRows(&rb, &v.Recent, `SELECT * FROM transactions WHERE finished_at IS NOT NULL
		ORDER BY finished_at DESC, id DESC LIMIT 20`)
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		var err error
		v.BondsTodayCount, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
		return err
	}, `SELECT count(*) FROM bonds WHERE updated_at >= $1`, today)
	pg.QueueRows(&rb, &v.BondsToday, `SELECT * FROM bonds WHERE updated_at >= $1 ORDER BY updated_at DESC, id DESC LIMIT 20`,
		today)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("recent transactions and bonds today: %w", err)
	}
	if err := s.fillNames(ctx, v.Recent, v.BondsToday); err != nil {
		return nil, err
	}
	return v, nil
}

// BulkJobFailure is one item a bulk job could not do.
type BulkJobFailure struct {
	TransactionID int64
	Number        string
	Error         string
}

// BulkJobFailures lists what failed in a bulk job (at most limit).
func (s *Reader) BulkJobFailures(ctx context.Context, jobID int64, limit int) ([]BulkJobFailure, error) {
	var out []BulkJobFailure
	err := s.db.WithContext(ctx).Raw(`SELECT t.id AS transaction_id, t.number, i.error FROM bulk_job_items i
		JOIN transactions t ON t.id = coalesce(i.result_transaction_id, i.transaction_id)
		WHERE i.job_id = ? AND i.state = 'failed' ORDER BY i.position LIMIT ?`, jobID, limit).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("failures of bulk job %d: %w", jobID, err)
	}
	return out, nil
}

// LoadBulkJobProgress reads a bulk job and, once it has ended, what failed.
// The progress dialog calls it every half second: it is two indexed reads.
func (s *Reader) LoadBulkJobProgress(ctx context.Context, id int64, maxFailures int) (*models.BulkJob, []BulkJobFailure, error) {
	var j models.BulkJob
	if err := s.db.WithContext(ctx).Take(&j, id).Error; err != nil {
		return nil, nil, pg.NotFound(err, fmt.Sprintf("get bulk job %d", id))
	}
	if j.State == models.BulkRunning || j.Failed == 0 {
		return &j, nil, nil
	}
	f, err := s.BulkJobFailures(ctx, id, maxFailures)
	if err != nil {
		return nil, nil, err
	}
	return &j, f, nil
}
