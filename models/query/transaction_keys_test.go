package query_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"unifi/internal/fixture"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound/inboundsql"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/store"
)

// TestReadsWalkIndexes: every read that finds transactions by a column they
// never change (their integration, bond, time, identifiers) is planned
// through transaction_keys' indexes (migration 00300), and every state
// filter through transactions' partial indexes, never as a scan of either
// table: on a table of 20,000 transactions, where a scan costs more than
// the page, as it does at millions.
func TestReadsWalkIndexes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	in := fixture.Demo(t, store.NewStore(db, account.New(db, nil), nil))
	var msgID int64
	require.NoError(t, db.Raw(`SELECT id FROM messages WHERE integration_id = ? ORDER BY id LIMIT 1`, in.ID).Scan(&msgID).Error)
	// 500 bonds of 40 transactions each, one in 50 in Error, one in 100
	// rejected, the rest Complete.
	require.NoError(t, db.Exec(`
		WITH k AS (INSERT INTO tickets (process_id, number, short_description)
		    SELECT ?, 'PLAN' || g, 'plan ' || g FROM generate_series(1, 500) g RETURNING id, number),
		b AS (INSERT INTO bonds (integration_id, ticket_id, internal_reference, external_reference, state, owner)
		    SELECT ?, k.id, k.number, 'EXT-' || k.number, 'Open', false FROM k RETURNING id, ticket_id)
		INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id, ticket_id, direction,
		    state, process_state, seq, created_at)
		SELECT 'TRNP' || b.id || '-' || g, 'MSGP' || b.id || '-' || g, ?, b.id, ?, b.ticket_id, 'Outbound',
		    CASE WHEN g % 50 = 0 THEN CAST(? AS smallint) ELSE CAST(? AS smallint) END, CASE WHEN g % 100 = 1 THEN 2 ELSE 1 END,
		    g, now() - (b.id * 40 + g) * interval '1 second'
		FROM b CROSS JOIN generate_series(1, 40) g`,
		in.ProcessID, in.ID, in.ID, msgID, int16(models.Error), int16(models.Complete)).Error)
	require.NoError(t, db.Exec(`ANALYZE transactions, transaction_keys, bonds, tickets`).Error)
	var bond struct{ ID, TicketID int64 }
	require.NoError(t, db.Raw(`SELECT id, ticket_id FROM bonds WHERE internal_reference = 'PLAN42'`).Scan(&bond).Error)
	var number, ident string
	require.NoError(t, db.Raw(`SELECT number, message_ident FROM transactions WHERE bond_id = ? AND seq = 7`, bond.ID).
		Row().Scan(&number, &ident))

	rejected := models.ProcessRejected
	errorState := []models.TransportState{models.Error}
	pages := []struct {
		name  string
		f     query.TransactionFilter
		index string
	}{
		{"Every", query.TransactionFilter{}, "transaction_keys_created"},
		{"Integration", query.TransactionFilter{IntegrationID: in.ID}, "transaction_keys_integration_created"},
		{"Complete", query.TransactionFilter{States: []models.TransportState{models.Complete}}, "transaction_keys_created"},
		{"Bond", query.TransactionFilter{BondID: bond.ID}, "transaction_keys_bond_order"},
		{"Ticket", query.TransactionFilter{TicketID: bond.TicketID}, "transaction_keys_bond_order"},
		{"Number", query.TransactionFilter{Text: number}, "transaction_keys_number"},
		{"MessageID", query.TransactionFilter{Text: ident}, "transaction_keys_message_ident"},
		{"Error", query.TransactionFilter{States: errorState}, "transactions_state_created"},
		{"IntegrationError", query.TransactionFilter{IntegrationID: in.ID, States: errorState},
			"transactions_integration_state|transactions_state_created"}, // one integration: either walks few rows
		{"Rejected", query.TransactionFilter{ProcessState: &rejected}, "transactions_rejected_created"},
	}
	for _, c := range pages {
		t.Run("List"+c.name, func(t *testing.T) {
			sql, args := query.TransactionPageSQL(c.f)
			var plan []string
			require.NoError(t, pg.OnConn(ctx, db, func(conn *pgx.Conn) error {
				rows, err := conn.Query(ctx, "EXPLAIN "+sql, args...)
				if err != nil {
					return err
				}
				plan, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			}))
			requireIndexPlan(t, strings.Join(plan, "\n"), c.index)
		})
	}
	others := []struct {
		name, sql, index string
		args             []any
	}{
		{"BondPage", query.BondTransactionsSQL, "transaction_keys_bond_order", []any{bond.ID, 501}},
		{"InboundReceipt", inboundsql.ReceiptTransaction, "transaction_keys_message_ident", []any{in.ID, models.Outbound, ident}},
		{"InboundInitiating", inboundsql.InitiatingExists, "transaction_keys_message_ident", []any{in.ID, models.Outbound, ident}},
	}
	for _, c := range others {
		t.Run(c.name, func(t *testing.T) {
			requireIndexPlan(t, testdb.Plan(t, testdb.Gorm(db), c.sql, c.args...), c.index)
		})
	}
}

