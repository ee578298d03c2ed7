package inbound

// The HTTP Request record every inbound request leaves, accepted or refused:
// made in models/inbound/httprecord.

import "unifi/models/inbound/httprecord"

// RequestMeta describes one inbound HTTP request for its HTTP Request record.
type RequestMeta = httprecord.Meta

// MaxStoredBody caps the request and response bodies kept in an HTTP Request
// record; longer bodies are cut with a note saying how long they were.
const MaxStoredBody = httprecord.MaxStoredBody
