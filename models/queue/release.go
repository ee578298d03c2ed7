package queue

import (
	"database/sql"
	"fmt"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// lockBondsSQL locks the bonds $1 in id order.
const lockBondsSQL = `SELECT id FROM bonds WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE`

// LockBonds locks several bonds in id order.
func LockBonds(tx *gorm.DB, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := pg.Exec(tx, lockBondsSQL, ids); err != nil {
		return fmt.Errorf("lock bonds: %w", err)
	}
	return nil
}

// ReleasedTx is a transaction Release moved to Sending.
type ReleasedTx struct {
	ID         int64
	Number     string
	AttachLogs bool
	Leased     bool // leased by the ChainLease
}

// Released is what Release moved to Sending, in bond order.
type Released []ReleasedTx

// ID is the id of the one transaction released, or 0: for a release of a
// single bond.
func (r Released) ID() int64 {
	if len(r) == 0 {
		return 0
	}
	return r[0].ID
}

// ChainLease leases up to Limit released transactions to Owner, as a claim
// would (the database's now() plus Lease plus the integration's sync
// timeout), when their integration has an active connection.
type ChainLease struct {
	Owner string
	Limit int
	Lease time.Duration
}

// Release is "the next queued transaction of a bond goes out", for every
// path (operations, the inbound API, the engine, bulk jobs): for each bond
// with nothing in progress whose integration is Active, its first Queued
// outbound transaction moves to Sending, in one statement. With lease, up to
// lease.Limit of them are leased to lease.Owner (the engine's chained
// claims) and due again when that lease expires. Every engine is woken when
// something was released that nobody leased. The bonds must be locked.
//
// Its state changes are recorded by the statement-level triggers of migration
// 00130, as every other statement's are.
func Release(tx *gorm.DB, bondIDs []int64, lease *ChainLease) (Released, error) {
	if len(bondIDs) == 0 {
		return nil, nil
	}
	if lease == nil {
		lease = &ChainLease{}
	}
	var out Released
	err := pg.Query(tx, releaseSQL, func(rows *sql.Rows) error {
		var r ReleasedTx
		if err := rows.Scan(&r.ID, &r.Number, &r.AttachLogs, &r.Leased); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	}, lease.Owner, lease.Lease.Seconds(), lease.Limit, string(models.IntegrationActive), bondIDs)
	if err != nil {
		return nil, fmt.Errorf("release next on %d bonds: %w", len(bondIDs), err)
	}
	for _, r := range out {
		if !r.Leased {
			return out, Notify(tx)
		}
	}
	return out, nil
}

// releaseSQL is Release's statement: $1 chain lease owner, $2 lease seconds,
// $3 how many to lease, $4 Active, $5 the bonds. Per bond: free (nothing in progress)
// and Active, then its first Queued. States are literals and the bonds one
// array: one prepared statement whose generic plan uses the partial indexes
// (no planning per call).
//
// A leased transaction is due again when its lease expires (should its
// engine die, the rescuer frees it and it is claimed then): its
// next_attempt_at is the lease's expiry, which keeps the transactions in
// flight out of the way of ClaimWork's walk of the due ones.
var releaseSQL = `UPDATE transactions t SET state = ` + pg.StateSQL(models.Sending) + `, updated_at = now(),
			next_attempt_at = coalesce(n.lease_expires_at, now()),
			lease_owner = CASE WHEN n.leased THEN $1 END, lease_expires_at = n.lease_expires_at
		FROM (SELECT id, attach_logs, leased,
		             CASE WHEN leased THEN now() + make_interval(secs => $2::float8 + sync_timeout_s) END AS lease_expires_at
		      FROM (SELECT q.id, i.attach_logs, i.sync_timeout_s,
		             row_number() OVER (ORDER BY b.id) <= $3
		               AND EXISTS (SELECT 1 FROM connections c WHERE c.integration_id = i.id AND c.active) AS leased
		      FROM bonds b
		      JOIN integrations i ON i.id = b.integration_id AND i.state = $4
		      CROSS JOIN LATERAL (SELECT q.id FROM transactions q
		                          WHERE q.bond_id = b.id AND q.direction = 'Outbound' AND q.state = ` + pg.StateSQL(models.Queued) + `
		                          ORDER BY q.seq, q.id LIMIT 1) q
		      -- A LATERAL with LIMIT is one index probe per bond, whatever the
		      -- statistics say; a NOT EXISTS here was planned as an anti join
		      -- that scanned every busy bond for each bond released.
		      LEFT JOIN LATERAL (SELECT 1 AS busy FROM transactions x WHERE x.bond_id = b.id
		                         AND x.direction = 'Outbound' AND x.state IN (` + pg.StateSQL(HeadStates...) + `) LIMIT 1) x ON true
		      WHERE b.id = ANY($5::bigint[]) AND x.busy IS NULL) r) n
		WHERE t.id = n.id AND t.state = ` + pg.StateSQL(models.Queued) + `
		RETURNING t.id, t.number, n.attach_logs, n.leased`
