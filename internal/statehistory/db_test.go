package statehistory_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/modelstest"
	"unifi/models/pg"
	"unifi/models/query"
	"unifi/models/queue"
	"unifi/models/store"
)

type change struct {
	TransactionID, IntegrationID int64
	FromState, ToState           *int16
}

func st(s models.TransportState) *int16 { v := int16(s); return &v }

// TestStateHistoryHasNoOptOut checks on a real database that every state
// change of a database transaction is recorded, also one made by a plain
// UPDATE after a batch statement of the engine changed states (what the
// opt-out of migration 00100, unifi.history = 'written', used to lose), in
// the order the statements changed the rows; and that the triggers that
// record them are in place, with no condition that could skip a change.
func TestStateHistoryHasNoOptOut(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})
	s := store.NewStore(db, account.New(db, nil), nil)
	outbound := func(ticketID int64) []models.Transaction {
		var out []models.Transaction
		require.NoError(t, db.Where("ticket_id = ?", ticketID).Order("seq").Find(&out).Error)
		return out
	}
	// One ticket with its head Sending and one more Queued behind it; two
	// more tickets with their head Sending.
	tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "history"})
	require.NoError(t, err)
	in := store.TicketInputOf(tk)
	in.WorkNotes = "more"
	_, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
	require.NoError(t, err)
	txs := outbound(tk.ID)
	require.Len(t, txs, 2)
	head, next := txs[0], txs[1]
	require.Equal(t, []models.TransportState{models.Sending, models.Queued}, []models.TransportState{head.State, next.State})
	var others []int64
	for range 2 {
		o, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "other"})
		require.NoError(t, err)
		ot := outbound(o.ID)
		require.Len(t, ot, 1)
		require.Equal(t, models.Sending, ot[0].State)
		others = append(others, ot[0].ID)
	}
	integ := fx.Integration.ID

	var since int64
	require.NoError(t, db.Raw(`SELECT coalesce(max(id), 0) FROM transaction_state_changes`).Scan(&since).Error)
	var want []change
	var inserted int64
	err = db.Transaction(func(tx *gorm.DB) error {
		// The old opt-out: it must change nothing now.
		require.NoError(t, tx.Exec(`SELECT set_config('unifi.history', 'written', true)`).Error)
		// The head finishes by a plain update, then the engine's batch
		// statement releases the next one.
		require.NoError(t, tx.Exec(`UPDATE transactions SET state = ?, finished_at = now() WHERE id = ?`, models.Complete, head.ID).Error)
		want = append(want, change{head.ID, integ, st(models.Sending), st(models.Complete)})
		require.NoError(t, queue.LockBonds(tx, []int64{head.BondID}))
		released, err := queue.Release(tx, []int64{head.BondID}, nil)
		require.NoError(t, err)
		require.Len(t, released, 1)
		require.Equal(t, next.ID, released[0].ID)
		want = append(want, change{next.ID, integ, st(models.Queued), st(models.Sending)})
		// A plain UPDATE later in the same database transaction: the case
		// the opt-out broke.
		require.NoError(t, tx.Exec(`UPDATE transactions SET state = ? WHERE id = ?`, models.Error, next.ID).Error)
		want = append(want, change{next.ID, integ, st(models.Sending), st(models.Error)})
		// A GORM guarded transition.
		to, err := queue.Transition(tx, others[0], models.Sending, models.EventFail, nil)
		require.NoError(t, err)
		require.Equal(t, models.Error, to)
		want = append(want, change{others[0], integ, st(models.Sending), st(models.Error)})
		// Several rows in one statement, one of them without a state change:
		// recorded in the order the statement changed them.
		var order []int64
		require.NoError(t, tx.Raw(`UPDATE transactions SET updated_at = now(),
				state = CASE WHEN id = ? THEN state ELSE ? END
			WHERE id = ANY(?::bigint[]) RETURNING id`, head.ID, models.Ignored,
			pg.Int64s([]int64{others[1], others[0], head.ID})).Scan(&order).Error)
		require.Len(t, order, 3)
		for _, id := range order {
			switch id {
			case others[0]:
				want = append(want, change{id, integ, st(models.Error), st(models.Ignored)})
			case others[1]:
				want = append(want, change{id, integ, st(models.Sending), st(models.Ignored)})
			}
		}
		// Created and deleted.
		require.NoError(t, tx.Raw(`INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id,
				ticket_id, direction, state, seq)
			SELECT number || '-h', message_ident || '-h', integration_id, bond_id, message_id, ticket_id, direction, ?, seq + 100
			FROM transactions WHERE id = ? RETURNING id`, models.Complete, head.ID).Scan(&inserted).Error)
		want = append(want, change{inserted, integ, nil, st(models.Complete)})
		require.NoError(t, tx.Exec(`DELETE FROM transactions WHERE id = ?`, inserted).Error)
		want = append(want, change{inserted, integ, st(models.Complete), nil})
		return nil
	})
	require.NoError(t, err)
	var got []change
	require.NoError(t, db.Raw(`SELECT transaction_id, integration_id, from_state, to_state
		FROM transaction_state_changes WHERE id > ? ORDER BY id`, since).Scan(&got).Error)
	require.Equal(t, want, got, "every state change is recorded, in order, whatever ran before it in the database transaction")
	// The counts by state (compacted counts plus the statements' deltas)
	// are the transactions' states, before and after a compaction.
	rd := query.NewReader(db, nil)
	for _, when := range []string{"before compaction", "after compaction"} {
		var actual []struct {
			State models.TransportState
			N     int64
		}
		require.NoError(t, db.Raw(`SELECT state, count(*) AS n FROM transactions WHERE integration_id = ? GROUP BY state`,
			integ).Scan(&actual).Error)
		wantCounts := map[models.TransportState]int64{}
		for _, a := range actual {
			wantCounts[a.State] = a.N
		}
		counts, err := rd.CountTransactionsByState(ctx, integ)
		require.NoError(t, err)
		gotCounts := map[models.TransportState]int64{}
		for _, c := range counts {
			if c.Count != 0 {
				gotCounts[c.State] = c.Count
			}
		}
		require.Equal(t, wantCounts, gotCounts, "counts by state %s", when)
		folded, err := rd.CompactTransactionCounts(ctx)
		require.NoError(t, err)
		if when == "before compaction" {
			require.Positive(t, folded)
		}
	}

	// unifi gen's escape: it writes the history of its bulk inserts itself.
	require.NoError(t, db.Raw(`SELECT coalesce(max(id), 0) FROM transaction_state_changes`).Scan(&since).Error)
	require.NoError(t, db.Transaction(func(tx *gorm.DB) error {
		require.NoError(t, tx.Exec(`SET LOCAL unifi.bulk_load = 'on'`).Error)
		return tx.Exec(`INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id,
				ticket_id, direction, state, seq)
			SELECT number || '-g', message_ident || '-g', integration_id, bond_id, message_id, ticket_id, direction, ?, seq + 200
			FROM transactions WHERE id = ?`, models.Complete, head.ID).Error
	}))
	var n int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM transaction_state_changes WHERE id > ?`, since).Scan(&n).Error)
	require.Zero(t, n, "unifi.bulk_load = 'on' (unifi gen) skips the history")

	// The triggers: one per event, AFTER, on every row (no column list, no
	// WHEN), enabled, writing the history; no escape but unifi.bulk_load.
	var trigs []struct {
		Name    string
		Type    int
		Enabled string
		NoWhen  bool
		Columns string
		Source  string
	}
	require.NoError(t, db.Raw(`SELECT t.tgname AS name, t.tgtype AS type, t.tgenabled AS enabled, t.tgqual IS NULL AS no_when,
			t.tgattr::text AS columns, p.prosrc AS source
		FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
		WHERE t.tgrelid = 'transactions'::regclass AND NOT t.tgisinternal`).Scan(&trigs).Error)
	const tgBefore, tgInsert, tgDelete, tgUpdate, tgInstead = 2, 4, 8, 16, 64
	for _, ev := range []struct {
		name string
		bit  int
	}{{"INSERT", tgInsert}, {"UPDATE", tgUpdate}, {"DELETE", tgDelete}} {
		n := 0
		for _, tr := range trigs {
			if tr.Type&ev.bit == 0 || !strings.Contains(tr.Source, "INSERT INTO transaction_state_changes (") {
				continue
			}
			require.Zero(t, tr.Type&(tgBefore|tgInstead), "%s: an AFTER trigger", tr.Name)
			require.NotEqual(t, "D", tr.Enabled, "%s: enabled", tr.Name)
			require.True(t, tr.NoWhen, "%s: no WHEN condition", tr.Name)
			require.Empty(t, strings.TrimSpace(tr.Columns), "%s: no column list", tr.Name)
			n++
		}
		require.Equal(t, 1, n, "one trigger records the state changes of %s on transactions", ev.name)
	}
	for _, tr := range trigs {
		require.NotContains(t, tr.Source, "unifi.history", "%s: no opt-out", tr.Name)
		require.Equal(t, strings.Count(tr.Source, "current_setting("), strings.Count(tr.Source, "current_setting('unifi.bulk_load'"),
			"%s: no escape but unifi.bulk_load (unifi gen)", tr.Name)
	}
}

// TestStateHistoryOfALargeStatementAfterASmallOne checks that a statement
// changing many states is recorded in time linear in its rows, also when a
// one-row update ran first in the session (migration 00320): PL/pgSQL plans
// the trigger's join of old and new rows from the first statement's size and
// keeps that plan, and a nested loop there took 6.6 s for 10,000 rows and
// grows with their square (about 15 s for the 15,000 here; 0.45 s as a hash
// join, 2026-12-07). The statement timeout, 6 s, is 13x the linear time and
// below the quadratic one on any machine: a slower machine only makes the
// quadratic case slower still.
func TestStateHistoryOfALargeStatementAfterASmallOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})
	s := store.NewStore(db, account.New(db, nil), nil)
	tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "large"})
	require.NoError(t, err)
	var head models.Transaction
	require.NoError(t, db.Where("ticket_id = ?", tk.ID).First(&head).Error)
	const n = 15000
	err = db.Transaction(func(tx *gorm.DB) error {
		// Finished inbound transactions on the same bond, then a one-row
		// state change: the first statement in the session to fire the
		// update trigger.
		require.NoError(t, tx.Exec(`INSERT INTO transactions (number, message_ident, integration_id, bond_id, message_id,
				ticket_id, direction, state, seq, external_message_id)
			SELECT number || '-l' || g, message_ident || '-l' || g, integration_id, bond_id, message_id, ticket_id,
				'Inbound', ?, seq + 1000 + g, 'EXT-l' || g
			FROM transactions, generate_series(1, ?) g WHERE id = ?`, models.Complete, n, head.ID).Error)
		require.NoError(t, tx.Exec(`UPDATE transactions SET state = ? WHERE id = (SELECT min(id) FROM transactions
			WHERE number LIKE '%-l%')`, models.Ignored).Error)
		require.NoError(t, tx.Exec(`SET LOCAL statement_timeout = '6s'`).Error)
		start := time.Now()
		defer func() { t.Logf("%d state changes in one statement: %v", n, time.Since(start)) }()
		return tx.Exec(`UPDATE transactions SET state = ? WHERE number LIKE '%-l%' AND state = ?`,
			models.Ignored, models.Complete).Error
	})
	require.NoError(t, err, "a statement of %d state changes after a one-row one is recorded in linear time", n)
	var changes int64
	require.NoError(t, db.Raw(`SELECT count(*) FROM transaction_state_changes WHERE from_state = ? AND to_state = ?`,
		models.Complete, models.Ignored).Scan(&changes).Error)
	require.EqualValues(t, n, changes, "every change recorded")
}