// requireIndexPlan fails unless plan scans no transactions table and uses
// an index matching the regular expression index.
func requireIndexPlan(t *testing.T, plan, index string) {
	t.Helper()
	require.NotContains(t, plan, "Seq Scan on transaction", plan)
	require.Regexp(t, ` (`+index+`) `, plan)
}

// TestTransactionKeysFollowRows: whatever inserts transactions (one row, a
// multi-row INSERT ... SELECT, COPY), transaction_keys holds the same
// unchanging columns for each, keeps message ids unique, and loses a row
// when its transaction is deleted.
func TestTransactionKeysFollowRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	in := fixture.Demo(t, store.NewStore(db, account.New(db, nil), nil))
	b := fixture.Bond(t, db, in.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil)
	one := fixture.Transaction(t, db, b, nil)
	require.NoError(t, db.Exec(`INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id,
		    ticket_id, direction, state, seq)
		SELECT number || '-' || g, message_ident || '-' || g, integration_id, bond_id, message_id, ticket_id, direction,
		    state, seq + g
		FROM transactions CROSS JOIN generate_series(1, 3) g WHERE id = ?`, one.ID).Error)
	require.NoError(t, pg.OnConn(ctx, db, func(c *pgx.Conn) error {
		_, err := c.CopyFrom(ctx, pgx.Identifier{"transactions"},
			[]string{"number", "message_ident", "integration_id", "bond_id", "message_id", "ticket_id", "direction", "state", "seq"},
			pgx.CopyFromRows([][]any{
				{"TRNCOPY1", "MSGCOPY1", in.ID, b.ID, one.MessageID, one.TicketID, "Outbound", int16(models.Complete), int64(10)},
				{"TRNCOPY2", "MSGCOPY2", in.ID, b.ID, one.MessageID, one.TicketID, "Outbound", int16(models.Complete), int64(11)},
			}))
		return err
	}))
	// Every transaction has its keys and every key its transaction, equal.
	unmatched := `SELECT count(*) FROM transactions t FULL JOIN transaction_keys k ON k.id = t.id
		WHERE (t.integration_id, t.bond_id, t.seq, t.created_at, t.number, t.message_ident)
		      IS DISTINCT FROM (k.integration_id, k.bond_id, k.seq, k.created_at, k.number, k.message_ident)`
	var n, keys int64
	require.NoError(t, db.Raw(unmatched).Scan(&n).Error)
	require.Zero(t, n)
	require.NoError(t, db.Raw(`SELECT count(*) FROM transaction_keys`).Scan(&keys).Error)
	require.EqualValues(t, 6, keys)

	err := db.Exec(`INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id, ticket_id,
		    direction, state, seq)
		SELECT 'TRNOTHER', message_ident, integration_id, bond_id, message_id, ticket_id, direction, state, 99
		FROM transactions WHERE id = ?`, one.ID).Error
	require.True(t, pg.IsUniqueViolation(err), "a second transaction with message id %s: %v", one.MessageIdent, err)

	require.NoError(t, db.Exec(`DELETE FROM transactions WHERE number LIKE 'TRNCOPY%'`).Error)
	require.NoError(t, db.Raw(unmatched).Scan(&n).Error)
	require.Zero(t, n)
	require.NoError(t, db.Raw(`SELECT count(*) FROM transaction_keys`).Scan(&keys).Error)
	require.EqualValues(t, 4, keys)
}

// TestTransactionChildrenFollowDelete: a transaction's HTTP Requests, log
// lines and Stage name it without a foreign key (migration 00310); deleting
// transactions (no product path does; a tool or a test may) deletes them,
// and only them, as ON DELETE CASCADE did.
func TestTransactionChildrenFollowDelete(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	in := fixture.Demo(t, store.NewStore(db, account.New(db, nil), nil))
	b := fixture.Bond(t, db, in.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil)
	// Each with its Stage, two HTTP Requests and a log line.
	gone := fixture.Transaction(t, db, b, &fixture.TransactionOpts{Requests: 2})
	kept := fixture.Transaction(t, db, b, &fixture.TransactionOpts{Requests: 2})
	children := func(id int64) (n int64) {
		require.NoError(t, db.Raw(`SELECT (SELECT count(*) FROM stages WHERE transaction_id = $1)
			+ (SELECT count(*) FROM transaction_logs WHERE transaction_id = $1)
			+ (SELECT count(*) FROM http_requests WHERE transaction_id = $1)`, id).Scan(&n).Error)
		return n
	}
	require.EqualValues(t, 4, children(gone.ID))
	require.NoError(t, db.Exec(`DELETE FROM transactions WHERE id = ?`, gone.ID).Error)
	require.Zero(t, children(gone.ID))
	require.EqualValues(t, 4, children(kept.ID))
}
