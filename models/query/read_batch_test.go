package query_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/fixture"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/query"
	"unifi/models/store"
)

// The page reads go through pgx read batches, not GORM; these tests read the
// same records through GORM and require the very same values.

// requireSameAsGORM reads the record id of got's type through GORM and
// requires got to equal it.
func requireSameAsGORM[T any](t *testing.T, db *gorm.DB, id int64, got T) {
	t.Helper()
	var want T
	require.NoError(t, db.Take(&want, id).Error)
	require.Equal(t, want, got)
}

// requireBondRow requires r's bond columns to be the bond's, as GORM reads
// them.
func requireBondRow(t *testing.T, db *gorm.DB, r query.BondRow) {
	t.Helper()
	var b models.Bond
	require.NoError(t, db.Take(&b, r.ID).Error)
	require.Equal(t, query.BondRow{ID: b.ID, IntegrationID: b.IntegrationID, TicketID: b.TicketID,
		ExternalReference: b.ExternalReference, State: b.State, ProcessError: b.ProcessError, UpdatedAt: b.UpdatedAt,
		IntegrationName: r.IntegrationName, TicketNumber: r.TicketNumber, Status: r.Status}, r)
}

func TestLoadTransactionDetail(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	tk := fixture.Ticket(t, db, in.ProcessID, nil)
	b := fixture.Bond(t, db, in.ID, tk, nil)
	orig := fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Error), Requests: 3,
		Error: fixture.Ptr("HTTP 500 after 3 attempts")})
	admin := fixture.User(t, db, models.RoleAdmin)
	replay, err := st.ReplayTransaction(ctx, models.ActorOf(admin, "127.0.0.1"), orig.ID)
	require.NoError(t, err)

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		d, err := rd.LoadTransactionDetail(ctx, orig.ID)
		require.NoError(t, err)
		requireSameAsGORM(t, db, orig.ID, d.Transaction)
		var msg models.Message
		require.NoError(t, db.Take(&msg, orig.MessageID).Error)
		var bond models.Bond
		require.NoError(t, db.Take(&bond, b.ID).Error)
		var ticket models.Ticket
		require.NoError(t, db.Take(&ticket, tk.ID).Error)
		require.Equal(t, query.IntegrationRef{ID: in.ID, Name: in.Name, AttachLogs: in.AttachLogs}, d.Integration)
		require.Equal(t, query.MessageRef{ID: msg.ID, Name: msg.Name}, d.Message)
		require.Equal(t, query.BondRef{ID: bond.ID, InternalReference: bond.InternalReference,
			ExternalReference: bond.ExternalReference}, d.Bond)
		require.NotEmpty(t, ticket.ShortDescription)
		require.Equal(t, query.TicketRef{ID: ticket.ID, Number: ticket.Number, ShortDescription: ticket.ShortDescription},
			d.Ticket)
		var stage models.Stage
		require.NoError(t, db.Where("transaction_id = ?", orig.ID).Take(&stage).Error)
		require.NotNil(t, d.Stage)
		require.Equal(t, stage, *d.Stage)
		var requests []models.HTTPRequest
		require.NoError(t, db.Where("transaction_id = ?", orig.ID).Order("id").Find(&requests).Error)
		require.Len(t, requests, 3)
		require.Equal(t, requests, d.Requests)
		var logs []models.TransactionLog
		require.NoError(t, db.Where("transaction_id = ?", orig.ID).Order("id").Find(&logs).Error)
		require.NotEmpty(t, logs)
		require.Equal(t, logs, d.Logs)
		require.Equal(t, []query.TransactionRef{{ID: replay.ID, Number: replay.Number}}, d.ReplayedAs)
		require.Nil(t, d.ReplayOf)
		var activity []models.ActivityLog
		require.NoError(t, db.Where("record_type = 'transaction' AND record_id = ?", orig.ID).Order("id DESC").
			Find(&activity).Error)
		require.NotEmpty(t, activity, "the replay is logged on the original")
		require.Equal(t, activity, d.Activity)
		require.Len(t, d.Changes, 2, "created as Error, then Ignored by the replay")
	})

	t.Run("ReplayOf", func(t *testing.T) {
		t.Parallel()
		d, err := rd.LoadTransactionDetail(ctx, replay.ID)
		require.NoError(t, err)
		require.Equal(t, &query.TransactionRef{ID: orig.ID, Number: orig.Number}, d.ReplayOf)
		requireSameAsGORM(t, db, replay.ID, d.Transaction)
		require.Empty(t, d.ReplayedAs)
		require.Empty(t, d.Requests)
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := rd.LoadTransactionDetail(ctx, replay.ID+1000)
		require.ErrorIs(t, err, models.ErrNotFound)
	})
}

