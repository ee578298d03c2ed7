package pg

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"gorm.io/gorm"
)

// A page reads a dozen small things. Sent one by one, each read is a round
// trip: a write and a read on the socket for the app, a wake-up, a
// transaction start and commit for PostgreSQL, and GORM's statement building
// and reflection on the way back. At a million transactions and 50 users
// those per-statement costs, not the reads themselves, were most of a page's
// CPU. Batch sends the reads in one round trip instead (a pgx pipeline on
// one pooled connection) and scans rows straight into the model structs.
//
// The statements still run one after the other, in one implicit transaction
// (each with its own snapshot, as READ COMMITTED statements always do). A
// statement whose rows depend on an earlier one names it in SQL (a subquery
// on the id the page was asked for), never through Go.
//
// A write can be sent the same way, its BEGIN and COMMIT among the
// statements (Send on a connection from OnConn): a ticket edit is two
// batches, its reads and locks, then its writes and COMMIT (store.UpdateTicket).
//
// Limits are written into the SQL as constants, not parameters: with a
// parameter PostgreSQL cannot cost a LIMITed plan without knowing the limit,
// keeps planning each execution afresh (0.2 ms for a query on transactions,
// which has many indexes) instead of reusing the connection's cached plan.
type Batch struct {
	b pgx.Batch
	// Timeout, when set, runs the batch in a read-only transaction with
	// this statement_timeout (a payload search).
	Timeout string
}

// QueueRows appends every row of the query to dst, each column going to the
// field of the same name (case and underscores ignored, as GORM names
// columns). Every column must have a field; fields may lack a column.
func QueueRows[T any](rb *Batch, dst *[]T, sql string, args ...any) {
	rb.b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		out, err := pgx.CollectRows(rows, pgx.RowToStructByNameLax[T])
		if err != nil {
			return err
		}
		*dst = append(*dst, out...)
		return nil
	})
}

// QueueRow reads the query's one row into dst, if there is one, and says in
// found whether there was.
func QueueRow[T any](rb *Batch, dst *T, found *bool, sql string, args ...any) {
	rb.b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		out, err := pgx.CollectRows(rows, pgx.RowToStructByNameLax[T])
		if err != nil {
			return err
		}
		switch len(out) {
		case 0:
		case 1:
			*dst, *found = out[0], true
		default:
			return fmt.Errorf("%d rows where at most one was expected", len(out))
		}
		return nil
	})
}

// QueueScan hands the query's rows to fn.
func QueueScan(rb *Batch, fn func(rows pgx.Rows) error, sql string, args ...any) {
	rb.b.Queue(sql, args...).Query(fn)
}

// QueueExec appends a statement whose result is not read (BEGIN, a write,
// COMMIT).
func QueueExec(rb *Batch, sql string, args ...any) {
	rb.b.Queue(sql, args...)
}

// Queued are the batch's statements with their arguments, in order: a test
// EXPLAINs them.
func (rb *Batch) Queued() []*pgx.QueuedQuery { return rb.b.QueuedQueries }

// errNoPgx says the Store's database is not a pgx connection pool.
var errNoPgx = errors.New("batch: the database handle is not a pgx connection pool")

// Run runs the queued reads on db in one round trip.
func (rb *Batch) Run(ctx context.Context, db *gorm.DB) error {
	if rb.b.Len() == 0 {
		return nil
	}
	return OnConn(ctx, db, func(c *pgx.Conn) error {
		if rb.Timeout == "" {
			return rb.Send(ctx, c)
		}
		tx, err := c.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // read only: nothing to keep
		if _, err := tx.Exec(ctx, "SELECT set_config('statement_timeout', $1, true)", rb.Timeout); err != nil {
			return err
		}
		return tx.SendBatch(ctx, &rb.b).Close()
	})
}

// Send sends the queued statements on c in one round trip and reads their
// results. A batch may hold a database transaction's BEGIN or COMMIT: a
// write that takes a few statements then costs one round trip for all of
// them (UpdateTicket). After an error PostgreSQL skips the rest of the
// batch, a COMMIT in it included, and c is left in the failed transaction
// for OnConn to roll back.
func (rb *Batch) Send(ctx context.Context, c *pgx.Conn) error {
	return c.SendBatch(ctx, &rb.b).Close()
}

// OnConn runs fn on one pooled connection as pgx sees it. When fn leaves the
// connection inside a database transaction (it failed between its BEGIN and
// COMMIT), OnConn rolls that back; a connection that cannot be rolled back is
// dropped from the pool.
func OnConn(ctx context.Context, db *gorm.DB, fn func(c *pgx.Conn) error) error {
	sqlDB, err := db.DB()
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	defer conn.Close()
	var fnErr error
	err = conn.Raw(func(driverConn any) error {
		sc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return errNoPgx
		}
		c := sc.Conn()
		fnErr = fn(c)
		if !c.IsClosed() && c.PgConn().TxStatus() != 'I' {
			if _, err := c.Exec(context.WithoutCancel(ctx), "ROLLBACK"); err != nil {
				return driver.ErrBadConn // database/sql drops the connection
			}
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return err
}
