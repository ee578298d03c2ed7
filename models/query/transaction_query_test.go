package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fixture"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/query"
	"unifi/models/store"
)

func TestQueryTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	tk := fixture.Ticket(t, db, in.ProcessID, nil)
	b := fixture.Bond(t, db, in.ID, tk, nil)
	base := time.Now().Add(-time.Hour)
	var made []*models.Transaction
	for i := range 7 {
		st := models.Complete
		if i == 6 {
			st = models.Error
		}
		made = append(made, fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: &st,
			CreatedAt: fixture.Ptr(base.Add(time.Duration(i) * time.Minute))}))
	}
	// Another integration's transactions, newer and older than these: a
	// list filtered by integration must skip them on every page.
	other := fixture.Copy(t, db, in, "other")
	ob := fixture.Bond(t, db, other.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil)
	for _, at := range []time.Duration{-time.Hour, time.Hour} {
		fixture.Transaction(t, db, ob, &fixture.TransactionOpts{CreatedAt: fixture.Ptr(base.Add(at))})
	}

	t.Run("KeysetPages", func(t *testing.T) {
		t.Parallel()
		var seen []int64
		var after *query.TransactionCursor
		for range 4 {
			page, err := rd.QueryTransactions(ctx, query.TransactionFilter{IntegrationID: in.ID}, after, 3)
			require.NoError(t, err)
			for _, r := range page.Rows {
				seen = append(seen, r.ID)
				require.Equal(t, "demo", r.IntegrationName)
				require.Equal(t, tk.Number, r.TicketNumber)
			}
			if page.Next == nil {
				break
			}
			c, err := query.ParseTransactionCursor(page.Next.String())
			require.NoError(t, err)
			after = c
		}
		want := make([]int64, 0, len(made))
		for i := len(made) - 1; i >= 0; i-- {
			want = append(want, made[i].ID)
		}
		require.Equal(t, want, seen)

		// The integration with a state, over keyset pages: every
		// placeholder (state literal, cursor, limit, integration) in play.
		seen = nil
		after = nil
		for range 4 {
			page, err := rd.QueryTransactions(ctx, query.TransactionFilter{IntegrationID: in.ID,
				States: []models.TransportState{models.Complete}}, after, 4)
			require.NoError(t, err)
			for _, r := range page.Rows {
				seen = append(seen, r.ID)
			}
			if after = page.Next; after == nil {
				break
			}
		}
		require.Equal(t, want[1:], seen, "the six Complete, newest first")
	})

	t.Run("Filters", func(t *testing.T) {
		t.Parallel()
		page, err := rd.QueryTransactions(ctx, query.TransactionFilter{IntegrationID: in.ID,
			States: []models.TransportState{models.Error}}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 1)
		require.Equal(t, made[6].ID, page.Rows[0].ID)
		page, err = rd.QueryTransactions(ctx, query.TransactionFilter{States: []models.TransportState{models.Complete}}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 8, "both integrations' Complete transactions")

		page, err = rd.QueryTransactions(ctx, query.TransactionFilter{Text: made[2].MessageIdent}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 1)

		page, err = rd.QueryTransactions(ctx, query.TransactionFilter{Text: tk.Number}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 7)

		from := base.Add(150 * time.Second)
		page, err = rd.QueryTransactions(ctx, query.TransactionFilter{IntegrationID: in.ID, CreatedFrom: &from}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 4)

		n, capped, err := rd.CountMatchingTransactions(ctx, query.TransactionFilter{IntegrationID: in.ID}, 5)
		require.NoError(t, err)
		require.True(t, capped)
		require.EqualValues(t, 5, n)

		ids, err := rd.MatchingTransactionIDs(ctx, query.TransactionFilter{BondID: b.ID}, 100)
		require.NoError(t, err)
		require.Equal(t, made[0].ID, ids[0])
		require.Len(t, ids, 7)
	})

	t.Run("Payload", func(t *testing.T) {
		t.Parallel()
		page, err := rd.QueryTransactions(ctx, query.TransactionFilter{IntegrationID: in.ID, Text: "on fire", InPayload: true}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 7)
		page, err = rd.QueryTransactions(ctx, query.TransactionFilter{Text: "on fire", InPayload: true}, nil, 50)
		require.NoError(t, err)
		require.Len(t, page.Rows, 9, "both integrations'")
		page, err = rd.QueryTransactions(ctx, query.TransactionFilter{Text: "on fire"}, nil, 50)
		require.NoError(t, err)
		require.Empty(t, page.Rows)
	})
}