func TestLoadIntegrationOverview(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	var made []*models.Transaction
	for i := range 12 {
		tk := fixture.Ticket(t, db, in.ProcessID, nil)
		b := fixture.Bond(t, db, in.ID, tk, nil)
		st := models.Complete
		switch i % 3 {
		case 1:
			st = models.Error
		case 2:
			st = models.Queued
		}
		made = append(made, fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: &st}))
	}
	// Another integration's bonds and transactions, newer than all of these:
	// the overview's latest ones must leave them out.
	other := fixture.Copy(t, db, in, "other")
	for range 2 {
		fixture.Transaction(t, db, fixture.Bond(t, db, other.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil), nil)
	}
	admin := fixture.User(t, db, models.RoleAdmin)
	job, err := st.RepairIntegration(ctx, models.ActorOf(admin, "127.0.0.1"), in.ID)
	require.NoError(t, err)
	var process models.Process
	require.NoError(t, db.Take(&process, in.ProcessID).Error)

	// Before the parallel subtests: the job is shown finished for a moment.
	t.Run("FinishedJob", func(t *testing.T) {
		require.NoError(t, db.Exec(`UPDATE bulk_jobs SET state = ? WHERE id = ?`, models.BulkComplete, job.ID).Error)
		defer func() {
			require.NoError(t, db.Exec(`UPDATE bulk_jobs SET state = ? WHERE id = ?`, models.BulkRunning, job.ID).Error)
		}()
		o, err := rd.LoadIntegrationOverview(ctx, in.ID)
		require.NoError(t, err)
		require.Zero(t, o.RunningJobID, "the newest job has ended")
	})

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		o, err := rd.LoadIntegrationOverview(ctx, in.ID)
		require.NoError(t, err)
		requireSameAsGORM(t, db, in.ID, o.Integration)
		require.Equal(t, process.Name, o.ProcessName)
		conn, err := st.ActiveConnection(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, &query.ConnectionSummary{ID: conn.ID, Name: conn.Name, Environment: conn.Environment,
			EndpointURL: conn.EndpointURL, AuthType: conn.AuthType}, o.Connection)
		msgs, err := st.ListMessages(ctx, in.ID)
		require.NoError(t, err)
		require.Len(t, o.Messages, len(msgs))
		for i, m := range msgs {
			require.Equal(t, query.MessageRow{ID: m.ID, Name: m.Name, Type: m.Type, Direction: m.Direction, Async: m.Async,
				Trigger: m.Trigger, Path: m.Path}, o.Messages[i])
		}
		counts, err := rd.CountTransactionsByState(ctx, in.ID)
		require.NoError(t, err)
		require.Equal(t, counts, o.Counts)
		require.Equal(t, models.BulkRunning, job.State)
		require.Equal(t, job.ID, o.RunningJobID)
		require.Zero(t, o.Conflicts)

		require.Len(t, o.Recent, 10)
		var recent []models.Transaction
		require.NoError(t, db.Where("integration_id = ?", in.ID).Order("created_at DESC, id DESC").Limit(10).
			Find(&recent).Error)
		for i, r := range o.Recent {
			w := recent[i]
			var msg models.Message
			require.NoError(t, db.Take(&msg, w.MessageID).Error)
			var tk models.Ticket
			require.NoError(t, db.Take(&tk, w.TicketID).Error)
			require.Equal(t, query.TransactionRow{ID: w.ID, Number: w.Number, MessageIdent: w.MessageIdent,
				IntegrationID: w.IntegrationID, BondID: w.BondID, MessageID: w.MessageID, TicketID: w.TicketID,
				Direction: w.Direction, State: w.State, ProcessState: w.ProcessState, CreatedAt: w.CreatedAt,
				FinishedAt: w.FinishedAt, IntegrationName: "demo", MessageName: msg.Name, TicketNumber: tk.Number}, r)
		}

		require.Len(t, o.Bonds, 10)
		wantStatus := map[int64]models.BondStatus{} // each bond has one transaction: it is the head unless finished
		for _, tr := range made {
			st := tr.State
			wantStatus[tr.BondID] = models.BondStatusOf(&st)
			if st.Finished() {
				wantStatus[tr.BondID] = models.BondStatusOf(nil)
			}
		}
		statuses := map[models.BondStatus]int{}
		for _, r := range o.Bonds {
			requireBondRow(t, db, r)
			var tk models.Ticket
			require.NoError(t, db.Take(&tk, r.TicketID).Error)
			require.Equal(t, tk.Number, r.TicketNumber)
			require.Equal(t, "demo", r.IntegrationName)
			require.Equal(t, wantStatus[r.ID], r.Status, "bond %d", r.ID)
			statuses[r.Status]++
		}
		require.Equal(t, map[models.BondStatus]int{models.BondOK: 3, models.BondError: 3, models.BondQueued: 4}, statuses,
			"the ten most recently updated of twelve bonds: the first two made (OK, Error) are left out")
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		_, err := rd.LoadIntegrationOverview(ctx, in.ID+1000)
		require.ErrorIs(t, err, models.ErrNotFound)
	})

	t.Run("NoActiveConnection", func(t *testing.T) {
		t.Parallel()
		o, err := rd.LoadIntegrationOverview(ctx, other.ID)
		require.NoError(t, err)
		require.Equal(t, "other", o.Integration.Name)
		require.Nil(t, o.Connection)
		require.Equal(t, o.ProcessName, process.Name)
		require.Zero(t, o.RunningJobID, "the running job is the demo's")
	})
}

