package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"gorm.io/driver/postgres"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/designer"
	"unifi/models/modelstest"
	"unifi/models/queue"
	"unifi/models/script"
	"unifi/models/store"
)

func TestTicket(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T, state models.IntegrationState) (*store.Store, *modelstest.Fixture) {
		db := testdb.New(t)
		fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9", State: &state})
		return store.NewStore(db, account.New(db, nil), nil), fx
	}
	outbound := func(t *testing.T, s *store.Store, ticketID int64) []models.Transaction {
		var out []models.Transaction
		require.NoError(t, s.DB(ctx).Where("ticket_id = ?", ticketID).Order("seq").Find(&out).Error)
		return out
	}

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "  Disk full  ", Priority: 1})
		require.NoError(t, err)
		require.Regexp(t, `^INC\d{7}$`, tk.Number)
		require.Equal(t, "Disk full", tk.ShortDescription)
		require.Equal(t, "New", tk.State)
		require.Equal(t, 1, tk.Version)
		txs := outbound(t, s, tk.ID)
		require.Len(t, txs, 1)
		require.Equal(t, models.Sending, txs[0].State)
		require.Equal(t, fx.Messages["CreateIncident"].ID, txs[0].MessageID)
		var stage models.Stage
		require.NoError(t, s.DB(ctx).Where("transaction_id = ?", txs[0].ID).Take(&stage).Error)
		require.Equal(t, "Critical", stage.Data.V["priority"])
		var bond models.Bond
		require.NoError(t, s.DB(ctx).Take(&bond, txs[0].BondID).Error)
		require.Equal(t, models.BondPending, bond.State)
		require.Equal(t, tk.Number, bond.InternalReference)
		require.True(t, bond.Owner)

		in := store.TicketInputOf(tk)
		in.WorkNotes = "looking"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		in.State = "Resolved"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		require.Equal(t, 3, tk.Version)
		txs = outbound(t, s, tk.ID)
		require.Len(t, txs, 3)
		require.Equal(t, fx.Messages["UpdateIncident"].ID, txs[1].MessageID)
		require.Equal(t, fx.Messages["ResolveIncident"].ID, txs[2].MessageID, "a move to Resolved is the resolve trigger")
		require.Equal(t, []models.TransportState{models.Sending, models.Queued, models.Queued},
			[]models.TransportState{txs[0].State, txs[1].State, txs[2].State})
		require.Equal(t, txs[0].BondID, txs[2].BondID)

		acts, err := s.ListActivity(ctx, store.ActivityFilter{RecordType: "ticket", RecordID: tk.ID})
		require.NoError(t, err)
		require.Len(t, acts, 3)
	})
	// A clock stepped back (NTP at a restart) does not make a bond's message
	// stamps go back; a replay keeps the original's (docs/domain.md, "The
	// message's time stamp").
	t.Run("ClockSteppedBack", func(t *testing.T) {
		t.Parallel()
		db := testdb.New(t)
		active := models.IntegrationActive
		fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9", State: &active})
		clock := time.Date(2026, 12, 5, 10, 15, 0, 0, time.UTC) // 15 minutes ahead
		s := store.NewStore(db, account.New(db, nil), &store.StoreOpts{NowFunc: func() time.Time { return clock }})
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "clock"})
		require.NoError(t, err)
		for i, step := range []time.Duration{time.Second, -15 * time.Minute, time.Second} {
			clock = clock.Add(step)
			in := store.TicketInputOf(tk)
			in.WorkNotes = fmt.Sprintf("note %d", i)
			tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
			require.NoError(t, err)
		}
		txs := outbound(t, s, tk.ID)
		require.Len(t, txs, 4)
		var stamps []time.Time
		for _, tr := range txs {
			var stage models.Stage
			require.NoError(t, s.DB(ctx).Where("transaction_id = ?", tr.ID).Take(&stage).Error)
			require.NotNil(t, stage.TimeStamp, "stage of %s", tr.MessageIdent)
			stamps = append(stamps, *stage.TimeStamp)
		}
		want := time.Date(2026, 12, 5, 10, 15, 1, 0, time.UTC)
		require.True(t, stamps[0].Equal(time.Date(2026, 12, 5, 10, 15, 0, 0, time.UTC)), "%s", stamps[0])
		require.True(t, stamps[1].Equal(want), "%s", stamps[1])
		require.True(t, stamps[2].Equal(want.Add(time.Microsecond)), "after the step back: %s", stamps[2])
		require.True(t, stamps[3].Equal(want.Add(2*time.Microsecond)), "%s", stamps[3])
		var bond models.Bond
		require.NoError(t, s.DB(ctx).Take(&bond, txs[0].BondID).Error)
		require.NotNil(t, bond.LastOutboundAt)
		require.True(t, bond.LastOutboundAt.Equal(stamps[3]))

		// The head fails and is replayed: the replay goes out first, with the
		// original's stamp, before the three queued behind it.
		require.NoError(t, s.DB(ctx).Exec(`UPDATE transactions SET state = ?, lease_owner = NULL WHERE id = ?`,
			models.Error, txs[0].ID).Error)
		r, err := s.ReplayTransaction(ctx, fx.Manager, txs[0].ID)
		require.NoError(t, err)
		var stage models.Stage
		require.NoError(t, s.DB(ctx).Where("transaction_id = ?", r.ID).Take(&stage).Error)
		require.NotNil(t, stage.TimeStamp)
		require.True(t, stage.TimeStamp.Equal(stamps[0]), "the replay's stamp %s", stage.TimeStamp)
		require.NoError(t, s.DB(ctx).Take(&bond, txs[0].BondID).Error)
		require.True(t, bond.LastOutboundAt.Equal(stamps[3]), "a replay does not move the bond's last stamp")
	})
	// The change writes each transaction's log with it: the "message send"
	// line, then the lines its Source to Stage script logged, in order.
	t.Run("LogLines", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "logged"})
		require.NoError(t, err)
		in := store.TicketInputOf(tk)
		in.WorkNotes = "before the script"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		// The Store has kept the process's configuration for the edit above;
		// a script saved since is a new configuration, and the next edit runs it.
		_, err = designer.New(s, nil).SaveScript(ctx, fx.Admin, fx.Messages["UpdateIncident"].ID, script.SourceToStage, 0,
			"log('first', ticket.work_notes); log('second'); log('third'); return stage;")
		require.NoError(t, err)
		in.WorkNotes = "busy"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		txs := outbound(t, s, tk.ID)
		require.Len(t, txs, 3)
		lines := func(tr models.Transaction) []string {
			var logs []models.TransactionLog
			require.NoError(t, s.DB(ctx).Where("transaction_id = ?", tr.ID).Order("id").Find(&logs).Error)
			var got []string
			for _, l := range logs {
				got = append(got, string(l.Kind)+": "+l.Line)
			}
			return got
		}
		sent := func(tr models.Transaction) string {
			return "message send: UpdateIncident " + tr.MessageIdent + " created for " + tk.Number + " (update trigger), Queued"
		}
		require.Equal(t, []string{sent(txs[1])}, lines(txs[1]))
		require.Equal(t, []string{sent(txs[2]), "script: first busy", "script: second", "script: third"}, lines(txs[2]))
	})
	// With an engine running in the process (a queue.Taker), a change writes
	// what it can send at once leased to that engine, due again when the
	// lease expires, and hands its id over after the commit; what must wait
	// in the queue is neither leased nor handed over.
	t.Run("HandedToTheEngine", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		taker := &recordingTaker{owner: "engine-a", seconds: 30}
		s.HandTo(taker)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "handed"})
		require.NoError(t, err)
		create := outbound(t, s, tk.ID)[0]
		require.Equal(t, models.Sending, create.State)
		require.Len(t, taker.handed, 1)
		// Handed over with what a claim reads: the row, its Stage as
		// stored, its bond's references.
		h := taker.handed[0]
		require.Equal(t, create.ID, h.Transaction.ID)
		require.Equal(t, "engine-a", *h.Transaction.LeaseOwner)
		require.Equal(t, tk.Number, h.InternalReference)
		var stage models.Stage
		require.NoError(t, s.DB(ctx).Where("transaction_id = ?", create.ID).Take(&stage).Error)
		require.JSONEq(t, string(must(json.Marshal(stage.Data.V))), string(h.StageData))
		require.Equal(t, "handed", stage.Data.V["short_description"])
		require.NotNil(t, h.StageTimeStamp)
		require.NoError(t, s.DB(ctx).Exec("UPDATE transactions SET state = ?, lease_owner = NULL WHERE id = ?",
			models.Complete, create.ID).Error)

		in := store.TicketInputOf(tk)
		in.WorkNotes = "the bond is free"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		in.WorkNotes = "the bond is busy"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)

		txs := outbound(t, s, tk.ID)
		require.Len(t, txs, 3)
		sent, queued := txs[1], txs[2]
		require.Equal(t, models.Sending, sent.State)
		require.Equal(t, []int64{create.ID, sent.ID}, taker.ids())
		require.NotNil(t, sent.LeaseOwner)
		require.Equal(t, "engine-a", *sent.LeaseOwner)
		var leaseLeft, dueAtExpiry float64
		require.NoError(t, s.DB(ctx).Raw(`SELECT extract(epoch FROM t.lease_expires_at - now()) - i.sync_timeout_s,
			extract(epoch FROM t.next_attempt_at - t.lease_expires_at)
			FROM transactions t JOIN integrations i ON i.id = t.integration_id WHERE t.id = ?`, sent.ID).
			Row().Scan(&leaseLeft, &dueAtExpiry))
		require.InDelta(t, 30, leaseLeft, 5, "the lease is the engine's plus the sync timeout, in database time")
		require.Zero(t, dueAtExpiry, "due again when the lease expires")
		require.Equal(t, models.Queued, queued.State)
		require.Nil(t, queued.LeaseOwner)

		s.StopHandingTo(taker)
		require.NoError(t, s.DB(ctx).Exec("UPDATE transactions SET state = ? WHERE id IN (?, ?)", models.Complete, sent.ID, queued.ID).Error)
		in.WorkNotes = "the engine has stopped"
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		last := outbound(t, s, tk.ID)[3]
		require.Equal(t, models.Sending, last.State)
		require.Nil(t, last.LeaseOwner, "left for any engine's claim")
		require.Equal(t, []int64{create.ID, sent.ID}, taker.ids())
		// Each change made while the engine ran told it so, and ended after
		// its hand-over (the engine gives way to changes in flight).
		require.Equal(t, []string{"1 handed", "2 handed", "2 handed"}, taker.edits)
		require.Zero(t, taker.running)
	})
	// An edit of a ticket the Store wrote or read is planned before it
	// reaches the database and sent in one round trip, as long as the row
	// is still the one kept: a change by any other writer (here a statement
	// that leaves the version as it is) sends it the second path, planned
	// from the row read under the lock.
	t.Run("PlannedAhead", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "ahead"})
		require.NoError(t, err)
		edit := func(notes string) {
			t.Helper()
			in := store.TicketInputOf(tk)
			in.WorkNotes = notes
			tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
			require.NoError(t, err)
		}
		plannedAhead := func() [2]int64 { sent, stale := store.PlannedAhead(s); return [2]int64{sent, stale} }
		edit("read under the lock") // the create kept neither the ticket nor the configuration
		require.Equal(t, [2]int64{0, 0}, plannedAhead())
		edit("planned ahead")
		require.Equal(t, [2]int64{1, 0}, plannedAhead())
		got, err := s.GetTicket(ctx, tk.ID)
		require.NoError(t, err)
		require.Equal(t, "planned ahead", got.WorkNotes)
		require.Equal(t, 3, got.Version)
		require.True(t, got.UpdatedAt.Equal(tk.UpdatedAt), "the edit returns the time it wrote")

		stamped := tk.FieldStamps.V["assignment_group"]
		require.NoError(t, s.DB(ctx).Exec("UPDATE tickets SET assignment_group = 'Network' WHERE id = ?", tk.ID).Error)
		edit("after a change elsewhere")
		require.Equal(t, [2]int64{1, 1}, plannedAhead())
		acts, err := s.ListActivity(ctx, store.ActivityFilter{RecordType: "ticket", RecordID: tk.ID})
		require.NoError(t, err)
		require.Equal(t, "Network", acts[0].Before.V["assignment_group"], "planned from the row as it is, not as kept")
		require.NotEqual(t, stamped, tk.FieldStamps.V["assignment_group"], "the edit's move from Network to empty is stamped")
		txs := outbound(t, s, tk.ID)
		require.Len(t, txs, 4, "a create and three edits, none sent twice")
		for i, tr := range txs {
			require.EqualValues(t, i+1, tr.Seq)
		}

		// GetTicket keeps what it read: the edit after it is planned ahead.
		tk, err = s.GetTicket(ctx, tk.ID)
		require.NoError(t, err)
		edit("after a read")
		require.Equal(t, [2]int64{2, 1}, plannedAhead())

		// A value the kept configuration refuses is checked again against
		// the configuration read under the lock: here a field added since.
		require.NoError(t, s.DB(ctx).Create(&models.ProcessField{ProcessID: tk.ProcessID, Name: "cost", Label: "Cost",
			Type: models.FieldNumber, Version: 1}).Error)
		in := store.TicketInputOf(tk)
		in.Custom = map[string]string{"cost": "12.5"}
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		require.Equal(t, 12.5, tk.Custom.V["cost"])
		require.Equal(t, [2]int64{2, 1}, plannedAhead())
	})
	t.Run("PausedQueues", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationPaused)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "paused"})
		require.NoError(t, err)
		txs := outbound(t, s, tk.ID)
		require.Len(t, txs, 1)
		require.Equal(t, models.Queued, txs[0].State)
	})
	t.Run("OffSendsNothing", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationOff)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "off"})
		require.NoError(t, err)
		require.Empty(t, outbound(t, s, tk.ID))
	})
	t.Run("Validation", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		_, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: " ", State: "Sleeping", Urgency: 7})
		var ve *models.ValidationError
		require.ErrorAs(t, err, &ve)
		require.Equal(t, "Give a short description of the incident.", ve.Fields["short_description"])
		require.Contains(t, ve.Fields["state"], "Sleeping")
		require.Contains(t, ve.Fields, "urgency")
		var n int64
		require.NoError(t, s.DB(ctx).Model(&models.Ticket{}).Count(&n).Error)
		require.Zero(t, n)
	})
	t.Run("Conflict", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "race"})
		require.NoError(t, err)
		in := store.TicketInputOf(tk)
		_, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		_, err = s.UpdateTicket(ctx, fx.Admin, tk.ID, tk.Version, in)
		var ce *models.ConflictError
		require.ErrorAs(t, err, &ce)
		require.Contains(t, ce.Reason, "changed by someone else meanwhile")
		// The refused edit had begun its database transaction and locked the
		// ticket: its connection went back to the pool rolled back, not idle
		// in the transaction with the locks held until the pool hands it out
		// again. Asked from a connection of its own, so as not to take that one.
		watch, werr := pgx.Connect(ctx, s.DB(ctx).Dialector.(*postgres.Dialector).DSN)
		require.NoError(t, werr)
		defer watch.Close(ctx)
		var open int
		require.NoError(t, watch.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND state LIKE 'idle in transaction%'`).Scan(&open))
		require.Zero(t, open, "a connection was left inside the refused edit's transaction")
		require.Len(t, outbound(t, s, tk.ID), 2, "the refused change sent nothing")
	})
	t.Run("Forbidden", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		_, err := s.CreateTicket(ctx, fx.Manager, store.TicketInput{ShortDescription: "no"})
		var fe *models.ForbiddenError
		require.ErrorAs(t, err, &fe)
	})
	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t, models.IntegrationActive)
		_, err := s.UpdateTicket(ctx, fx.Analyst, 424242, 1, store.TicketInput{ShortDescription: "x"})
		require.ErrorIs(t, err, models.ErrNotFound)
		_, err = s.GetTicketByNumber(ctx, "INC0000000")
		require.ErrorIs(t, err, models.ErrNotFound)
	})
}

// BenchmarkUpdateTicket times a ticket edit that sends one message, no engine
// running (go test -run '^$' -bench UpdateTicket ./models/store): the figures
// behind UpdateTicket's round trips (docs/engine.md, "Idle latency under half
// the delivery load").
func BenchmarkUpdateTicket(b *testing.B) {
	ctx := context.Background()
	db := testdb.New(b)
	active := models.IntegrationActive
	fx := modelstest.Integration(ctx, b, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9", State: &active})
	s := store.NewStore(db, account.New(db, nil), nil)
	tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "bench"})
	require.NoError(b, err)
	for i := 0; b.Loop(); i++ {
		in := store.TicketInputOf(tk)
		in.WorkNotes = fmt.Sprintf("note %d", i)
		tk, err = s.UpdateTicket(ctx, fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(b, err)
	}
}

// recordingTaker stands for the engine of the process: it keeps what it is
// handed, and which changes told it they ran (Editing) and when they ended.
type recordingTaker struct {
	owner   string
	seconds float64
	handed  []queue.Handed
	running int      // changes between Editing and done
	edits   []string // per change ended: what it had handed over by then ("3 handed")
}

func (r *recordingTaker) Lease() (string, float64) { return r.owner, r.seconds }
func (r *recordingTaker) Take(handed []queue.Handed) {
	if r.running != 1 {
		panic("handed over outside a change that said it runs (Editing)")
	}
	r.handed = append(r.handed, handed...)
}
func (r *recordingTaker) Editing() (done func()) {
	r.running++
	return func() {
		r.running--
		r.edits = append(r.edits, fmt.Sprintf("%d handed", len(r.handed)))
	}
}

func (r *recordingTaker) ids() []int64 {
	var ids []int64
	for _, h := range r.handed {
		ids = append(ids, h.Transaction.ID)
	}
	return ids
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
