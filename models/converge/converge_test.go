package converge_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/converge"
	"unifi/models/inbound"
	"unifi/models/store"
)

// bundle is the demo on a fresh database: the ticket store (its clock is
// clock) and the inbound API applying updates in groups (grouped) or one at
// a time (single).
type bundle struct {
	db      *gorm.DB
	store   *store.Store
	grouped *inbound.Service
	single  *inbound.Service
	clock   time.Time
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := testdb.NewSeeded(t, "demo", func(ctx context.Context, db *gorm.DB) error {
		_, err := store.NewStore(db, account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost}), nil).SeedDemo(ctx,
			store.SeedDemoOpts{PeerURL: "http://127.0.0.1:9"})
		return err
	})
	b := &bundle{db: db}
	accounts := account.New(db, nil)
	b.store = store.NewStore(db, accounts, &store.StoreOpts{NowFunc: func() time.Time { return b.clock }})
	b.grouped = inbound.NewService(db, accounts, nil)
	b.single = inbound.NewService(db, accounts, &inbound.Opts{GroupsOff: true})
	return b
}

// req is an envelope from the demo peer with its bearer token; stamps nil
// leaves "stamps" out.
func req(t *testing.T, name, sourceID, sourceRef, targetRef string, ts time.Time, data map[string]any,
	stamps map[string]models.WireStamp) inbound.Request {
	t.Helper()
	env := models.Envelope{Message: models.EnvelopeHeader{Name: name, TimeStamp: ts, SourceReference: sourceRef,
		TargetReference: targetRef, SourceID: sourceID}, Data: data}
	if stamps != nil {
		env.Stamps = &stamps
	}
	body, err := json.Marshal(env)
	require.NoError(t, err)
	return inbound.Request{Integration: models.DemoIntegrationName, Bearer: models.DemoPeerToken, JSON: true,
		Body: body, Meta: inbound.RequestMeta{Method: "POST", URL: "/api/v1/integrations/demo/messages",
			Header: map[string][]string{"Authorization": {"Bearer " + models.DemoPeerToken}}, Started: time.Now()}}
}

func was(v string) *string { return &v }

type conflictRow struct {
	Field, KeptValue, LostValue, Kept, KeptBy, LostBy string
	KeptAt                                            time.Time
	LostAt                                            *time.Time
	TransactionID                                     *int64
}

func (b *bundle) conflicts(t *testing.T, ticketID int64) []conflictRow {
	t.Helper()
	var rows []conflictRow
	require.NoError(t, b.db.Raw(`SELECT field, kept_value, lost_value, kept, kept_by, lost_by, kept_at, lost_at, transaction_id
		FROM field_conflicts WHERE ticket_id = ? ORDER BY id`, ticketID).Scan(&rows).Error)
	return rows
}