// A payload search that hits its time limit (3 s) stops with
// ErrSearchTooSlow; the list still gets its filter choices. Here it waits on
// a lock on stages until the limit ends it.
func TestPayloadSearchStopped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	st, rd := store.NewStore(db, account.New(db, nil), nil), query.NewReader(db, nil)
	in := fixture.Demo(t, st)
	tk := fixture.Ticket(t, db, in.ProcessID, nil)
	fixture.Transaction(t, db, fixture.Bond(t, db, in.ID, tk, nil), nil)
	lock := db.Begin()
	require.NoError(t, lock.Error)
	t.Cleanup(func() { lock.Rollback() })
	require.NoError(t, lock.Exec("LOCK TABLE stages IN ACCESS EXCLUSIVE MODE").Error)

	f := query.TransactionFilter{Text: "on fire", InPayload: true}
	l, err := rd.LoadTransactionList(ctx, f, nil, 50)
	require.NoError(t, err)
	require.True(t, l.SearchStopped)
	require.Empty(t, l.Page.Rows)
	require.Equal(t, []query.IntegrationChoice{{ID: in.ID, Name: in.Name}}, l.Integrations,
		"the filter's choices are still read")
	require.NotEmpty(t, l.Messages)

	_, _, err = rd.CountMatchingTransactions(ctx, f, 100)
	require.ErrorIs(t, err, query.ErrSearchTooSlow)

	// The connection is left clean: the next read works.
	require.NoError(t, lock.Rollback().Error)
	l, err = rd.LoadTransactionList(ctx, f, nil, 50)
	require.NoError(t, err)
	require.False(t, l.SearchStopped)
	require.Len(t, l.Page.Rows, 1)
}
