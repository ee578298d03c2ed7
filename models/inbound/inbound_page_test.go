package inbound_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/inbound"
)

// TestPageSameAsOneAtATime: a page of messages received together
// (inbound.Page: Creates held back and written in one batch) gives every
// message the outcome it has when the page's messages are received one
// after another in one transaction (as the poller used to), and leaves the
// same records: tickets and their numbers, bonds and their histories,
// transactions in the same order and states, Stages, HTTP Request records
// and log lines. The page mixes what breaks a batch's order: repeats of a
// message ID (before the page and inside it), a remote ticket already
// bonded (before, inside), a Create whose fields make no ticket, an update
// of a bond the page creates, an unreadable body, an unknown message name.
func TestPageSameAsOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	create := func(id, ref, short string) []byte {
		return inboundReq(t, "CreateIncident", id, ref, "", t0, map[string]any{"short_description": short}).Body
	}
	page := [][]byte{
		create("C-1", "EXT-1", "One"),
		create("C-2", "EXT-2", "Two"),
		create("C-0", "EXT-9", "Repeat of a message ID received before the page"),
		create("C-3", "EXT-0", "A remote ticket bonded before the page"),
		create("C-2", "EXT-3", "Repeat of a message ID in the page"),
		create("C-4", "EXT-1", "A remote ticket bonded in the page"),
		create("C-5", "EXT-5", " "),
		inboundReq(t, "UpdateIncident", "U-1", "EXT-1", "", t0.Add(time.Second), map[string]any{"short_description": "One, changed"}).Body,
		create("C-6", "EXT-6", "Six"),
		[]byte(`{"message": `),
		inboundReq(t, "NoSuchMessage", "N-1", "EXT-10", "", t0, map[string]any{}).Body,
		create("C-7", "EXT-7", "Seven"),
		create("C-8", "EXT-8", "Eight"),
		create("C-9", "EXT-7", "A remote ticket held in the page"),
		create("C-10", "EXT-10", "Ten"),
		create("C-11", "EXT-11", "Rejected by the Stage to Target script"),
		create("C-12", "EXT-12", "Twelve, whose scripts logged"),
		create("C-13", "EXT-13", "Thirteen"),
	}
	// What the inbound scripts decided beside the envelope (models/webhook).
	scripted := map[int]*inbound.Scripted{15: {Rejected: "Not ours"}, 16: {Logs: []string{"identified", "mapped"}}}
	type outcome struct {
		res string
		err string
	}
	run := func(together bool) ([]outcome, []string) {
		b := setupGroup(t)
		// Log lines kept: a message's scripts' lines too.
		require.NoError(t, b.db.Exec(`UPDATE integrations SET attach_logs = true WHERE name = ?`, models.DemoIntegrationName).Error)
		caller, err := b.single.AuthenticateInbound(ctx, "", "", false, models.DemoPeerToken, "")
		require.NoError(t, err)
		_, err = b.single.ReceiveMessage(ctx, models.DemoIntegrationName, caller, create("C-0", "EXT-0", "Before"), inbound.RequestMeta{})
		require.NoError(t, err)
		got := make([]outcome, len(page))
		note := func(i int) inbound.PageDone {
			return func(res *inbound.Result, err error) error {
				got[i] = describe(res, err)
				return nil
			}
		}
		meta := func(i int) inbound.RequestMeta {
			return inbound.RequestMeta{Method: "POLL", URL: "poll", Scripted: scripted[i]}
		}
		require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error {
			in := b.single.InTx(tx)
			if !together {
				for i, raw := range page {
					res, err := in.ReceiveMessage(ctx, models.DemoIntegrationName, caller, raw, meta(i))
					_ = note(i)(res, err)
				}
				return nil
			}
			p := in.NewPage(models.DemoIntegrationName, caller)
			for i, raw := range page {
				if err := p.Receive(ctx, raw, meta(i), note(i)); err != nil {
					return err
				}
			}
			return p.Flush(ctx)
		}))
		out := make([]outcome, len(got))
		for i, o := range got {
			out[i] = outcome(o)
		}
		return out, records(t, b.db)
	}
	oneOutcomes, oneRecords := run(false)
	pageOutcomes, pageRecords := run(true)
	require.Equal(t, oneOutcomes, pageOutcomes)
	require.Equal(t, oneRecords, pageRecords)
	// The page did what it says: 9 tickets (one before it, 8 created), two rejected Creates.
	require.Len(t, filter(pageRecords, "ticket|"), 9)
	require.Contains(t, pageOutcomes[15].err, "Not ours")
	require.Contains(t, strings.Join(filter(pageRecords, "log|"), "\n"), "identified")
	require.Contains(t, pageOutcomes[6].err, "short description is empty")
	require.Contains(t, pageOutcomes[4].err, "received before")
}

type describedOutcome = struct {
	res string
	err string
}

// describe is what a message's outcome says, without the times in it.
func describe(res *inbound.Result, err error) describedOutcome {
	var o describedOutcome
	if res != nil && res.Transaction != nil {
		t := res.Transaction
		o.res = fmt.Sprintf("%s %s %s %d %d %s applied=%t", t.Number, t.MessageIdent, t.ExternalMessageID, t.State,
			t.Seq, res.Response.Message.SourceReference, res.Applied)
	}
	if err != nil {
		var r *inbound.Refusal
		if errors.As(err, &r) {
			o.err = string(r.Kind) + ": "
		}
		o.err += err.Error()
	}
	return o
}

