package poll

import (
	"context"
	"encoding/json"
	"net/http"

	"unifi/models"
)

// Processor runs the three steps of a poll processor (models.PollProcessor).
// The product's processor runs the processor's scripts (script.go); tests
// may give their own.
type Processor interface {
	// Setup makes a run's starting state from the high-water mark (and, for
	// a child poll, the input its parent gave).
	Setup(ctx context.Context, c Call) (map[string]any, error)
	// Request makes the HTTP request of the current page.
	Request(ctx context.Context, c Call) (*Request, error)
	// Response reads the answer to it.
	Response(ctx context.Context, c Call, r *Response) (*Page, error)
}

// ProcessorFunc makes the Processor of a configured poll processor.
type ProcessorFunc func(p *models.PollProcessor) (Processor, error)

// Call is what every step of a poll sees.
type Call struct {
	Mark  map[string]any    // the high-water mark as committed so far
	State map[string]any    // Setup's result, then each page's Next
	Input map[string]any    // a child poll: what its parent's Response gave it
	Vars  map[string]string // the active connection's variables
	Page  int               // 0-based page number of this run
}

// Request is one HTTP request a poll makes; Path is joined to the active
// connection's endpoint, whose outbound authentication it carries.
type Request struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Query   map[string]string `json:"query"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"` // JSON, sent as application/json unless Headers say otherwise
	Text    string            `json:"text"` // a body that is not JSON (form, XML), sent as is
}

// Response is the answer to a Request.
type Response struct {
	Status  int
	Headers http.Header
	Body    any    // the body decoded as JSON, or nil
	Text    string // the body as text

	request string // the URL asked, for the items' records
}

// Page is what a Response made of an answer.
type Page struct {
	// Items are inbound messages, in the order they must be applied.
	Items []Item `json:"items"`
	// Mark is the high-water mark after the page (after every item), when
	// the page moves it without items of its own; nil keeps it.
	Mark map[string]any `json:"mark"`
	// Next is the state of the next page; nil ends the run.
	Next map[string]any `json:"next"`
	// Polls are child polls to run now, each of a processor of the same
	// integration, before this page's items are committed.
	Polls []ChildPoll `json:"polls"`
}

// Item is one polled change: a body the inbound path receives (the
// integration's Identify script, or our envelope), and the high-water mark
// once it is committed (nil: unchanged).
type Item struct {
	Body json.RawMessage `json:"body"`
	Mark map[string]any  `json:"mark"`
}

// ChildPoll starts a poll of another processor with an input.
type ChildPoll struct {
	Processor string         `json:"processor"`
	Input     map[string]any `json:"input"`
}
