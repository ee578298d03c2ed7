package queue

import (
	"fmt"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// OwnHistory says that the state changes of the rest of the database
// transaction write their history themselves (with HistoryCTE), so the row
// trigger skips them (migration 00100). The engine's batch statements do;
// nothing that relies on the trigger may follow in the same transaction.
func OwnHistory(tx *gorm.DB) error {
	if err := tx.Exec("SELECT set_config('unifi.history', 'written', true)").Error; err != nil {
		return fmt.Errorf("write own history: %w", err)
	}
	return nil
}

// HistoryCTE appends the state changes of the rows of the CTE moved (id,
// integration_id, from_state, to_state) to the history, as the row trigger
// of migration 00031 would.
const HistoryCTE = `history AS (INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
	SELECT id, integration_id, from_state, to_state FROM moved WHERE from_state IS DISTINCT FROM to_state)`

// LockBonds locks several bonds in id order.
func LockBonds(tx *gorm.DB, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	var got []int64
	if err := tx.Raw("SELECT id FROM bonds WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE", pg.Int64s(ids)).Scan(&got).Error; err != nil {
		return fmt.Errorf("lock bonds: %w", err)
	}
	return nil
}

// ReleasedTx is a transaction ReleaseNextMany moved to Sending.
type ReleasedTx struct {
	ID         int64
	Number     string
	AttachLogs bool
	Leased     bool // leased by the ChainLease
}

// ChainLease leases up to Limit released transactions to Owner, as a claim
// would (the database's now() plus Lease plus the integration's sync
// timeout), when their integration has an active connection.
type ChainLease struct {
	Owner string
	Limit int
	Lease time.Duration
}

// ReleaseNextMany is ReleaseNext for several bonds in one statement, leasing
// some of them by lease when it is not nil. The bonds must be locked, and the
// database transaction must write its own history (OwnHistory).
func ReleaseNextMany(tx *gorm.DB, bondIDs []int64, lease *ChainLease) ([]ReleasedTx, error) {
	if len(bondIDs) == 0 {
		return nil, nil
	}
	if lease == nil {
		lease = &ChainLease{}
	}
	var out []ReleasedTx
	// Per bond: free (nothing in progress) and Active, then its first Queued.
	// States are literals and the bonds one array: one prepared statement
	// whose generic plan uses the partial indexes (no planning per call).
	//
	// A leased transaction is due again when its lease expires (should its
	// engine die, the rescuer frees it and it is claimed then): its
	// next_attempt_at is the lease's expiry, which keeps the transactions in
	// flight out of the way of ClaimWork's walk of the due ones.
	err := tx.Raw(`WITH moved AS (UPDATE transactions t SET state = `+pg.StateSQL(models.Sending)+`, updated_at = now(),
			next_attempt_at = coalesce(n.lease_expires_at, now()),
			lease_owner = CASE WHEN n.leased THEN ? END, lease_expires_at = n.lease_expires_at
		FROM (SELECT id, attach_logs, leased,
		             CASE WHEN leased THEN now() + make_interval(secs => ?::float8 + sync_timeout_s) END AS lease_expires_at
		      FROM (SELECT q.id, i.attach_logs, i.sync_timeout_s,
		             row_number() OVER (ORDER BY b.id) <= ?
		               AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = i.id AND c.active) AS leased
		      FROM bonds b
		      JOIN integrations i ON i.id = b.integration_id AND i.state = ?
		      CROSS JOIN LATERAL (SELECT q.id FROM transactions q
		                          WHERE q.bond_id = b.id AND q.direction = 'Outbound' AND q.state = `+pg.StateSQL(models.Queued)+`
		                          ORDER BY q.seq, q.id LIMIT 1) q
		      -- A LATERAL with LIMIT is one index probe per bond, whatever the
		      -- statistics say; a NOT EXISTS here was planned as an anti join
		      -- that scanned every busy bond for each bond released.
		      LEFT JOIN LATERAL (SELECT 1 AS busy FROM transactions x WHERE x.bond_id = b.id
		                         AND x.direction = 'Outbound' AND x.state IN (`+pg.StateSQL(InProgress...)+`) LIMIT 1) x ON true
		      WHERE b.id = ANY(?::bigint[]) AND x.busy IS NULL) r) n
		WHERE t.id = n.id AND t.state = `+pg.StateSQL(models.Queued)+`
		RETURNING t.id, t.number, t.integration_id, n.attach_logs, n.leased,
			`+pg.StateSQL(models.Queued)+`::smallint AS from_state, `+pg.StateSQL(models.Sending)+`::smallint AS to_state),
		`+HistoryCTE+`
		SELECT id, number, attach_logs, leased FROM moved`,
		lease.Owner, lease.Lease.Seconds(), lease.Limit, models.IntegrationActive, pg.Int64s(bondIDs)).Scan(&out).Error
	if err != nil {
		return nil, fmt.Errorf("release next on %d bonds: %w", len(bondIDs), err)
	}
	return out, nil
}
