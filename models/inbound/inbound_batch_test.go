package inbound_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/testdb"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/queue"
	"unifi/models/store"
)

// groupBundle is the demo on a fresh database with a Store whose inbound
// updates are applied in groups (grouped) and, on the same database, a Store
// that applies every message on its own (single).
type groupBundle struct {
	db      *gorm.DB
	grouped *inbound.Service
	single  *inbound.Service
}

func setupGroup(t *testing.T) *groupBundle {
	t.Helper()
	db := testdb.NewSeeded(t, "demo", func(ctx context.Context, db *gorm.DB) error {
		_, err := store.NewStore(db, account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost}), nil).SeedDemo(ctx,
			store.SeedDemoOpts{PeerURL: "http://127.0.0.1:9"})
		return err
	})
	accounts := account.New(db, nil)
	return &groupBundle{db: db, grouped: inbound.NewService(db, accounts, nil),
		single: inbound.NewService(db, accounts, &inbound.Opts{GroupsOff: true})}
}

// inboundReq is what the HTTP layer hands the Store for an envelope sent by
// the demo peer with its bearer token.
func inboundReq(t *testing.T, name, sourceID, sourceRef, targetRef string, ts time.Time, data map[string]any) inbound.Request {
	t.Helper()
	env := models.Envelope{Message: models.EnvelopeHeader{Name: name, TimeStamp: ts, SourceReference: sourceRef,
		TargetReference: targetRef, SourceID: sourceID}, Data: data}
	body, err := json.Marshal(env)
	require.NoError(t, err)
	return inbound.Request{Integration: models.DemoIntegrationName, Bearer: models.DemoPeerToken, JSON: true,
		Body: body, Meta: inbound.RequestMeta{Method: "POST", URL: "/api/v1/integrations/demo/messages",
			Header: map[string][]string{"Authorization": {"Bearer " + models.DemoPeerToken}}, Started: time.Now()}}
}

func groupData(short string) map[string]any {
	return map[string]any{"short_description": short, "state": "in_progress", "priority": "High"}
}

// prepare creates the remote tickets EXT-A, EXT-B and EXT-C (our tickets by
// their reference), applies U-0 on A and closes C's bond.
func (b *groupBundle) prepare(t *testing.T, t0 time.Time) map[string]string {
	t.Helper()
	ctx := context.Background()
	ours := map[string]string{}
	for _, ref := range []string{"EXT-A", "EXT-B", "EXT-C"} {
		res, err := b.single.ReceiveInbound(ctx, inboundReq(t, "CreateIncident", "C-"+ref, ref, "", t0,
			map[string]any{"short_description": "Ticket " + ref}))
		require.NoError(t, err)
		ours[ref] = res.Response.Message.SourceReference
	}
	_, err := b.single.ReceiveInbound(ctx, inboundReq(t, "UpdateIncident", "U-0", "EXT-A", ours["EXT-A"], t0.Add(time.Second),
		groupData("A zero")))
	require.NoError(t, err)
	_, err = b.single.ReceiveInbound(ctx, inboundReq(t, "ResolveIncident", "R-C", "EXT-C", ours["EXT-C"], t0.Add(time.Second),
		map[string]any{"state": "resolved", "close_notes": "done"}))
	require.NoError(t, err)
	return ours
}

