package inbound

// The HTTP Request record every inbound request leaves, accepted or refused:
// made in models/inbound/httprecord.

import (
	"net/http"
	"time"

	"unifi/models/inbound/httprecord"
)

// MaxStoredBody caps the request and response bodies kept in an HTTP Request
// record; longer bodies are cut with a note saying how long they were.
const MaxStoredBody = httprecord.MaxStoredBody

// RequestMeta describes one inbound HTTP request for its HTTP Request record.
type RequestMeta struct {
	Method     string
	URL        string
	Header     http.Header
	RemoteAddr string
	Started    time.Time
	// Scripted is what the integration's inbound scripts decided beside the
	// envelope (a rejection, log lines); nil for an envelope as sent.
	Scripted *Scripted
}

// record is what the HTTP Request record keeps of m.
func (m RequestMeta) record() httprecord.Meta {
	return httprecord.Meta{Method: m.Method, URL: m.URL, Header: m.Header, RemoteAddr: m.RemoteAddr, Started: m.Started}
}
