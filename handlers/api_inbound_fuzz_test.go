package handlers_test

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"unifi/handlers"
	"unifi/internal/config"
	"unifi/models"
)

// FuzzInbound posts arbitrary bodies to the real inbound handler on a real
// database: never a panic or a 5xx, and a refused request stores nothing but
// its own HTTP Request record. The seed corpus is in testdata/fuzz/FuzzInbound.
func FuzzInbound(f *testing.F) {
	for _, s := range []string{
		`{"message":{"name":"CreateIncident","source_id":"F-1","source_reference":"EXT-F","time_stamp":"2026-11-22T10:00:00Z"},"data":{"short_description":"fuzz","priority":"High"}}`,
		`{"message":{"name":"UpdateIncident","source_id":"F-2","source_reference":"EXT-F","time_stamp":"2026-11-22T10:00:01Z"},"data":{"state":"in_progress"}}`,
		`{"message":{"name":"Receipt","source_id":"F-3","target_id":"MSG0000001"},"status":{"process_state":"Rejected","error":"no"}}`,
		`{"message":{"name":"ResolveIncident","source_id":"F-4","target_reference":"INC0000001","time_stamp":"2026-11-22T10:00:02Z"},"data":{"state":"resolved"}}`,
		`{"message":{"name":5},"data":[]}`,
		`{"message":"CreateIncident"}`,
		`[]`, `null`, `{`, ``,
	} {
		f.Add([]byte(s))
	}
	b := setupInboundOn(f, seededDB(f), 64<<10)
	h := handlers.New(handlers.Opts{Store: b.store, Query: b.query, Accounts: b.accounts, Inbound: b.inbound, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config: config.Config{InboundMaxBytes: 64 << 10, SessionKey: bytes.Repeat([]byte{7}, 32), BaseURL: "http://localhost"}})
	e := h.Echo()
	f.Fuzz(func(t *testing.T, body []byte) {
		before := b.snapshot(t)
		var txBefore int64
		if err := b.db.Model(&models.Transaction{}).Count(&txBefore).Error; err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, "/api/v1/integrations/demo/messages", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.String())
		}
		after := b.snapshot(t)
		if after.Requests != before.Requests+1 {
			t.Fatalf("%d HTTP Request records written for one request, want 1", after.Requests-before.Requests)
		}
		if rec.Code != http.StatusOK && after.Fingerprint != before.Fingerprint {
			t.Fatalf("refused with %d but stored data changed: %q -> %s", rec.Code, body, rec.Body.String())
		}
		var txAfter int64
		if err := b.db.Model(&models.Transaction{}).Count(&txAfter).Error; err != nil {
			t.Fatal(err)
		}
		if txAfter-txBefore > 1 {
			t.Fatalf("one request made %d transactions", txAfter-txBefore)
		}
	})
}