// TestInboundMerge: a ticket created by the remote side takes its stamps; a
// local edit stamps the changed field and sends its stamp and old value; the
// remote side's concurrent change of the same field loses when it is older
// (ours is kept, theirs reported) and wins when it is newer (ours is
// overwritten and reported), in the one-message path and through a group
// (which hands such a message to the one-message path); a sequential change
// is no conflict, and a sender without stamps is applied as before.
func TestInboundMerge(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"Single", "Grouped"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			// Grouped: an update with a bearer token goes to the group
			// committer first, which decides it unless it meets a conflict.
			svc := b.single
			if path == "Grouped" {
				svc = b.grouped
			}
			receive := func(r inbound.Request) *inbound.Result {
				res, err := svc.ReceiveInbound(ctx, r)
				require.NoError(t, err)
				return res
			}
			t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

			// Created on their side at t0: every field stamped there.
			res, err := b.single.ReceiveInbound(ctx, req(t, "CreateIncident", "C-1", "EXT-1", "", at(0),
				map[string]any{"short_description": "Printer on fire", "priority": "Low", "comments": "n0"},
				map[string]models.WireStamp{"short_description": {At: at(0), By: "remote"},
					"priority": {At: at(0), By: "remote"}, "comments": {At: at(0), By: "remote"}}))
			require.NoError(t, err)
			number := res.Response.Message.SourceReference
			k, err := b.store.GetTicketByNumber(ctx, number)
			require.NoError(t, err)
			require.Equal(t, 4, k.Priority)
			require.True(t, k.FieldStamps.V["priority"].Same(models.FieldStamp{At: at(0), By: "remote"}))
			require.True(t, k.FieldStamps.V["work_notes"].Same(models.FieldStamp{At: at(0), By: "remote"}))

			// Our analyst makes it High at t0+10s: the outbound Stage carries
			// the stamp and the old value; the other fields' stamps go as they are.
			b.clock = at(10)
			in := store.TicketInputOf(k)
			in.Priority = 2
			k, err = b.store.UpdateTicket(ctx, models.Actor{Name: "ann", Role: models.RoleAnalyst}, k.ID, k.Version, in)
			require.NoError(t, err)
			require.True(t, k.FieldStamps.V["priority"].Same(models.FieldStamp{At: at(10), By: "ann"}))
			var stage models.Stage
			require.NoError(t, b.db.Raw(`SELECT s.* FROM stages s JOIN transactions t ON t.id = s.transaction_id
				WHERE t.ticket_id = ? AND t.direction = 'Outbound' ORDER BY t.id DESC LIMIT 1`, k.ID).Scan(&stage).Error)
			require.Equal(t, "High", stage.Data.V["priority"])
			require.Equal(t, models.WireStamp{At: at(10), By: "ann", Was: was("Low")}, stage.Stamps.V["priority"])
			require.Equal(t, models.WireStamp{At: at(0), By: "remote"}, stage.Stamps.V["short_description"])

			// Their concurrent change made at t0+5s (from Low, not from our
			// High) loses: ours is kept, theirs reported.
			data := map[string]any{"short_description": "Printer on fire", "priority": "Critical", "comments": "n0"}
			res = receive(req(t, "UpdateIncident", "U-1", "EXT-1", number, at(5), data,
				map[string]models.WireStamp{"priority": {At: at(5), By: "remote", Was: was("Low")},
					"short_description": {At: at(0), By: "remote"}, "comments": {At: at(0), By: "remote"}}))
			require.True(t, res.Applied)
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, 2, k.Priority, "our later change is kept")
			rows := b.conflicts(t, k.ID)
			require.Len(t, rows, 1)
			require.Equal(t, conflictRow{Field: "priority", KeptValue: "2", LostValue: "1", Kept: converge.Ours,
				KeptBy: "ann", LostBy: "remote", KeptAt: at(10), LostAt: &[]time.Time{at(5)}[0],
				TransactionID: &res.Transaction.ID}, normalize(rows[0]))

			// Their change made at t0+20s, still from Low: theirs wins, ours
			// (High) is overwritten and reported.
			res = receive(req(t, "UpdateIncident", "U-2", "EXT-1", number, at(20), data,
				map[string]models.WireStamp{"priority": {At: at(20), By: "remote", Was: was("Low")},
					"short_description": {At: at(0), By: "remote"}, "comments": {At: at(0), By: "remote"}}))
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, 1, k.Priority, "their later change wins")
			require.True(t, k.FieldStamps.V["priority"].Same(models.FieldStamp{At: at(20), By: "remote"}))
			rows = b.conflicts(t, k.ID)
			require.Len(t, rows, 2)
			require.Equal(t, conflictRow{Field: "priority", KeptValue: "1", LostValue: "2", Kept: converge.Theirs,
				KeptBy: "remote", LostBy: "ann", KeptAt: at(20), LostAt: &[]time.Time{at(10)}[0],
				TransactionID: &res.Transaction.ID}, normalize(rows[1]))
			var bond models.Bond
			require.NoError(t, b.db.Where("ticket_id = ?", k.ID).Take(&bond).Error)
			require.Contains(t, bond.History, `concurrent edit of priority: kept "2" (ours, changed 2026-12-05T09:00:10Z by ann), dropped "1" (theirs, changed 2026-12-05T09:00:05Z by remote)`)
			require.Contains(t, bond.History, `concurrent edit of priority: kept "1" (theirs, changed 2026-12-05T09:00:20Z by remote), overwrote "2" (ours, changed 2026-12-05T09:00:10Z by ann)`)

			// A sequential change (from Critical, which we hold) is no
			// conflict, and the group applies it itself.
			data["priority"], data["comments"] = "Moderate", "n1"
			receive(req(t, "UpdateIncident", "U-3", "EXT-1", number, at(30), data,
				map[string]models.WireStamp{"priority": {At: at(30), By: "remote", Was: was("Critical")},
					"comments": {At: at(30), By: "remote", Was: was("n0")}, "short_description": {At: at(0), By: "remote"}}))
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, 3, k.Priority)
			require.Equal(t, "n1", k.WorkNotes)
			require.True(t, k.FieldStamps.V["work_notes"].Same(models.FieldStamp{At: at(30), By: "remote"}))
			require.Len(t, b.conflicts(t, k.ID), 2)

			// A sender without stamps is applied as it is; the stamps stay.
			data["priority"] = "Planning"
			receive(req(t, "UpdateIncident", "U-4", "EXT-1", number, at(40), data, nil))
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, 5, k.Priority)
			require.True(t, k.FieldStamps.V["priority"].Same(models.FieldStamp{At: at(30), By: "remote"}))
			require.Len(t, b.conflicts(t, k.ID), 2)
			b.grouped.Wait()
		})
	}
}

