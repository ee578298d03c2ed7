// Package script runs the per-message scripts of an integration (docs/scripting.md) in a sandboxed JavaScript
// interpreter (goja): compiled once per script version, run on pooled runtimes, each run bounded in time and
// memory, with no file, network or process access (the runtime is given none: no require, no console, no Go
// objects beyond the plain data of the run).
package script

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Point is where in a transaction's life a script runs.
type Point string

// The points a message script runs at (docs/scripting.md has what each receives and returns).
const (
	SourceToStage    Point = "source_to_stage"   // outbound: ticket -> stage data
	StageToRequest   Point = "stage_to_request"  // outbound: stage -> the HTTP request
	Response         Point = "response"          // outbound: read the synchronous answer
	TriggerCondition Point = "trigger_condition" // outbound: send this message on this ticket change?
	Identify         Point = "identify"          // inbound: which message an arbitrary request is
	ReferenceLookup  Point = "reference_lookup"  // inbound: which bond and which message ID
	PayloadToStage   Point = "payload_to_stage"  // inbound: request body -> stage data
	StageToTarget    Point = "stage_to_target"   // inbound: stage -> ticket changes, or a rejection
)

// The points of a poll processor's scripts (docs/pollers.md); not message
// scripts, so not in Points.
const (
	PollSetup    Point = "poll_setup"    // the mark (and a child poll's input) -> the run's first state
	PollRequest  Point = "poll_request"  // the state -> the HTTP request of a page
	PollResponse Point = "poll_response" // the answer -> items, marks, the next page, child polls
)

// Points lists every point in the order the editor shows them.
var Points = []Point{TriggerCondition, SourceToStage, StageToRequest, Response,
	Identify, ReferenceLookup, PayloadToStage, StageToTarget}

// Valid reports whether p is a known point.
func (p Point) Valid() bool {
	for _, q := range Points {
		if p == q {
			return true
		}
	}
	return false
}

// Label is the point's name in plain words.
func (p Point) Label() string {
	switch p {
	case SourceToStage:
		return "Source to Stage"
	case StageToRequest:
		return "Stage to Request"
	case Response:
		return "Response"
	case TriggerCondition:
		return "Advanced trigger condition"
	case Identify:
		return "Identify message"
	case ReferenceLookup:
		return "Reference lookup"
	case PayloadToStage:
		return "Payload to Stage"
	case StageToTarget:
		return "Stage to Target"
	case PollSetup:
		return "Setup"
	case PollRequest:
		return "Request"
	case PollResponse:
		return "Response"
	}
	return string(p)
}

// Script is one script as stored: its id and version key the compiled program.
type Script struct {
	ID      int64
	Version int64
	Name    string // shown in errors: e.g. "CreateIncident / Stage to Request"
	Point   Point
	Source  string
}

// ErrorKind says why a run failed.
type ErrorKind string

// The kinds of script error.
const (
	KindSyntax    ErrorKind = "syntax"    // the source does not compile
	KindException ErrorKind = "exception" // the script threw (or called a function that does not exist)
	KindTimeout   ErrorKind = "timeout"   // ran past the time limit
	KindMemory    ErrorKind = "memory"    // grew the heap past the memory bound
	KindResult    ErrorKind = "result"    // returned a value of the wrong shape
)

// Error is a failed run: which script, where, and what, in plain words. It
// becomes the transaction's Error (docs/scripting.md, "Errors").
type Error struct {
	Script  string
	Kind    ErrorKind
	Line    int // 1-based; 0 when unknown
	Column  int
	Message string
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Script %q", e.Script)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Message)
	return b.String()
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return nil
}

// Limits bound every run.
type Limits struct {
	// Timeout is the time one run may take (wall time while it holds its
	// goroutine: goja is single-threaded, so it is the run's CPU time unless
	// the machine is oversubscribed). Default 50 ms.
	Timeout time.Duration
	// MaxHeapGrowth interrupts a run when the process's live heap grew by
	// more than this since the run started (docs/decisions.md: why a process
	// measure). Default 64 MiB.
	MaxHeapGrowth uint64
	// MaxString is the longest string (in characters) a built-in may build in
	// one call (repeat, padStart, padEnd, join). Default 4 Mi.
	MaxString int64
	// MaxArrayLength is the longest array the built-ins that walk an array in
	// Go (fill, join, map, …) accept: those loops cannot be interrupted.
	// Default 1 Mi.
	MaxArrayLength int64
	// MaxCallStack is the deepest call stack. Default 512.
	MaxCallStack int
	// MaxLogLines is how many log(...) lines a run keeps. Default 100.
	MaxLogLines int
}

