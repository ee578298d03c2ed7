package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/query"
	"unifi/models/store"
)

// inboundBundle is the real Echo app on a fresh database with the demo seeded.
type inboundBundle struct {
	db       *gorm.DB
	store    *store.Store
	accounts *account.Accounts
	query    *query.Reader
	inbound  *inbound.Service
	srv      *httptest.Server
	url      string // the demo integration's inbound endpoint
	in       *models.Integration
}

func setupInbound(t testing.TB) *inboundBundle {
	t.Helper()
	return setupInboundOn(t, seededDB(t), 1<<20)
}

// seededDB is a fresh database with the demo already seeded (the seeding's
// bcrypt hashes run once per test binary, not once per test).
func seededDB(t testing.TB) *gorm.DB {
	t.Helper()
	return testdb.NewSeeded(t, "demo", func(ctx context.Context, db *gorm.DB) error {
		_, err := store.NewStore(db, account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost}), nil).SeedDemo(ctx,
			store.SeedDemoOpts{PeerURL: "http://127.0.0.1:9"})
		return err
	})
}

func setupInboundOn(t testing.TB, db *gorm.DB, maxBytes int64) *inboundBundle {
	t.Helper()
	return setupInboundWith(t, db, func(c *config.Config) { c.InboundMaxBytes = maxBytes })
}