// TestInboundMergeCustom: a process's own field (custom.risk) converges
// like a built-in one: created stamped by the remote side, a local edit
// stamps it and sends its stamp and old value, their older concurrent change
// loses (reported), their newer one wins (ours reported), a sequential one
// is no conflict; in the one-message path and through a group (which hands
// a message mapping a process field to the one-message path).
func TestInboundMergeCustom(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"Single", "Grouped"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			b := setup(t)
			svc := b.single
			if path == "Grouped" {
				svc = b.grouped
			}
			var in models.Integration
			require.NoError(t, b.db.Where("name = ?", models.DemoIntegrationName).Take(&in).Error)
			require.NoError(t, b.db.Create(&models.ProcessField{ProcessID: in.ProcessID, Name: "risk", Label: "Risk",
				Type: models.FieldText, Version: 1}).Error)
			var msgs []models.Message
			require.NoError(t, b.db.Where("integration_id = ? AND name IN ?", in.ID,
				[]string{"CreateIncident", "UpdateIncident"}).Find(&msgs).Error)
			require.Len(t, msgs, 2)
			for _, m := range msgs {
				require.NoError(t, b.db.Create(&models.Field{MessageID: m.ID, TicketField: "custom.risk", Property: "risk",
					Position: 99, Version: 1}).Error)
			}
			receive := func(r inbound.Request) *inbound.Result {
				res, err := svc.ReceiveInbound(ctx, r)
				require.NoError(t, err)
				return res
			}
			t0 := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
			at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
			stamps := func(risk models.WireStamp) map[string]models.WireStamp {
				return map[string]models.WireStamp{"risk": risk, "short_description": {At: at(0), By: "remote"},
					"priority": {At: at(0), By: "remote"}, "comments": {At: at(0), By: "remote"}}
			}
			data := func(risk string) map[string]any {
				return map[string]any{"short_description": "Printer on fire", "priority": "Low", "comments": "n0", "risk": risk}
			}

			res, err := b.single.ReceiveInbound(ctx, req(t, "CreateIncident", "C-1", "EXT-1", "", at(0), data("low"),
				stamps(models.WireStamp{At: at(0), By: "remote"})))
			require.NoError(t, err)
			number := res.Response.Message.SourceReference
			k, err := b.store.GetTicketByNumber(ctx, number)
			require.NoError(t, err)
			require.Equal(t, map[string]any{"risk": "low"}, k.Custom.V)
			require.True(t, k.FieldStamps.V["custom.risk"].Same(models.FieldStamp{At: at(0), By: "remote"}))

			// Our analyst raises the risk at t0+10s: the outbound Stage
			// carries its stamp and the value it overwrote.
			b.clock = at(10)
			edit := store.TicketInputOf(k)
			edit.Custom = map[string]string{"risk": "high"}
			k, err = b.store.UpdateTicket(ctx, models.Actor{Name: "ann", Role: models.RoleAnalyst}, k.ID, k.Version, edit)
			require.NoError(t, err)
			require.True(t, k.FieldStamps.V["custom.risk"].Same(models.FieldStamp{At: at(10), By: "ann"}))
			require.True(t, k.FieldStamps.V["priority"].Same(models.FieldStamp{At: at(0), By: "remote"}), "only the changed field is stamped")
			var stage models.Stage
			require.NoError(t, b.db.Raw(`SELECT s.* FROM stages s JOIN transactions t ON t.id = s.transaction_id
				WHERE t.ticket_id = ? AND t.direction = 'Outbound' ORDER BY t.id DESC LIMIT 1`, k.ID).Scan(&stage).Error)
			require.Equal(t, "high", stage.Data.V["risk"])
			require.Equal(t, models.WireStamp{At: at(10), By: "ann", Was: was("low")}, stage.Stamps.V["risk"])

			// Their concurrent change made at t0+5s (from low) loses.
			res = receive(req(t, "UpdateIncident", "U-1", "EXT-1", number, at(5), data("medium"),
				stamps(models.WireStamp{At: at(5), By: "remote", Was: was("low")})))
			require.True(t, res.Applied)
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, "high", k.Custom.V["risk"], "our later change is kept")
			rows := b.conflicts(t, k.ID)
			require.Len(t, rows, 1)
			require.Equal(t, conflictRow{Field: "custom.risk", KeptValue: "high", LostValue: "medium", Kept: converge.Ours,
				KeptBy: "ann", LostBy: "remote", KeptAt: at(10), LostAt: &[]time.Time{at(5)}[0],
				TransactionID: &res.Transaction.ID}, normalize(rows[0]))

			// Their change made at t0+20s, still from low: theirs wins.
			res = receive(req(t, "UpdateIncident", "U-2", "EXT-1", number, at(20), data("critical"),
				stamps(models.WireStamp{At: at(20), By: "remote", Was: was("low")})))
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, "critical", k.Custom.V["risk"], "their later change wins")
			require.True(t, k.FieldStamps.V["custom.risk"].Same(models.FieldStamp{At: at(20), By: "remote"}))
			rows = b.conflicts(t, k.ID)
			require.Len(t, rows, 2)
			require.Equal(t, conflictRow{Field: "custom.risk", KeptValue: "critical", LostValue: "high", Kept: converge.Theirs,
				KeptBy: "remote", LostBy: "ann", KeptAt: at(20), LostAt: &[]time.Time{at(10)}[0],
				TransactionID: &res.Transaction.ID}, normalize(rows[1]))

			// A sequential change (from critical, which we hold) is no conflict.
			receive(req(t, "UpdateIncident", "U-3", "EXT-1", number, at(30), data("none"),
				stamps(models.WireStamp{At: at(30), By: "remote", Was: was("critical")})))
			k, err = b.store.GetTicket(ctx, k.ID)
			require.NoError(t, err)
			require.Equal(t, "none", k.Custom.V["risk"])
			require.Len(t, b.conflicts(t, k.ID), 2)
			b.grouped.Wait()
		})
	}
}

