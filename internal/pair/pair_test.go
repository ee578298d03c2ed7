package pair_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/config"
	"unifi/internal/pair"
	"unifi/internal/testdb"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/query"
	"unifi/models/store"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// startPair starts instances A and B, each with its own database, engine and
// server, their demo integrations pointing at each other.
func startPair(t *testing.T) (a, b *pair.Instance) {
	t.Helper()
	ctx := context.Background()
	lnA, err := pair.Listen("127.0.0.1:0")
	require.NoError(t, err)
	lnB, err := pair.Listen("127.0.0.1:0")
	require.NoError(t, err)
	cfg := config.Config{InboundMaxBytes: 1 << 20, DBMaxConns: 20, BaseURL: "http://localhost",
		SessionKey: bytes.Repeat([]byte{1}, 32), SecretKey: bytes.Repeat([]byte{2}, 32)}
	logger := slog.New(slog.DiscardHandler)
	if os.Getenv("PAIR_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	opts := func(name, dbURL, peerURL string) pair.Opts {
		return pair.Opts{Name: name, DatabaseURL: dbURL, PeerURL: peerURL, Config: cfg, Logger: logger.With("side", name),
			Workers: 2, PollInterval: 100 * time.Millisecond, PasswordCost: bcrypt.MinCost, RetryDelayS: 1}
	}
	oa := opts("A", testdb.URL(t), "http://"+lnB.Addr().String())
	oa.Listener = lnA
	ob := opts("B", testdb.URL(t), "http://"+lnA.Addr().String())
	ob.Listener = lnB
	a, err = pair.Start(ctx, oa)
	require.NoError(t, err)
	t.Cleanup(func() { closeInstance(t, a) })
	b, err = pair.Start(ctx, ob)
	require.NoError(t, err)
	t.Cleanup(func() { closeInstance(t, b) })
	return a, b
}

func closeInstance(t *testing.T, i *pair.Instance) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	require.NoError(t, i.Close(ctx))
}

func ticketBy(t *testing.T, db *gorm.DB, where string, args ...any) (models.Ticket, bool) {
	var k models.Ticket
	err := db.Where(where, args...).Limit(1).Find(&k).Error
	require.NoError(t, err)
	return k, k.ID != 0
}

func bondOf(t *testing.T, db *gorm.DB, ticketID int64) models.Bond {
	var b models.Bond
	require.NoError(t, db.Where("ticket_id = ?", ticketID).Take(&b).Error)
	return b
}

func transactionsOf(t *testing.T, db *gorm.DB, bondID int64, dir models.Direction) []models.Transaction {
	var out []models.Transaction
	require.NoError(t, db.Where("bond_id = ? AND direction = ?", bondID, dir).Order("seq, id").Find(&out).Error)
	return out
}

// settled reports whether every transaction of the instance is finished.
func settled(t *testing.T, db *gorm.DB) (bool, error) {
	var rows []struct {
		State models.TransportState
		N     int
	}
	require.NoError(t, db.Raw("SELECT state, count(*) AS n FROM transactions GROUP BY state ORDER BY state").Scan(&rows).Error)
	s := ""
	ok := true
	for _, r := range rows {
		s += fmt.Sprintf("%s=%d ", r.State, r.N)
		ok = ok && r.State.Finished()
	}
	return ok, errors.New(s)
}

func bothSettled(t *testing.T, a, b *pair.Instance) func() (bool, error) {
	return func() (bool, error) {
		okA, sa := settled(t, a.DB)
		okB, sb := settled(t, b.DB)
		return okA && okB, fmt.Errorf("A: %v, B: %v", sa, sb)
	}
}

func update(t *testing.T, i *pair.Instance, number string, edit func(*store.TicketInput)) *models.Ticket {
	t.Helper()
	k, err := i.Store.GetTicketByNumber(context.Background(), number)
	require.NoError(t, err)
	in := store.TicketInputOf(k)
	edit(&in)
	k, err = i.Store.UpdateTicket(context.Background(), models.SystemActor, k.ID, k.Version, in)
	require.NoError(t, err)
	return k
}