// groupCase is one group's messages: every outcome a group can have.
func groupCase(t *testing.T, t0 time.Time, ours map[string]string) []inbound.Request {
	bad := groupData("B rejected")
	bad["priority"] = "Apocalyptic"
	return []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one")),   // applied
		inboundReq(t, "UpdateIncident", "U-0", "EXT-A", ours["EXT-A"], t0.Add(time.Second), groupData("A zero")),     // stored before
		inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one")),   // earlier in the group
		inboundReq(t, "UpdateIncident", "U-2", "EXT-A", ours["EXT-A"], t0.Add(5*time.Second), groupData("A late")),   // older: not applied
		inboundReq(t, "UpdateIncident", "U-3", "EXT-B", ours["EXT-B"], t0.Add(10*time.Second), bad),                  // rejected
		inboundReq(t, "UpdateIncident", "U-4", "EXT-404", "INC9999999", t0.Add(10*time.Second), groupData("nobody")), // no bond
		inboundReq(t, "UpdateIncident", "U-5", "EXT-C", ours["EXT-C"], t0.Add(10*time.Second), groupData("closed")),  // bond Closed
		inboundReq(t, "UpdateIncident", "U-6", "EXT-B", ours["EXT-B"], t0.Add(20*time.Second), groupData("B fixed")), // clears B's error
		inboundReq(t, "UpdateIncident", "U-7", "EXT-A", "", t0.Add(20*time.Second), groupData("A by theirs")),        // found by their reference
		inboundReq(t, "ResolveIncident", "R-B", "EXT-B", ours["EXT-B"], t0.Add(30*time.Second),
			map[string]any{"state": "resolved", "close_notes": "fixed"}), // closes B
		inboundReq(t, "UpdateIncident", "U-8", "EXT-B", ours["EXT-B"], t0.Add(40*time.Second), groupData("B after")), // B now Closed
	}
}

