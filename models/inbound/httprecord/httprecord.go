// Package httprecord makes the HTTP Request record every inbound request
// leaves, accepted or refused (models/inbound): its bodies made storable and
// cut at MaxStoredBody, its secrets hidden.
package httprecord

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"unifi/models"
	"unifi/models/inbound/envelope"
)

// MaxStoredBody caps the request and response bodies kept in an HTTP Request
// record; longer bodies are cut with a note saying how long they were.
const MaxStoredBody = 64 << 10

// Meta describes one inbound HTTP request for its record
// (inbound.RequestMeta).
type Meta struct {
	Method     string
	URL        string
	Header     http.Header
	RemoteAddr string
	Started    time.Time
}

// Record is the HTTP Request record of an inbound request
// answered with status and body.
func Record(meta Meta, raw []byte, integrationID, transactionID *int64, status int, body []byte,
	now time.Time) *models.HTTPRequest {
	state := models.RequestOK
	errText := ""
	if status >= 400 {
		state = models.RequestError
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		errText = envelope.Truncate(e.Error, envelope.MaxErrorLen)
	}
	var dur *int
	if !meta.Started.IsZero() {
		d := int(time.Since(meta.Started).Milliseconds())
		dur = &d
	}
	st := status
	return &models.HTTPRequest{TransactionID: transactionID, IntegrationID: integrationID, Direction: models.Inbound, State: state,
		Attempt: 1, Method: Storable([]byte(meta.Method)), URL: Storable([]byte(meta.URL)),
		RequestHeaders: models.JSON[map[string]string]{V: RedactHeaders(meta.Header)}, RequestBody: Storable(raw),
		ResponseStatus: &st, ResponseHeaders: models.JSON[map[string]string]{V: map[string]string{"Content-Type": "application/json"}},
		ResponseBody: Storable(body), DurationMS: dur, Error: Storable([]byte(errText)), CreatedAt: now, UpdatedAt: now}
}

// Storable makes bytes safe for a PostgreSQL text column (valid UTF-8, no
// NUL) and caps them at MaxStoredBody with a note saying how long they were.
func Storable(b []byte) string {
	s := string(b)
	cut := len(s) > MaxStoredBody
	if cut {
		s = s[:MaxStoredBody]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if cut {
		s += fmt.Sprintf("\n… [cut: %d bytes in all]", len(b))
	}
	return s
}

// RedactHeaders flattens request headers for storage with secrets hidden:
// credentials keep only their scheme ("Bearer [redacted]").
func RedactHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.Join(h[k], ", ")
		lk := strings.ToLower(k)
		switch {
		case lk == "authorization" || lk == "proxy-authorization":
			scheme, _, _ := strings.Cut(v, " ")
			if len(scheme) > 20 || scheme == v {
				scheme = ""
			}
			v = strings.TrimSpace(scheme + " [redacted]")
		case lk == "cookie" || lk == "set-cookie" || strings.Contains(lk, "token") || strings.Contains(lk, "secret") ||
			strings.Contains(lk, "password") || strings.Contains(lk, "api-key") || strings.Contains(lk, "apikey"):
			v = "[redacted]"
		}
		if len(v) > 2000 {
			v = v[:2000]
		}
		out[Storable([]byte(k))] = Storable([]byte(v))
	}
	return out
}