func filter(rows []string, prefix string) []string {
	var out []string
	for _, r := range rows {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// records is every record an inbound message leaves, times taken out.
func records(t *testing.T, db *gorm.DB) []string {
	t.Helper()
	const ts = `'\d{4}-\d\d-\d\d[ T][0-9:.]+(Z| UTC)?'`
	var rows []string
	require.NoError(t, db.Raw(`
		SELECT * FROM (SELECT 'ticket|' || concat_ws('|', number, short_description, state, priority, version, created_by_id,
		    custom::text, field_stamps::text) FROM tickets ORDER BY id) k
		UNION ALL SELECT * FROM (SELECT 'bond|' || concat_ws('|', b.internal_reference, b.external_reference, b.state, b.owner,
		    regexp_replace(b.history, `+ts+`, '', 'g'), b.process_error, b.next_seq, b.last_inbound_at, k.number)
		    FROM bonds b JOIN tickets k ON k.id = b.ticket_id ORDER BY b.id) b
		UNION ALL SELECT * FROM (SELECT 'transaction|' || concat_ws('|', t.number, t.message_ident, t.external_message_id,
		    t.direction, t.state, t.process_state, t.process_error, t.seq, b.internal_reference, t.table_name,
		    t.finished_at IS NULL, s.data::text)
		    FROM transactions t JOIN bonds b ON b.id = t.bond_id LEFT JOIN stages s ON s.transaction_id = t.id ORDER BY t.id) t
		UNION ALL SELECT * FROM (SELECT 'request|' || concat_ws('|', t.number, h.direction, h.state, h.method, h.url,
		    h.request_headers::text, h.request_body, h.response_status, regexp_replace(h.response_body, `+ts+`, '', 'g'), h.error)
		    FROM http_requests h LEFT JOIN transactions t ON t.id = h.transaction_id ORDER BY h.id) h
		UNION ALL SELECT * FROM (SELECT 'log|' || concat_ws('|', t.number, l.kind, l.level, regexp_replace(l.line, `+ts+`, '', 'g'))
		    FROM transaction_logs l JOIN transactions t ON t.id = l.transaction_id ORDER BY l.id) l`).Scan(&rows).Error)
	return rows
}

// TestPageBatchFailsOneAtATime: when the batch of held Creates fails (here:
// another path received a copy of one message at that moment, uncommitted
// when the page checked for repeats, so the page's insert meets the unique
// index), the page goes back to its savepoint and receives the Creates one
// at a time: the copy is refused as a repeat, the others are created, and
// the page's transaction goes on.
func TestPageBatchFailsOneAtATime(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupGroup(t)
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	create := func(id, ref, short string) []byte {
		return inboundReq(t, "CreateIncident", id, ref, "", t0, map[string]any{"short_description": short}).Body
	}
	caller, err := b.single.AuthenticateInbound(ctx, "", "", false, models.DemoPeerToken, "")
	require.NoError(t, err)

	// The other path: the copy of C-2 (another remote ticket, so no shared lock), not yet committed.
	other := b.db.Begin()
	defer other.Rollback()
	_, err = b.single.InTx(other).ReceiveMessage(ctx, models.DemoIntegrationName, caller, create("C-2", "EXT-OTHER", "Copy"),
		inbound.RequestMeta{})
	require.NoError(t, err)

	got := make([]describedOutcome, 3)
	flushed := make(chan error, 1)
	go func() {
		flushed <- b.db.Transaction(func(tx *gorm.DB) error {
			p := b.single.InTx(tx).NewPage(models.DemoIntegrationName, caller)
			for i, raw := range [][]byte{create("C-1", "EXT-1", "One"), create("C-2", "EXT-2", "Two"), create("C-3", "EXT-3", "Three")} {
				i := i
				if err := p.Receive(ctx, raw, inbound.RequestMeta{}, func(res *inbound.Result, err error) error {
					got[i] = describe(res, err)
					return nil
				}); err != nil {
					return err
				}
			}
			return p.Flush(ctx)
		})
	}()
	// The page's write waits for the other path's row; then the other path commits.
	wait.For(t, 30*time.Second, func() (bool, error) {
		select {
		case err := <-flushed:
			return false, fmt.Errorf("the page ended without waiting: %v %v", err, got)
		default:
		}
		var n int
		err := b.db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND wait_event_type = 'Lock' AND wait_event = 'transactionid'`).Scan(&n).Error
		return n > 0, err
	}, "the page's write waiting for the uncommitted copy")
	require.NoError(t, other.Commit().Error)
	require.NoError(t, <-flushed)

	require.Contains(t, got[0].res, "applied=true")
	require.Contains(t, got[1].err, string(inbound.RefusalDuplicate))
	require.Contains(t, got[2].res, "applied=true")
	var bonded []string
	require.NoError(t, b.db.Raw(`SELECT external_reference FROM bonds ORDER BY id`).Scan(&bonded).Error)
	require.Equal(t, []string{"EXT-OTHER", "EXT-1", "EXT-3"}, bonded)
}