func TestCountTransactionsByState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	tk := fixture.Ticket(t, db, in.ProcessID, nil)
	b := fixture.Bond(t, db, in.ID, tk, nil)
	for range 3 {
		fixture.Transaction(t, db, b, nil)
	}
	q := fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})
	count := func() map[models.TransportState]int64 {
		cs, err := rd.CountTransactionsByState(ctx, in.ID)
		require.NoError(t, err)
		require.Len(t, cs, 10)
		m := map[models.TransportState]int64{}
		for _, c := range cs {
			m[c.State] = c.Count
		}
		return m
	}
	require.Equal(t, int64(3), count()[models.Complete])
	require.Equal(t, int64(1), count()[models.Queued])

	folded, err := rd.CompactTransactionCounts(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 4, folded, "one delta row per statement: the fixture inserts the four one by one")
	require.Equal(t, int64(1), count()[models.Queued])

	require.NoError(t, db.Exec("UPDATE transactions SET state = ? WHERE id = ?", models.Ignored, q.ID).Error)
	c := count()
	require.Equal(t, int64(0), c[models.Queued])
	require.Equal(t, int64(1), c[models.Ignored])
	require.Equal(t, int64(3), c[models.Complete])

	d, err := rd.LoadTransactionDetail(ctx, q.ID)
	require.NoError(t, err)
	require.Len(t, d.Changes, 2, "created, then ignored")
	require.Nil(t, d.Changes[0].FromState)
	require.Equal(t, models.Ignored, *d.Changes[1].ToState)
}

func TestLoadBondDetail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	tk := fixture.Ticket(t, db, in.ProcessID, nil)
	b := fixture.Bond(t, db, in.ID, tk, &fixture.BondOpts{ProcessError: fixture.Ptr("Urgency may not be changed by the vendor")})
	fixture.Transaction(t, db, b, nil)
	fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Error)})
	fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})
	fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})

	d, err := rd.LoadBondDetail(ctx, b.ID)
	require.NoError(t, err)
	require.Equal(t, models.BondError, d.Status)
	require.Len(t, d.Transactions, 4)
	require.Equal(t, 0, d.Transactions[1].QueuePosition)
	require.Equal(t, 1, d.Transactions[2].QueuePosition)
	require.Equal(t, 2, d.Transactions[3].QueuePosition)
	require.Equal(t, "Urgency may not be changed by the vendor", d.LatestProcessError)

	td, err := rd.LoadTicketDetail(ctx, tk.ID)
	require.NoError(t, err)
	require.Len(t, td.Bonds, 1)
	require.Equal(t, models.BondError, td.Bonds[0].Status)
	requireBondRow(t, db, td.Bonds[0])
	require.NotEmpty(t, td.Bonds[0].ProcessError)

	rows, err := rd.QueryTickets(ctx, query.TicketFilter{WithProcessErrors: true})
	require.NoError(t, err)
	require.Len(t, rows, 1)
	require.Equal(t, 1, rows[0].ProcessErrorCount)

	ov, err := rd.LoadOperationsView(ctx)
	require.NoError(t, err)
	require.Len(t, ov.Cards, 1)
	require.EqualValues(t, 2, ov.Cards[0].QueueDepth)
	require.EqualValues(t, 1, ov.Cards[0].ErrorsLastHour)
	require.NotNil(t, ov.Cards[0].OldestQueuedAt)
	require.Len(t, ov.Recent, 1)
	require.EqualValues(t, 1, ov.BondsTodayCount)
	require.Len(t, ov.BondsToday, 1)
	requireBondRow(t, db, ov.BondsToday[0])
	require.Equal(t, tk.Number, ov.BondsToday[0].TicketNumber)
}

// A bond is stuck when its head is in a blocking state with work queued
// behind it; a blocking head with nothing behind it, or a queue behind a head
// still in progress, is not.
func TestStuckBonds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	bond := func(head models.TransportState, queued int) *models.Bond {
		b := fixture.Bond(t, db, in.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil)
		fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(head)})
		for range queued {
			fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})
		}
		return b
	}
	errorStuck := bond(models.Error, 2)
	timedOutStuck := bond(models.TimedOut, 1)
	bond(models.Error, 0)           // blocking, but nothing waits
	bond(models.AwaitingReceipt, 3) // in progress: the queue moves on its own

	ov, err := rd.LoadOperationsView(ctx)
	require.NoError(t, err)
	require.Len(t, ov.Cards, 1)
	require.EqualValues(t, 2, ov.Cards[0].StuckBonds)
	require.EqualValues(t, 6, ov.Cards[0].QueueDepth)
	require.True(t, ov.Cards[0].ActiveConnected)

	rows, err := rd.QueryBonds(ctx, query.BondFilter{IntegrationID: in.ID, Stuck: true})
	require.NoError(t, err)
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	require.ElementsMatch(t, []int64{errorStuck.ID, timedOutStuck.ID}, ids)
}
