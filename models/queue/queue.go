// Package queue is the per-bond queue: every change to a bond's outbound
// queue goes through it.
package queue

import (
	"database/sql"
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// The per-bond queue (docs/domain.md, "The queue per bond"). Every change to a bond's outbound queue —
// creating a transaction, finishing one, ignoring or replaying one, resuming —
// first locks the bond's row with LockBond, inside the same database
// transaction. That serialises queue changes per bond across every server
// process, so a transaction created while the head finishes is never stranded
// in Queued. The unique index transactions_bond_head enforces the result: at
// most one outbound transaction per bond is in progress.

// HeadStates are the states of a bond's head: an outbound transaction in one
// of them holds its bond's queue. The partial index transactions_bond_head
// repeats the list; TestHeadStatesMatchIndexes fails when they differ.
var HeadStates = []models.TransportState{models.Sending, models.AwaitingReceipt, models.ReceivedReceipt, models.TimedOut, models.Error}

// HeadStateSQL is the SQL expression for the state of the bond's head or,
// when it has none, of its first Queued outbound transaction; NULL when
// nothing outbound on it is unfinished. bond is an SQL expression for the
// bond's id, qualified or a parameter (b.id, CAST(@bond AS bigint)): inside
// the probes a bare "id" would be the transaction's.
//
// Outbound transactions never enter Received or Sending Receipt
// (models.Next), so unfinished means the head (HeadStates) or Queued: two
// probes of the partial indexes transactions_bond_head and
// transactions_bond_queued, the second only when the first finds nothing.
// Written as "state NOT IN (Complete, Ignored)" the test walked every
// transaction the bond ever had (the bond's index in seq order, then
// transactions_bond_order, a heap visit each): 37 buffers on a bond with 49 in EXPLAIN (ANALYZE, BUFFERS) on the
// engine bench's database, 6 with the probes, whatever the bond's history
// (docs/engine.md).
func HeadStateSQL(bond string) string {
	return `coalesce(
			(SELECT u.state FROM transactions u WHERE u.bond_id = ` + bond + ` AND u.direction = 'Outbound'
			   AND u.state IN (` + pg.StateSQL(HeadStates...) + `) LIMIT 1),
			(SELECT u.state FROM transactions u WHERE u.bond_id = ` + bond + ` AND u.direction = 'Outbound'
			   AND u.state = ` + pg.StateSQL(models.Queued) + ` LIMIT 1))`
}

// UnfinishedOutboundSQL is the SQL condition "bond has an unfinished
// outbound transaction" (HeadStateSQL), which decides whether a new one
// starts Sending or Queued.
func UnfinishedOutboundSQL(bond string) string {
	return `(` + HeadStateSQL(bond) + ` IS NOT NULL)`
}

// NotifyChannel is the LISTEN/NOTIFY channel that wakes the engine.
const NotifyChannel = "unifi_work"

// BulkNotifyChannel announces a bulk job that waits for a runner (new, or
// given up by a stopping process), so an engine claims it at once.
const BulkNotifyChannel = "unifi_bulk"

// lockBondSQL locks bond $1.
const lockBondSQL = `SELECT id FROM bonds WHERE id = $1 FOR UPDATE`

// LockBond takes the bond's row lock until the database transaction ends.
func LockBond(tx *gorm.DB, bondID int64) error {
	var id int64
	if err := pg.Query(tx, lockBondSQL, func(rows *sql.Rows) error { return rows.Scan(&id) }, bondID); err != nil {
		return fmt.Errorf("lock bond %d: %w", bondID, err)
	}
	if id == 0 {
		return fmt.Errorf("lock bond %d: %w", bondID, models.ErrNotFound)
	}
	return nil
}

// Transition moves transaction id from one state to another with a guarded
// update: when the row is no longer in from (someone else changed it), it
// returns a *ConflictError naming the state it is in now. extra sets more
// columns in the same statement.
//
// It is the one statement of this package built by GORM rather than a named
// constant: it moves one transaction at an operator's action or a receipt,
// and its extra columns differ per caller (errors, process states, an
// expression for the external message id). The engine's batch moves are
// named constants in worker/enginedb.
func Transition(tx *gorm.DB, id int64, from models.TransportState, event models.Event, extra map[string]any) (models.TransportState, error) {
	to, err := models.Next(from, event)
	if err != nil {
		return from, err
	}
	cols := map[string]any{"state": to, "updated_at": gorm.Expr("now()")}
	if to.Finished() {
		cols["finished_at"] = gorm.Expr("now()")
		cols["lease_owner"] = nil
		cols["lease_expires_at"] = nil
	}
	for k, v := range extra {
		cols[k] = v
	}
	res := tx.Model(&models.Transaction{}).Where("id = ? AND state = ?", id, from).Updates(cols)
	if res.Error != nil {
		return from, fmt.Errorf("move transaction %d from %s to %s: %w", id, from, to, res.Error)
	}
	if res.RowsAffected == 0 {
		var now models.TransportState
		if err := tx.Model(&models.Transaction{}).Select("state").Where("id = ?", id).Scan(&now).Error; err != nil {
			return from, fmt.Errorf("move transaction %d: %w", id, err)
		}
		return from, &models.ConflictError{Reason: fmt.Sprintf("This transaction is already %s.", now)}
	}
	return to, nil
}

// Notify wakes every engine listening, when the database transaction commits.
func Notify(tx *gorm.DB) error {
	return NotifyOn(tx, NotifyChannel)
}

// notifySQL notifies channel $1.
const notifySQL = `SELECT pg_notify($1, '')`

// NotifyOn notifies channel when the database transaction commits.
func NotifyOn(tx *gorm.DB, channel string) error {
	if _, err := pg.Exec(tx, notifySQL, channel); err != nil {
		return fmt.Errorf("notify engine: %w", err)
	}
	return nil
}