// setupInboundWith starts the app on db with a configuration edit.
func setupInboundWith(t testing.TB, db *gorm.DB, edit func(*config.Config)) *inboundBundle {
	t.Helper()
	ctx := context.Background()
	accounts := account.New(db, nil)
	st := store.NewStore(db, accounts, nil)
	_, err := st.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:9"})
	require.NoError(t, err)
	integ, err := st.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	cfg := config.Config{InboundMaxBytes: 1 << 20, SessionKey: bytes.Repeat([]byte{7}, 32), BaseURL: "http://localhost"}
	if edit != nil {
		edit(&cfg)
	}
	q, in := query.NewReader(db, nil), inbound.NewService(db, accounts, nil)
	h := handlers.New(handlers.Opts{Store: st, Query: q, Accounts: accounts, Inbound: in, Config: cfg,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	srv := httptest.NewServer(h.Echo())
	t.Cleanup(srv.Close)
	return &inboundBundle{db: db, store: st, accounts: accounts, query: q, inbound: in, srv: srv, in: integ,
		url: srv.URL + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"}
}

// inboundAnswer is a decoded answer.
type inboundAnswer struct {
	Status int
	Header http.Header
	Raw    string
	Error  string            `json:"error"`
	Detail string            `json:"detail"`
	Fields map[string]string `json:"fields"`
	// the envelope of an accepted message, or the original header of a duplicate
	Message models.EnvelopeHeader  `json:"message"`
	Data    map[string]any         `json:"data"`
	Stat    *models.EnvelopeStatus `json:"status"`
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }

func withoutHeader(k string) reqOpt { return func(r *http.Request) { r.Header.Del(k) } }

func withBasic(user, pw string) reqOpt {
	return func(r *http.Request) { r.Header.Del("Authorization"); r.SetBasicAuth(user, pw) }
}

// postRaw sends body to url as the demo peer (bearer token, JSON).
func postRaw(t testing.TB, url string, body []byte, opts ...reqOpt) inboundAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	a := inboundAnswer{Status: resp.StatusCode, Header: resp.Header, Raw: string(b)}
	require.NoError(t, json.Unmarshal(b, &a), "answer is not JSON: %s", b)
	return a
}

func (b *inboundBundle) post(t testing.TB, env any, opts ...reqOpt) inboundAnswer {
	t.Helper()
	body, err := json.Marshal(env)
	require.NoError(t, err)
	return postRaw(t, b.url, body, opts...)
}

// envelope builds a message envelope.
func envelope(name, sourceID, sourceRef, targetRef string, ts time.Time, data map[string]any) map[string]any {
	msg := map[string]any{"name": name, "time_stamp": ts.UTC().Format(time.RFC3339Nano), "source_id": sourceID}
	if sourceRef != "" {
		msg["source_reference"] = sourceRef
	}
	if targetRef != "" {
		msg["target_reference"] = targetRef
	}
	if data == nil {
		data = map[string]any{}
	}
	return map[string]any{"message": msg, "data": data}
}

// receiptEnvelope builds a receipt for our Message ID targetID.
func receiptEnvelope(sourceID, targetID, sourceRef, process, perr string) map[string]any {
	msg := map[string]any{"name": "Receipt", "time_stamp": time.Now().UTC().Format(time.RFC3339Nano),
		"source_id": sourceID, "source_reference": sourceRef}
	if targetID != "" {
		msg["target_id"] = targetID
	}
	return map[string]any{"message": msg, "data": map[string]any{},
		"status": map[string]any{"process_state": process, "error": perr}}
}

func createData(short string) map[string]any {
	return map[string]any{"short_description": short, "description": "Printer on fire", "state": "new",
		"priority": "Critical", "urgency": "High", "impact": "Medium", "assignment_group": "Service Desk",
		"comments": "first note"}
}

// snapshot fingerprints every table a message could change, so a test can
// assert that a refused request stored nothing but its HTTP Request record.
type snapshot struct {
	Fingerprint string
	Requests    int64
}

func (b *inboundBundle) snapshot(t testing.TB) snapshot {
	t.Helper()
	var s snapshot
	err := b.db.Raw(`SELECT concat_ws('|',
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM tickets x),
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM bonds x),
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM transactions x),
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM stages x),
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM transaction_logs x),
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM users x),
		(SELECT md5(coalesce(string_agg(x::text, ',' ORDER BY id), '')) FROM integrations x)) AS fingerprint,
		(SELECT count(*) FROM http_requests) AS requests`).Scan(&s).Error
	require.NoError(t, err)
	return s
}

// lastRequest returns the newest HTTP Request record.
func (b *inboundBundle) lastRequest(t testing.TB) models.HTTPRequest {
	t.Helper()
	var r models.HTTPRequest
	require.NoError(t, b.db.Order("id DESC").Take(&r).Error)
	return r
}

// createTicket sends a CreateIncident and returns our new ticket number.
func (b *inboundBundle) createTicket(t testing.TB, theirRef string) string {
	t.Helper()
	a := b.post(t, envelope("CreateIncident", "C-"+theirRef, theirRef, "", time.Now(), createData("Ticket "+theirRef)))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)
	return a.Message.SourceReference
}

// outbound inserts an outbound transaction of ours on the bond of ticket
// number ours, in state, as the engine would have left it.
func (b *inboundBundle) outbound(t testing.TB, ours string, state models.TransportState) models.Transaction {
	t.Helper()
	var bond models.Bond
	require.NoError(t, b.db.Where("internal_reference = ?", ours).Take(&bond).Error)
	var msg models.Message
	require.NoError(t, b.db.Where("integration_id = ? AND name = 'UpdateIncident'", b.in.ID).Take(&msg).Error)
	var n int64
	require.NoError(t, b.db.Raw("SELECT nextval('message_number_seq')").Scan(&n).Error)
	var seq int64
	require.NoError(t, b.db.Raw("UPDATE bonds SET next_seq = next_seq + 1 WHERE id = ? RETURNING next_seq", bond.ID).Scan(&seq).Error)
	tr := models.Transaction{Number: fmt.Sprintf("TRN9%06d", n), MessageIdent: fmt.Sprintf("MSG9%06d", n),
		IntegrationID: b.in.ID, BondID: bond.ID, MessageID: msg.ID, TicketID: bond.TicketID, TableName: "incident",
		Direction: models.Outbound, State: state, Seq: seq, NextAttemptAt: time.Now()}
	if state == models.AwaitingReceipt {
		due := time.Now().Add(time.Hour)
		tr.ReceiptDueAt = &due
	}
	require.NoError(t, b.db.Create(&tr).Error)
	return tr
}

func (b *inboundBundle) transaction(t testing.TB, id int64) models.Transaction {
	t.Helper()
	var tr models.Transaction
	require.NoError(t, b.db.Take(&tr, id).Error)
	return tr
}

func (b *inboundBundle) bondOf(t testing.TB, ours string) models.Bond {
	t.Helper()
	var bond models.Bond
	require.NoError(t, b.db.Where("internal_reference = ?", ours).Take(&bond).Error)
	return bond
}

func (b *inboundBundle) ticket(t testing.TB, number string) models.Ticket {
	t.Helper()
	var k models.Ticket
	require.NoError(t, b.db.Where("number = ?", number).Take(&k).Error)
	return k
}