// stored is what the database holds after the messages, with the numbers
// the sequences handed out and the clock's times taken out.
func (b *groupBundle) stored(t *testing.T) string {
	t.Helper()
	var out string
	err := b.db.Raw(`SELECT concat_ws(E'\n',
		(SELECT string_agg(concat_ws(' ', number, short_description, state, priority, version), E'\n' ORDER BY number) FROM tickets),
		(SELECT string_agg(concat_ws(' ', internal_reference, external_reference, state, process_error, next_seq,
			last_inbound_at, history), E'\n' ORDER BY internal_reference) FROM bonds),
		(SELECT string_agg(concat_ws(' ', b.internal_reference, t.seq, t.external_message_id, t.state, t.process_state,
			t.process_error, t.finished_at IS NULL, s.data::text,
			(SELECT string_agg(l.level || ' ' || l.line, '; ' ORDER BY l.id) FROM transaction_logs l WHERE l.transaction_id = t.id),
			(SELECT string_agg(concat_ws(' ', r.state, r.response_status, r.request_headers::text, r.request_body), '; ' ORDER BY r.id)
			   FROM http_requests r WHERE r.transaction_id = t.id)), E'\n' ORDER BY b.internal_reference, t.seq)
		   FROM transactions t JOIN bonds b ON b.id = t.bond_id LEFT JOIN stages s ON s.transaction_id = t.id
		  WHERE t.direction = 'Inbound'),
		(SELECT count(*) FROM http_requests WHERE transaction_id IS NULL))`).Scan(&out).Error
	require.NoError(t, err)
	out = regexp.MustCompile(`(MSG|TRN)\d{7}`).ReplaceAllString(out, "$1#")
	return regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`).ReplaceAllString(out, "T")
}

// outcome is an answer without what differs between two runs (numbers, times).
func outcome(res *inbound.Result, err error) string {
	var r *inbound.Refusal
	switch {
	case errors.As(err, &r):
		orig := ""
		if r.Original != nil {
			orig = " original " + r.Original.TargetID + " " + r.Original.SourceReference
		}
		return fmt.Sprintf("refused %s: %s (%s)%s", r.Kind, r.Reason, r.Detail, orig)
	case err != nil:
		return "error " + err.Error()
	}
	st := res.Response.Status
	return fmt.Sprintf("%s %s %s %s applied=%v", res.Response.Message.Name, res.Response.Message.SourceReference,
		st.ProcessState, st.Error, res.Applied)
}

// TestInboundGroup receives messages with every outcome as one group and
// checks each answer, then that a group stores exactly what receiving the
// same messages one at a time stores.
func TestInboundGroup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()

	b := setupGroup(t)
	ours := b.prepare(t, t0)
	var u0 string
	require.NoError(t, b.db.Raw("SELECT message_ident FROM transactions WHERE external_message_id = 'U-0'").Scan(&u0).Error)
	reqs := groupCase(t, t0, ours)
	res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, reqs)
	require.Equal(t, []bool{true, true, true, true, true, false, false, true, true, true, false}, byGroup,
		"the group decides all but an unknown bond and bonds whose rules refuse the message")

	require.NoError(t, errs[0])
	require.Equal(t, "Accepted", res[0].Response.Status.ProcessState)
	require.True(t, res[0].Applied)
	var r *inbound.Refusal
	require.ErrorAs(t, errs[1], &r)
	require.Equal(t, inbound.TextDuplicate, r.Reason)
	require.Equal(t, u0, r.Original.SourceID, "a duplicate's answer names the message first received")
	require.ErrorAs(t, errs[2], &r)
	require.Equal(t, inbound.TextDuplicate, r.Reason)
	require.Equal(t, res[0].Response.Message.SourceID, r.Original.SourceID, "the copy in the same group is the duplicate")
	require.Equal(t, ours["EXT-A"], r.Original.SourceReference)
	require.NoError(t, errs[3])
	require.Equal(t, "Accepted", res[3].Response.Status.ProcessState)
	require.False(t, res[3].Applied, "an older message is recorded, not applied")
	require.NoError(t, errs[4])
	require.Equal(t, "Rejected", res[4].Response.Status.ProcessState)
	require.Equal(t, `Value "Apocalyptic" of field "priority" has no mapping.`, res[4].Response.Status.Error)
	require.ErrorAs(t, errs[5], &r)
	require.Equal(t, inbound.RefusalNoBond, r.Kind)
	require.ErrorAs(t, errs[6], &r)
	require.Equal(t, inbound.TextNotValidForBond, r.Reason)
	for _, i := range []int{7, 8, 9} {
		require.NoError(t, errs[i])
		require.True(t, res[i].Applied, "message %d", i)
	}
	require.Equal(t, ours["EXT-A"], res[8].Response.Message.SourceReference, "found by their reference")
	require.ErrorAs(t, errs[10], &r)
	require.Equal(t, inbound.TextNotValidForBond, r.Reason, "the bond an earlier message of the group closed refuses it")

	var ticketA models.Ticket
	require.NoError(t, b.db.Where("number = ?", ours["EXT-A"]).Take(&ticketA).Error)
	require.Equal(t, "A by theirs", ticketA.ShortDescription)
	require.Equal(t, 4, ticketA.Version, "created, U-0, U-1, U-7: the late U-2 is not applied")
	var bondB models.Bond
	require.NoError(t, b.db.Where("internal_reference = ?", ours["EXT-B"]).Take(&bondB).Error)
	require.Empty(t, bondB.ProcessError, "the last accepted message clears the process error")
	require.Equal(t, models.BondClosed, bondB.State)
	require.Contains(t, bondB.History, "Rejected: Value")
	var seqs []int64
	require.NoError(t, b.db.Raw(`SELECT t.seq FROM transactions t JOIN bonds b ON b.id = t.bond_id
		WHERE b.internal_reference = ? ORDER BY t.seq`, ours["EXT-A"]).Scan(&seqs).Error)
	require.Equal(t, []int64{1, 2, 3, 4, 5}, seqs, "Create, U-0, U-1, U-2, U-7 in arrival order")
	for i, x := range res {
		if x == nil {
			continue
		}
		var body string
		require.NoError(t, b.db.Raw("SELECT response_body FROM http_requests WHERE transaction_id = ?", x.Transaction.ID).
			Scan(&body).Error)
		require.JSONEq(t, string(x.Body), body, "message %d: the stored answer is the one sent", i)
	}

	// The same messages one at a time, on a database prepared the same way.
	one := setupGroup(t)
	require.Equal(t, ours, one.prepare(t, t0))
	for i, req := range reqs {
		x, err := one.single.ReceiveInbound(ctx, req)
		require.Equal(t, outcome(x, err), outcome(res[i], errs[i]), "message %d answered otherwise", i)
	}
	require.Equal(t, one.stored(t), b.stored(t), "a group stores what the messages one at a time store")
	b.grouped.Wait() // the committer ends once nothing waits for it
}

// TestInboundGroupFailsWhole: when a group's write fails (here a copy of
// one of its messages, received by another process just before), every
// message of the group takes the one-message path: the copy is refused as a
// duplicate, the others are applied, nothing is stored twice or half-way.
func TestInboundGroupFailsWhole(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	b := setupGroup(t)
	ours := b.prepare(t, t0)
	reqs := []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one")),
		inboundReq(t, "UpdateIncident", "U-2", "EXT-A", ours["EXT-A"], t0.Add(20*time.Second), groupData("A two")),
	}
	calls := 0
	b.grouped.SetInboundBeforeWrite(func() {
		calls++
		if calls > 1 {
			return
		}
		// Another process receives U-2 for bond B first (the group holds
		// bond A's lock, not B's).
		_, err := b.single.ReceiveInbound(ctx, inboundReq(t, "UpdateIncident", "U-2", "EXT-B", ours["EXT-B"],
			t0.Add(20*time.Second), groupData("B two")))
		require.NoError(t, err)
	})
	res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, reqs)
	require.Equal(t, 1, calls, "the messages went to the one-message path, not to another group")
	require.Equal(t, []bool{false, false}, byGroup)
	require.NoError(t, errs[0])
	require.True(t, res[0].Applied)
	var r *inbound.Refusal
	require.ErrorAs(t, errs[1], &r)
	require.Equal(t, inbound.TextDuplicate, r.Reason)
	require.Equal(t, ours["EXT-B"], r.Original.SourceReference, "the copy received first is the original")

	var ticketA models.Ticket
	require.NoError(t, b.db.Where("number = ?", ours["EXT-A"]).Take(&ticketA).Error)
	require.Equal(t, "A one", ticketA.ShortDescription)
	require.Equal(t, 3, ticketA.Version, "created, U-0, U-1")
	var n int64
	require.NoError(t, b.db.Raw(`SELECT count(*) FROM transactions WHERE external_message_id IN ('U-1', 'U-2')`).
		Scan(&n).Error)
	require.EqualValues(t, 2, n)
	var history string
	require.NoError(t, b.db.Raw("SELECT history FROM bonds WHERE internal_reference = ?", ours["EXT-A"]).Scan(&history).Error)
	require.NotContains(t, history, "U-2", "nothing of the failed group is left")
}

// TestInboundGroupConfigurationChange: a configuration changed after the
// snapshot was read (by any process, here by SQL) is honoured by the next
// group: its messages are decided by the one-message path on the new
// configuration.
func TestInboundGroupConfigurationChange(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	b := setupGroup(t)
	ours := b.prepare(t, t0)
	_, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one"))})
	require.NoError(t, errs[0])
	require.Equal(t, []bool{true}, byGroup)

	require.NoError(t, b.db.Exec("UPDATE messages SET bond_ownership = 'must_not_own' WHERE name = 'UpdateIncident'").Error)
	res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-2", "EXT-A", ours["EXT-A"], t0.Add(20*time.Second), groupData("A two"))})
	require.Equal(t, []bool{false}, byGroup, "checked against the old configuration: the one-message path decides")
	var r *inbound.Refusal
	require.ErrorAs(t, errs[0], &r, "answered %v", res[0])
	require.Equal(t, inbound.TextNotValidForBond, r.Reason)

	require.NoError(t, b.db.Exec("UPDATE messages SET bond_ownership = 'ignore' WHERE name = 'UpdateIncident'").Error)
	_, errs, byGroup = b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-3", "EXT-A", ours["EXT-A"], t0.Add(30*time.Second), groupData("A three"))})
	require.NoError(t, errs[0])
	require.Equal(t, []bool{true}, byGroup, "the snapshot was read again")

	require.NoError(t, b.db.Exec("UPDATE users SET active = false WHERE name = ?", models.DemoPeerAccount.Name).Error)
	_, err := b.grouped.ReceiveInbound(ctx, inboundReq(t, "UpdateIncident", "U-4", "EXT-A", ours["EXT-A"],
		t0.Add(40*time.Second), groupData("A four")))
	require.ErrorAs(t, err, &r)
	require.Equal(t, inbound.RefusalUnauthenticated, r.Kind, "a deactivated account is refused at once")
	require.True(t, strings.HasPrefix(r.Reason, "The credentials are not valid"))
}

// TestInboundGroupWakesEngine: a group whose messages want a receipt
// notifies the engine (every process listening), with its COMMIT.
func TestInboundGroupWakesEngine(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	b := setupGroup(t)
	ours := b.prepare(t, t0)
	sqlDB, err := b.db.DB()
	require.NoError(t, err)
	listener, err := sqlDB.Conn(ctx)
	require.NoError(t, err)
	defer listener.Close()
	require.NoError(t, listener.Raw(func(dc any) error {
		_, err := dc.(*stdlib.Conn).Conn().Exec(ctx, "LISTEN "+queue.NotifyChannel)
		return err
	}))

	res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one"))})
	require.NoError(t, errs[0])
	require.Equal(t, []bool{true}, byGroup)
	require.Equal(t, models.SendingReceipt, res[0].Transaction.State, "UpdateIncident wants a receipt")

	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	require.NoError(t, listener.Raw(func(dc any) error {
		n, err := dc.(*stdlib.Conn).Conn().WaitForNotification(wctx)
		if err == nil && n.Channel != queue.NotifyChannel {
			err = fmt.Errorf("notified on %s", n.Channel)
		}
		return err
	}), "the engine is woken")
}

// TestInboundGroupLockedBond: a bond locked elsewhere for longer than the
// group's lock timeout does not hold up the other messages of its group:
// the group gives up and its messages take the one-message path, where only
// the locked bond's message waits.
func TestInboundGroupLockedBond(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	b := setupGroup(t)
	ours := b.prepare(t, t0)
	b.grouped.SetInboundLockTimeout(50 * time.Millisecond)

	locker := b.db.Begin()
	require.NoError(t, locker.Error)
	var id int64
	require.NoError(t, locker.Raw("SELECT id FROM bonds WHERE internal_reference = ? FOR UPDATE", ours["EXT-B"]).
		Scan(&id).Error)

	type outcome struct {
		res     []*inbound.Result
		errs    []error
		byGroup []bool
	}
	done := make(chan outcome, 1)
	go func() {
		res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
			inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one")),
			inboundReq(t, "UpdateIncident", "U-2", "EXT-B", ours["EXT-B"], t0.Add(10*time.Second), groupData("B one")),
		})
		done <- outcome{res, errs, byGroup}
	}()
	wait.For(t, 10*time.Second, func() (bool, error) {
		var n int64
		return b.db.Raw("SELECT count(*) FROM transactions WHERE external_message_id = 'U-1'").Scan(&n).Error == nil && n == 1, nil
	}, "the message on the free bond is applied while the other bond is locked")
	require.NoError(t, locker.Rollback().Error)

	var got outcome
	select {
	case got = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the message on the locked bond was not applied once the lock was gone")
	}
	require.Equal(t, []bool{false, false}, got.byGroup, "the group gave up")
	for i := range got.errs {
		require.NoError(t, got.errs[i])
		require.True(t, got.res[i].Applied)
	}
}

// TestInboundGroupPanics: a panic inside the committer leaves no request
// waiting and ends no process: the group's messages take the one-message
// path.
func TestInboundGroupPanics(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Now().Add(-time.Hour).UTC()
	b := setupGroup(t)
	ours := b.prepare(t, t0)
	b.grouped.SetInboundBeforeWrite(func() { panic("a bug in the group") })
	res, errs, byGroup := b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-1", "EXT-A", ours["EXT-A"], t0.Add(10*time.Second), groupData("A one"))})
	require.Equal(t, []bool{false}, byGroup)
	require.NoError(t, errs[0])
	require.True(t, res[0].Applied)

	b.grouped.SetInboundBeforeWrite(nil)
	_, errs, byGroup = b.grouped.ReceiveInboundTogether(ctx, []inbound.Request{
		inboundReq(t, "UpdateIncident", "U-2", "EXT-A", ours["EXT-A"], t0.Add(20*time.Second), groupData("A two"))})
	require.NoError(t, errs[0])
	require.Equal(t, []bool{true}, byGroup, "the next group runs as usual")
}
