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
	StuckBonds      int64 // bonds held by a head in a blocking state with work queued behind it
	RunningBulkJob  *models.BulkJob
	ActiveConnected bool
}

// IntegrationCards reads every integration's figures as of at (the
// operations view and the metrics).
func (s *Reader) IntegrationCards(ctx context.Context, at time.Time) ([]IntegrationCard, error) {
	ins, err := s.ListIntegrations(ctx)
	if err != nil {
		return nil, err
	}
	cards := make([]IntegrationCard, 0, len(ins))
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
		cards = append(cards, c)
	}
	if err := s.fillCardFigures(ctx, cards, at.Add(-time.Hour)); err != nil {
		return nil, err
	}
	return cards, nil
}

// cardFiguresSQL reads one integration's figures beside its counts by state,
// each through an index: the oldest queued (transactions_integration_state),
// errors in the last hour (the state history), the stuck bonds (the
// blocking heads of the integration, each probed for a queued successor in
// transactions_bond_queued), the running bulk job and whether a connection is
// active. $1 integration, $2 since.
var cardFiguresSQL = `SELECT
	(SELECT created_at FROM transactions WHERE integration_id = $1 AND state = ` + pg.StateSQL(models.Queued) + `
		ORDER BY created_at, id LIMIT 1),
	(SELECT count(*) FROM transaction_state_changes WHERE integration_id = $1 AND to_state IN (` +
	pg.StateSQL(models.TimedOut, models.Error) + `) AND changed_at >= $2),
	(SELECT count(*) FROM transactions h WHERE h.integration_id = $1 AND h.direction = 'Outbound'
		AND h.state IN (` + pg.StateSQL(models.BlockingStates...) + `) AND ` + queuedBehind + `),
	(SELECT id FROM bulk_jobs WHERE integration_id = $1 AND state = 'running' ORDER BY id DESC LIMIT 1),
	EXISTS (SELECT 1 FROM connections WHERE integration_id = $1 AND active)`

// queuedBehind holds when the bond of transaction h has an outbound
// transaction Queued: with h a blocking head, the bond is stuck.
var queuedBehind = `EXISTS (SELECT 1 FROM transactions q WHERE q.bond_id = h.bond_id AND q.direction = 'Outbound'
		AND q.state = ` + pg.StateSQL(models.Queued) + `)`

// fillCardFigures reads every card's figures in one round trip.
func (s *Reader) fillCardFigures(ctx context.Context, cards []IntegrationCard, since time.Time) error {
	if len(cards) == 0 {
		return nil
	}
	jobIDs := make([]*int64, len(cards))
	var rb pg.Batch
	for i := range cards {
		c := &cards[i]
		pg.QueueScan(&rb, func(rows pgx.Rows) error {
			_, err := pgx.ForEachRow(rows, []any{&c.OldestQueuedAt, &c.ErrorsLastHour, &c.StuckBonds, &jobIDs[i],
				&c.ActiveConnected}, func() error { return nil })
			return err
		}, cardFiguresSQL, c.Integration.ID, since)
	}
	if err := rb.Run(ctx, s.db); err != nil {
		return fmt.Errorf("operations figures: %w", err)
	}
	for i, id := range jobIDs {
		if id == nil {
			continue
		}
		var j models.BulkJob
		if err := s.db.WithContext(ctx).Take(&j, *id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("get bulk job %d", *id))
		}
		cards[i].RunningBulkJob = &j
	}
	return nil
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
	v := &OperationsView{At: s.now()}
	var err error
	if v.Cards, err = s.IntegrationCards(ctx, v.At); err != nil {
		return nil, err
	}
	y, m, d := v.At.Date()
	today := time.Date(y, m, d, 0, 0, 0, 0, v.At.Location())
	var rb pg.Batch
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		var err error
		v.Recent, err = collectTransactionRows(rows, 20, false)
		return err
	}, `SELECT `+rowColumnsOf("t")+` FROM transactions t WHERE finished_at IS NOT NULL
		ORDER BY finished_at DESC, id DESC LIMIT 20`)
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		var err error
		v.BondsTodayCount, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
		return err
	}, `SELECT count(*) FROM bonds WHERE updated_at >= $1`, today)
	pg.QueueRows(&rb, &v.BondsToday, `SELECT `+bondColumnsOf("b")+` FROM bonds b WHERE b.updated_at >= $1
		ORDER BY b.updated_at DESC, b.id DESC LIMIT 20`, today)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("recent transactions and bonds today: %w", err)
	}
	if err := s.fillNames(ctx, v.Recent, v.BondsToday, knownNames{}); err != nil {
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