// TestTwoInstances bonds two instances of the product to each other, end to end.
func TestTwoInstances(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := startPair(t)
	admin := models.SystemActor

	// Both integrations were made from empty databases through the template
	// form, over HTTP, by the admin: the activity log says so.
	for _, i := range []*pair.Instance{a, b} {
		var log models.ActivityLog
		require.NoError(t, i.DB.Where("action = ? AND record_label = ?", "import package", models.DemoIntegrationName).Take(&log).Error)
		require.Equal(t, "admin", log.UserName)
		require.Equal(t, "127.0.0.1", log.RemoteAddr, "from an HTTP request")
		var seeded int64
		require.NoError(t, i.DB.Model(&models.ActivityLog{}).Where("action = 'seed demo'").Count(&seeded).Error)
		require.Zero(t, seeded, "not the demo seed")
	}

	// A ticket created on A appears on B, and both sides learn each other's number.
	tkA, err := a.Store.CreateTicket(ctx, admin, store.TicketInput{ShortDescription: "Printer on fire",
		Description: "Third floor", Priority: 2, Urgency: 1, Impact: 2, AssignmentGroup: "Facilities"})
	require.NoError(t, err)
	var tkB models.Ticket
	wait.For(t, 30*time.Second, func() (bool, error) {
		var ok bool
		tkB, ok = ticketBy(t, b.DB, "short_description = ?", "Printer on fire")
		return ok, nil
	}, "the ticket on B")
	require.Equal(t, 2, tkB.Priority)
	require.Equal(t, 1, tkB.Urgency)
	require.Equal(t, "Facilities", tkB.AssignmentGroup)
	wait.For(t, 30*time.Second, bothSettled(t, a, b), "both sides complete")
	bondA, bondB := bondOf(t, a.DB, tkA.ID), bondOf(t, b.DB, tkB.ID)
	require.Equal(t, tkB.Number, bondA.ExternalReference, "A learned B's number from the synchronous answer")
	require.Equal(t, tkA.Number, bondB.ExternalReference)
	require.Equal(t, models.BondOpen, bondA.State)
	require.Equal(t, models.BondOpen, bondB.State)
	require.True(t, bondA.Owner || !bondB.Owner, "B does not own a bond A created")
	outA := transactionsOf(t, a.DB, bondA.ID, models.Outbound)
	require.Len(t, outA, 1)
	require.Equal(t, models.Complete, outA[0].State, "B's receipt completed A's transaction")
	require.Equal(t, models.ProcessAccepted, outA[0].ProcessState)
	inB := transactionsOf(t, b.DB, bondB.ID, models.Inbound)
	require.Len(t, inB, 1)
	require.Equal(t, models.Complete, inB[0].State, "B's engine sent the receipt")
	require.Equal(t, outA[0].MessageIdent, inB[0].ExternalMessageID)

	// An update on A reaches B.
	update(t, a, tkA.Number, func(in *store.TicketInput) { in.State = "In Progress"; in.WorkNotes = "Engineer on the way" })
	wait.For(t, 30*time.Second, func() (bool, error) {
		k, _ := ticketBy(t, b.DB, "id = ?", tkB.ID)
		return k.State == "In Progress" && k.WorkNotes == "Engineer on the way", fmt.Errorf("%s/%s", k.State, k.WorkNotes)
	}, "A's update on B")
	// An update on B reaches A.
	update(t, b, tkB.Number, func(in *store.TicketInput) { in.Description = "Third floor, by the lifts" })
	wait.For(t, 30*time.Second, func() (bool, error) {
		k, _ := ticketBy(t, a.DB, "id = ?", tkA.ID)
		return k.Description == "Third floor, by the lifts", fmt.Errorf("description %q", k.Description)
	}, "B's update on A")
	wait.For(t, 30*time.Second, bothSettled(t, a, b), "both sides complete")
	for _, tr := range append(transactionsOf(t, a.DB, bondA.ID, models.Outbound), transactionsOf(t, b.DB, bondB.ID, models.Outbound)...) {
		require.Equal(t, models.Complete, tr.State)
		require.Equal(t, models.ProcessAccepted, tr.ProcessState, "%s", tr.Number)
	}

	// A rejected update on B: B has no mapping for priority 5 ("Planning").
	require.NoError(t, b.DB.Exec(`UPDATE fields SET value_map = value_map - '5' WHERE property = 'priority'
		AND message_id = (SELECT id FROM messages WHERE name = 'UpdateIncident')`).Error)
	update(t, a, tkA.Number, func(in *store.TicketInput) { in.Priority = 5 })
	want := `Value "Planning" of field "priority" has no mapping.`
	wait.For(t, 30*time.Second, func() (bool, error) {
		out := transactionsOf(t, a.DB, bondA.ID, models.Outbound)
		last := out[len(out)-1]
		return last.State == models.Complete && last.ProcessState == models.ProcessRejected,
			fmt.Errorf("%s/%s", last.State, last.ProcessState)
	}, "the rejection back on A")
	out := transactionsOf(t, a.DB, bondA.ID, models.Outbound)
	require.Equal(t, want, out[len(out)-1].ProcessError, "A's transaction shows B's process error")
	require.Equal(t, want, bondOf(t, a.DB, tkA.ID).ProcessError, "A's bond (and so A's ticket page) shows it")
	bonds, err := a.Query.QueryBonds(ctx, query.BondFilter{TicketID: tkA.ID})
	require.NoError(t, err)
	require.Len(t, bonds, 1)
	require.Equal(t, want, bonds[0].ProcessError, "the ticket's Integrations list shows it")
	k, _ := ticketBy(t, b.DB, "id = ?", tkB.ID)
	require.Equal(t, 2, k.Priority, "the rejected update did not change B's ticket")
	require.Equal(t, want, bondOf(t, b.DB, tkB.ID).ProcessError)

	// Pausing A queues A's outbound while B keeps working.
	_, err = a.Store.PauseIntegration(ctx, admin, a.Integration.ID)
	require.NoError(t, err)
	before := len(transactionsOf(t, a.DB, bondA.ID, models.Outbound))
	for i := 1; i <= 5; i++ {
		update(t, a, tkA.Number, func(in *store.TicketInput) { in.Priority = 2; in.WorkNotes = fmt.Sprintf("paused %d", i) })
	}
	queued := transactionsOf(t, a.DB, bondA.ID, models.Outbound)[before:]
	require.Len(t, queued, 5)
	for _, tr := range queued {
		require.Equal(t, models.Queued, tr.State)
	}
	update(t, b, tkB.Number, func(in *store.TicketInput) { in.AssignmentGroup = "Field Services" })
	wait.For(t, 30*time.Second, func() (bool, error) {
		k, _ := ticketBy(t, a.DB, "id = ?", tkA.ID)
		return k.AssignmentGroup == "Field Services", fmt.Errorf("group %q", k.AssignmentGroup)
	}, "B's update on A while A is paused")
	wait.For(t, 30*time.Second, func() (bool, error) { return settled(t, b.DB) }, "B's side complete while A is paused")
	for _, tr := range transactionsOf(t, a.DB, bondA.ID, models.Outbound)[before:] {
		require.Equal(t, models.Queued, tr.State, "nothing of A's is sent while A is paused")
	}

	// Resuming delivers A's queue in order.
	job, err := a.Store.ResumeIntegration(ctx, admin, a.Integration.ID)
	require.NoError(t, err)
	wait.For(t, 30*time.Second, func() (bool, error) {
		j, err := a.Store.GetBulkJob(ctx, job.ID)
		require.NoError(t, err)
		return j.State == models.BulkComplete && j.Done == 5, fmt.Errorf("%s %d/%d", j.State, j.Done, j.Total)
	}, "the resume job")
	wait.For(t, 30*time.Second, bothSettled(t, a, b), "both sides complete")
	k, _ = ticketBy(t, b.DB, "id = ?", tkB.ID)
	require.Equal(t, "paused 5", k.WorkNotes, "the last queued update is the last applied")
	var sent []string
	for _, tr := range transactionsOf(t, a.DB, bondA.ID, models.Outbound) {
		sent = append(sent, tr.MessageIdent)
	}
	var arrived []string
	for _, tr := range transactionsOf(t, b.DB, bondB.ID, models.Inbound) {
		arrived = append(arrived, tr.ExternalMessageID)
	}
	require.Equal(t, sent, arrived, "B received A's messages once each, in A's order")
}