func (l Limits) withDefaults() Limits {
	if l.Timeout <= 0 {
		l.Timeout = 50 * time.Millisecond
	}
	if l.MaxHeapGrowth == 0 {
		l.MaxHeapGrowth = 64 << 20
	}
	if l.MaxString <= 0 {
		l.MaxString = 4 << 20
	}
	if l.MaxArrayLength <= 0 {
		l.MaxArrayLength = 1 << 20
	}
	if l.MaxCallStack <= 0 {
		l.MaxCallStack = 512
	}
	if l.MaxLogLines <= 0 {
		l.MaxLogLines = 100
	}
	return l
}

// Input is the data of one run. Every field is plain data (maps, slices,
// strings, numbers, booleans), copied into the runtime: a script cannot
// change the caller's values.
type Input struct {
	Stage       map[string]any
	Ticket      map[string]any
	Previous    map[string]any // trigger condition: the ticket before the change
	Bond        map[string]any
	Transaction map[string]any
	Vars        map[string]string // the active connection's variables
	Request     map[string]any    // inbound points: method, path, query, headers, body, text
	Response    map[string]any    // response point: status, headers, body, text
	Poll        map[string]any    // poll processor scripts: mark, state, input, page (docs/pollers.md)
	// FindBond answers the script API's findBond(reference) on the inbound
	// points: the bond of the remote ticket reference on the integration
	// (internal_reference, external_reference, state), nil when there is
	// none. Nil: findBond throws (outbound and poll scripts have no use for
	// it). It only reads; an error it returns (the database) fails the run
	// with that error, not a script error, so the caller can retry rather
	// than refuse the request.
	FindBond func(reference string) (map[string]any, error)
}

// MaxBondLookups is how many times one run may call findBond: each is a
// database read, and a script must not turn into a scan of the bonds.
const MaxBondLookups = 10

// Output is what a run produced.
type Output struct {
	Value    any // the exported return value (nil for undefined or null)
	Logs     []string
	Duration time.Duration
	Rejected string // stage_to_target: the text given to reject(...)
}

// Object runs s and requires an object (or, when allowEmpty, nothing) back.
func (e *Engine) Object(s Script, in Input, allowEmpty bool) (map[string]any, Output, error) {
	out, err := e.Run(s, in)
	if err != nil {
		return nil, out, err
	}
	if out.Value == nil && allowEmpty {
		return nil, out, nil
	}
	m, ok := out.Value.(map[string]any)
	if !ok {
		return nil, out, &Error{Script: s.Name, Kind: KindResult,
			Message: fmt.Sprintf("must return an object, but returned %s", describe(out.Value))}
	}
	return m, out, nil
}

// Bool runs s and requires true or false back.
func (e *Engine) Bool(s Script, in Input) (bool, Output, error) {
	out, err := e.Run(s, in)
	if err != nil {
		return false, out, err
	}
	b, ok := out.Value.(bool)
	if !ok {
		return false, out, &Error{Script: s.Name, Kind: KindResult,
			Message: fmt.Sprintf("must return true or false, but returned %s", describe(out.Value))}
	}
	return b, out, nil
}

// String runs s and requires a string (or nothing: "") back.
func (e *Engine) String(s Script, in Input) (string, Output, error) {
	out, err := e.Run(s, in)
	if err != nil || out.Value == nil {
		return "", out, err
	}
	str, ok := out.Value.(string)
	if !ok {
		return "", out, &Error{Script: s.Name, Kind: KindResult,
			Message: fmt.Sprintf("must return a string, but returned %s", describe(out.Value))}
	}
	return str, out, nil
}

// describe names a returned value's type the way a script author would.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case bool:
		return fmt.Sprintf("the boolean %t", x)
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return fmt.Sprintf("the string %q", x)
	case int64, float64:
		return fmt.Sprintf("the number %v", x)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// TransactionData is what scripts see as `transaction`.
func TransactionData(number, messageID, message, ticket string, attempt int) map[string]any {
	return map[string]any{"number": number, "message_id": messageID, "message": message, "attempt": attempt,
		"ticket": ticket}
}

// BondData is what scripts see as `bond`.
func BondData(internal, external string) map[string]any {
	return map[string]any{"internal_reference": internal, "external_reference": external}
}