func normalize(r conflictRow) conflictRow {
	r.KeptAt = r.KeptAt.UTC()
	if r.LostAt != nil {
		u := r.LostAt.UTC()
		r.LostAt = &u
	}
	return r
}

// TestInboundStampsChecked: stamps that are not what the protocol says are
// refused with the field named, before anything is stored.
func TestInboundStampsChecked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	tests := []struct {
		name, stamps, field string
	}{
		{"NotAnObject", `[1]`, "stamps"},
		{"BadTime", `{"priority": {"at": "yesterday"}}`, "stamps.priority.at"},
		{"LongBy", `{"priority": {"at": "2026-12-05T09:00:00Z", "by": "` + longText(101) + `"}}`, "stamps.priority.by"},
		{"WasObject", `{"priority": {"at": "2026-12-05T09:00:00Z", "was": {"x": 1}}}`, "stamps.priority.was"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"message": {"name": "CreateIncident", "time_stamp": "2026-12-05T09:00:00Z", "source_reference": "X-` +
				tc.name + `", "source_id": "S-` + tc.name + `"}, "data": {"short_description": "x"}, "stamps": ` + tc.stamps + `}`
			r := req(t, "CreateIncident", "", "", "", time.Now(), nil, nil)
			r.Body = []byte(body)
			_, err := b.single.ReceiveInbound(ctx, r)
			var v *models.ValidationError
			require.ErrorAs(t, err, &v)
			require.Contains(t, v.Fields, tc.field)
		})
	}
	var n int64
	require.NoError(t, b.db.Raw(`SELECT count(*) FROM tickets`).Scan(&n).Error)
	require.Zero(t, n)
}

func longText(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'x'
	}
	return string(b)
}
