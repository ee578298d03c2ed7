package query

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// Counts by transaction state (the integration page) come from
// transaction_state_counts plus the deltas not yet compacted into it
// (migrations 00031, 00330): each statement that changes states appends what
// it changed in the counts, one row per integration and state, so counting
// never makes the engine wait on a shared counter row.

// compactAfter is how many delta rows of an integration a reader tolerates
// before it compacts them itself.
const compactAfter = 20000

// countsLockKey is the advisory lock that keeps compactions one at a time.
const countsLockKey = 727275

// stateCountsSQL sums the compacted counts and the deltas in one snapshot, so
// no change is seen twice or missed.
const stateCountsSQL = `SELECT state, sum(n)::bigint AS count, sum(recent)::bigint AS recent FROM (
	SELECT state, n, 0 AS recent FROM transaction_state_counts WHERE integration_id = $1
	UNION ALL
	SELECT state, n, 1 FROM transaction_state_deltas WHERE integration_id = $1
) x GROUP BY state`

// stateCountRow is a row of stateCountsSQL.
type stateCountRow struct {
	State  models.TransportState
	Count  int64
	Recent int64 // how many delta rows not yet compacted went into Count
}

// CountTransactionsByState returns an integration's transaction counts for
// every transport state, zeros included, in sequence order.
func (s *Reader) CountTransactionsByState(ctx context.Context, integrationID int64) ([]StateCount, error) {
	rows, err := s.readStateCounts(ctx, integrationID)
	if err != nil {
		return nil, err
	}
	return s.stateCounts(ctx, integrationID, rows)
}

func (s *Reader) readStateCounts(ctx context.Context, integrationID int64) ([]stateCountRow, error) {
	var rows []stateCountRow
	var rb pg.Batch
	pg.QueueRows(&rb, &rows, stateCountsSQL, integrationID)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("count transactions of integration %d: %w", integrationID, err)
	}
	return rows, nil
}

// stateCounts turns rows read with stateCountsSQL into a count for every
// state. When more than compactAfter changes wait to be compacted, it
// compacts them and reads again.
func (s *Reader) stateCounts(ctx context.Context, integrationID int64, rows []stateCountRow) ([]StateCount, error) {
	var recent int64
	for _, r := range rows {
		recent += r.Recent
	}
	if recent > compactAfter {
		if _, err := s.CompactTransactionCounts(ctx); err != nil {
			return nil, fmt.Errorf("count transactions of integration %d: %w", integrationID, err)
		}
		var err error
		if rows, err = s.readStateCounts(ctx, integrationID); err != nil {
			return nil, err
		}
	}
	byState := map[models.TransportState]int64{}
	for _, r := range rows {
		byState[r.State] = r.Count
	}
	out := make([]StateCount, len(models.TransportStates))
	for i, st := range models.TransportStates {
		out[i] = StateCount{State: st, Count: byState[st]}
	}
	return out, nil
}

// CompactTransactionCounts folds the deltas into the counts and deletes them,
// in one statement. When another compaction is running it does nothing. It
// returns how many delta rows it folded.
func (s *Reader) CompactTransactionCounts(ctx context.Context) (int64, error) {
	var moved int64
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var got bool
		if err := tx.Raw("SELECT pg_try_advisory_xact_lock(?)", countsLockKey).Scan(&got).Error; err != nil {
			return err
		}
		if !got {
			return nil
		}
		return tx.Raw(`WITH moved AS (
				DELETE FROM transaction_state_deltas RETURNING integration_id, state, n),
			delta AS (
				SELECT integration_id, state, sum(n) AS n FROM moved GROUP BY integration_id, state),
			counted AS (
				INSERT INTO transaction_state_counts (integration_id, state, n)
				SELECT integration_id, state, n FROM delta WHERE n <> 0 ORDER BY integration_id, state
				ON CONFLICT (integration_id, state) DO UPDATE SET n = transaction_state_counts.n + excluded.n)
			SELECT count(*) FROM moved`).Scan(&moved).Error
	})
	if err != nil {
		return 0, fmt.Errorf("compact transaction counts: %w", err)
	}
	return moved, nil
}

// RunCountCompactor compacts the state-change counts every interval until ctx
// ends. The server runs one; several servers may run it, one compacts at a time.
func (s *Reader) RunCountCompactor(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.CompactTransactionCounts(ctx); err != nil && ctx.Err() == nil && onError != nil {
				onError(err)
			}
		}
	}
}

// StateCount is how many transactions of an integration are in one state.
type StateCount struct {
	State models.TransportState
	Count int64
}
