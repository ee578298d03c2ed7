package script

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Engine compiles and runs scripts. It is safe for concurrent use; one Engine
// serves a whole process.
type Engine struct {
	limits Limits

	mu    sync.Mutex
	progs map[progKey]*compiled
}

type progKey struct {
	id, version int64
	point       Point
}

// compiled is one script version: its program and the runtimes that have run
// it. Runtimes are pooled per script, so whatever a script leaves behind in
// its runtime (it runs in strict mode, so no implicit globals, but it could
// change a prototype) is only ever seen by later runs of the same script.
//
// The pool is a bounded free list, not a sync.Pool: a sync.Pool is emptied
// by every second garbage collection, and a busy process collects several
// times a second, so most runs built a new runtime (goja.New and harden:
// about as long as the run itself; bench -only poll).
type compiled struct {
	name string
	prog *goja.Program
	idle chan *vmState // runtimes between runs, at most maxIdleRuntimes
}

// maxIdleRuntimes bounds the runtimes kept per script version: more than the
// runs of one script that overlap on a server (one per engine worker and
// poller), few enough that the memory they hold stays small.
const maxIdleRuntimes = 16

func newCompiled(name string, prog *goja.Program) *compiled {
	return &compiled{name: name, prog: prog, idle: make(chan *vmState, maxIdleRuntimes)}
}

// get takes an idle runtime, or nil when there is none.
func (c *compiled) get() *vmState {
	select {
	case st := <-c.idle:
		return st
	default:
		return nil
	}
}

// put keeps a runtime for the next run, unless enough are kept already.
func (c *compiled) put(st *vmState) {
	select {
	case c.idle <- st:
	default:
	}
}

// NewEngine returns an Engine with limits (zero fields take their defaults).
func NewEngine(limits Limits) *Engine {
	setRegexpTimeout(limits.withDefaults().Timeout)
	return &Engine{limits: limits.withDefaults(), progs: map[progKey]*compiled{}}
}

// Limits returns the engine's limits with defaults applied.
func (e *Engine) Limits() Limits { return e.limits }

// wrapper turns a script body into a function, on the body's first line so
// that line numbers stay the author's.
const (
	wrapHead = `(function(){"use strict";`
	wrapTail = "\n})"
)

var syntaxPos = regexp.MustCompile(`Line (\d+):(\d+) (.*)$`)

// Compile checks s's source: nil, or an *Error of kind syntax with its line.
// Used when a script is saved, so that a broken script is refused at once.
func Compile(s Script) error {
	_, err := compile(s)
	return err
}

func compile(s Script) (*goja.Program, error) {
	prog, err := goja.Compile(s.Name, wrapHead+s.Source+wrapTail, true)
	if err == nil {
		return prog, nil
	}
	se := &Error{Script: s.Name, Kind: KindSyntax, Message: err.Error()}
	var ce *goja.CompilerSyntaxError
	var list parser.ErrorList
	var pe *parser.Error
	switch {
	case errors.As(err, &ce):
		se.Message = ce.Message
		if ce.File != nil {
			pos := ce.File.Position(ce.Offset)
			se.Line, se.Column = pos.Line, pos.Column
		} else if m := syntaxPos.FindStringSubmatch(ce.Message); m != nil {
			// The parser's errors come flattened into the text: "name: Line 1:9 Unexpected token ;".
			se.Line, _ = strconv.Atoi(m[1])
			se.Column, _ = strconv.Atoi(m[2])
			se.Message = m[3]
		}
	case errors.As(err, &list) && len(list) > 0:
		se.Message, se.Line, se.Column = list[0].Message, list[0].Position.Line, list[0].Position.Column
	case errors.As(err, &pe):
		se.Message, se.Line, se.Column = pe.Message, pe.Position.Line, pe.Position.Column
	}
	if se.Line == 1 && se.Column > len(wrapHead) {
		se.Column -= len(wrapHead) // the wrapper shares the script's first line
	}
	return nil, se
}

// program returns s's compiled program, compiling it on first use of this
// version. Older versions of the same script are dropped.
// A script with ID 0 (an unsaved source being tested) is compiled every time
// and not kept.
func (e *Engine) program(s Script) (*compiled, error) {
	if s.ID == 0 {
		prog, err := compile(s)
		if err != nil {
			return nil, err
		}
		return newCompiled(s.Name, prog), nil
	}
	k := progKey{s.ID, s.Version, s.Point}
	e.mu.Lock()
	c := e.progs[k]
	e.mu.Unlock()
	if c != nil {
		return c, nil
	}
	prog, err := compile(s)
	if err != nil {
		return nil, err
	}
	c = newCompiled(s.Name, prog)
	e.mu.Lock()
	defer e.mu.Unlock()
	if have := e.progs[k]; have != nil {
		return have, nil
	}
	for old := range e.progs {
		if old.id == s.ID && old.point == s.Point {
			delete(e.progs, old)
		}
	}
	e.progs[k] = c
	return c, nil
}

// Forget drops every compiled program (the configuration changed).
func (e *Engine) Forget() {
	e.mu.Lock()
	e.progs = map[progKey]*compiled{}
	e.mu.Unlock()
}

// vmState is one pooled runtime with its compiled function and the run's
// mutable pieces that the API functions read.
type vmState struct {
	vm       *goja.Runtime
	fn       goja.Callable
	logs     []string
	maxLogs  int
	rejected *string
	findBond func(string) (map[string]any, error) // the run's Input.FindBond
	lookups  int                                  // findBond calls this run
	lookErr  error                                // the first failed lookup (not the script's fault)
}

func (e *Engine) newState(c *compiled) (*vmState, error) {
	vm := goja.New()
	vm.SetMaxCallStackSize(e.limits.MaxCallStack)
	st := &vmState{vm: vm, maxLogs: e.limits.MaxLogLines}
	if err := harden(vm, e.limits); err != nil {
		return nil, fmt.Errorf("prepare script runtime: %w", err)
	}
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	must(vm.Set("log", func(call goja.FunctionCall) goja.Value {
		if len(st.logs) >= st.maxLogs {
			return goja.Undefined()
		}
		parts := make([]string, len(call.Arguments))
		for i, a := range call.Arguments {
			parts[i] = logText(vm, a)
		}
		st.logs = append(st.logs, LogLine(strings.Join(parts, " ")))
		return goja.Undefined()
	}))
	must(vm.Set("reject", func(call goja.FunctionCall) goja.Value {
		msg := strings.TrimSpace(call.Argument(0).String())
		if msg == "" || goja.IsUndefined(call.Argument(0)) {
			msg = "Rejected by the Stage to Target script"
		}
		st.rejected = &msg
		return goja.Undefined()
	}))
	must(vm.Set("findBond", func(call goja.FunctionCall) goja.Value {
		return st.lookupBond(call)
	}))
	v, err := vm.RunProgram(c.prog)
	if err != nil {
		return nil, err
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return nil, errors.New("script did not compile to a function")
	}
	st.fn = fn
	return st, nil
}

// lookupBond is findBond(reference): the bond of that remote ticket on the
// integration, or null. A failed read stops the run (the error is kept in
// lookErr and returned by Run as it is, not as a script error).
func (st *vmState) lookupBond(call goja.FunctionCall) goja.Value {
	vm := st.vm
	if st.findBond == nil {
		panic(vm.NewTypeError("findBond is only available to inbound scripts (Identify message, Reference lookup, Payload to Stage, Stage to Target)"))
	}
	arg := call.Argument(0)
	ref, ok := arg.Export().(string)
	if !ok {
		panic(vm.NewTypeError("findBond(reference) takes the remote ticket's reference as a string"))
	}
	if st.lookups >= MaxBondLookups {
		panic(vm.NewGoError(fmt.Errorf("findBond called more than %d times in one run", MaxBondLookups)))
	}
	st.lookups++
	b, err := st.findBond(strings.TrimSpace(ref))
	if err != nil {
		st.lookErr = err
		panic(vm.NewGoError(err))
	}
	if b == nil {
		return goja.Null()
	}
	return toJS(vm, b)
}

// logText renders one log(...) argument: strings as they are, the rest as JSON.
// MaxLogChars is the longest log(...) line kept, in characters (the last
// one an ellipsis when the line was cut).
const MaxLogChars = 2000

// LogLine is a log(...) line as it is stored: at most MaxLogChars
// characters, cut on a character boundary, and with no NUL or invalid UTF-8
// (which PostgreSQL's text refuses: a script's log line must never fail the
// statement that stores it).
func LogLine(line string) string {
	if strings.IndexByte(line, 0) >= 0 || !utf8.ValidString(line) {
		line = strings.ToValidUTF8(strings.ReplaceAll(line, "\x00", "\uFFFD"), "\uFFFD")
	}
	if len(line) <= MaxLogChars || utf8.RuneCountInString(line) <= MaxLogChars {
		return line
	}
	n := 0
	for i := range line {
		if n == MaxLogChars-1 {
			return line[:i] + "…"
		}
		n++
	}
	return line
}

func logText(vm *goja.Runtime, v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if _, ok := v.Export().(string); ok {
		return v.String()
	}
	if obj, ok := v.(*goja.Object); ok {
		if b, err := obj.MarshalJSON(); err == nil {
			return string(b)
		}
	}
	return v.String()
}

// inputNames are the globals a script sees (docs/scripting.md, "The API").
var inputNames = []string{"stage", "ticket", "previous", "bond", "transaction", "vars", "request", "response", "poll"}

// Run runs s with in and returns what it returned, its log lines and its
// time. A failure is an *Error naming the script, the line and the reason.
func (e *Engine) Run(s Script, in Input) (Output, error) {
	c, err := e.program(s)
	if err != nil {
		return Output{}, err
	}
	st := c.get()
	if st == nil {
		if st, err = e.newState(c); err != nil {
			return Output{}, &Error{Script: s.Name, Kind: KindException, Message: err.Error()}
		}
	}
	st.logs, st.rejected = nil, nil
	st.findBond, st.lookups, st.lookErr = in.FindBond, 0, nil
	vm := st.vm
	vars := make(map[string]any, len(in.Vars))
	for k, v := range in.Vars {
		vars[k] = v
	}
	values := []any{in.Stage, in.Ticket, in.Previous, in.Bond, in.Transaction, vars, in.Request, in.Response, in.Poll}
	for i, name := range inputNames {
		if err := vm.Set(name, toJS(vm, values[i])); err != nil {
			return Output{}, &Error{Script: s.Name, Kind: KindException, Message: err.Error()}
		}
	}

	// The run keeps its OS thread so that the watcher can read that thread's
	// CPU time: the limit is the CPU the script used, not the time it waited
	// for a core on a busy machine.
	runtime.LockOSThread()
	start := time.Now()
	w := e.watch(vm, start, threadClock())
	v, runErr := st.fn(goja.Undefined())
	w.stop()
	runtime.UnlockOSThread()
	// The watcher may have interrupted just as the run ended; no Interrupt can
	// come after stop, so clearing here leaves the runtime clean for the pool.
	vm.ClearInterrupt()
	out := Output{Logs: st.logs, Duration: time.Since(start)}
	if st.rejected != nil {
		out.Rejected = *st.rejected
	}
	if st.lookErr != nil {
		// The database failed under findBond: not the script's error, and
		// the runtime is not pooled (the exception may have been caught).
		return out, fmt.Errorf("script %q: findBond: %w", s.Name, st.lookErr)
	}
	if runErr != nil {
		// An interrupted runtime may be mid-way through anything: do not pool it.
		return out, e.runError(s.Name, runErr)
	}
	if v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
		out.Value = v.Export()
	}
	st.logs, st.rejected, st.findBond = nil, nil, nil
	c.put(st)
	return out, nil
}

// runError turns a goja error into an *Error with the script's line.
func (e *Engine) runError(name string, err error) *Error {
	se := &Error{Script: name, Kind: KindException, Message: err.Error()}
	var ie *goja.InterruptedError
	var ex *goja.Exception
	var so *goja.StackOverflowError
	var stack []goja.StackFrame
	switch {
	case errors.As(err, &ie):
		stack = ie.Stack()
		switch v := ie.Value().(type) {
		case interruptReason:
			se.Kind, se.Message = v.kind, v.msg
		default:
			se.Message = fmt.Sprint(v)
		}
	case errors.As(err, &so):
		stack = so.Stack()
		se.Message = fmt.Sprintf("the call stack is deeper than %d calls (endless recursion?)", e.limits.MaxCallStack)
	case errors.As(err, &ex):
		stack = ex.Stack()
		if ex.Value() != nil {
			se.Message = ex.Value().String()
		}
	}
	for _, f := range stack {
		if f.SrcName() == name {
			pos := f.Position()
			se.Line, se.Column = pos.Line, pos.Column
			break
		}
	}
	return se
}

type interruptReason struct {
	kind ErrorKind
	msg  string
}

// watcher interrupts one run that passes the time limit or the memory bound.
// It wakes every tick, so a run shorter than a tick costs one timer.
type watcher struct {
	mu      sync.Mutex
	t       *time.Timer
	stopped bool
}

const watchTick = 2 * time.Millisecond

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

// heapBytes is the process's heap occupied by objects, live or not yet swept.
func heapBytes() uint64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return heapSample[0].Value.Uint64()
}

// wallFactor bounds a run's wall time at this many times the CPU time limit
// (at least a second): a backstop when the thread's CPU time cannot be read.
const wallFactor = 20

func (e *Engine) watch(vm *goja.Runtime, start time.Time, cpu func() time.Duration) *watcher {
	w := &watcher{}
	base := heapBytes()
	var cpuStart time.Duration
	if cpu != nil {
		cpuStart = cpu()
	}
	wallLimit := max(wallFactor*e.limits.Timeout, time.Second)
	if cpu == nil {
		wallLimit = e.limits.Timeout
	}
	timeout := func() {
		vm.Interrupt(interruptReason{KindTimeout, fmt.Sprintf("ran longer than the limit of %s and was stopped", e.limits.Timeout)})
	}
	var check func()
	check = func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.stopped {
			return
		}
		if cpu != nil {
			if used := cpu(); used >= 0 && used-cpuStart >= e.limits.Timeout {
				timeout()
				return
			}
		}
		if time.Since(start) >= wallLimit {
			timeout()
			return
		}
		if h := heapBytes(); h > base && h-base > e.limits.MaxHeapGrowth {
			vm.Interrupt(interruptReason{KindMemory, fmt.Sprintf("used more than the memory bound of %d MiB and was stopped", e.limits.MaxHeapGrowth>>20)})
			return
		}
		w.t.Reset(watchTick)
	}
	w.mu.Lock()
	w.t = time.AfterFunc(watchTick, check)
	w.mu.Unlock()
	return w
}

func (w *watcher) stop() {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
}

// toJS copies plain Go data into fresh JavaScript values, so that scripts see
// ordinary objects and arrays (not Go wrappers that write through).
func toJS(vm *goja.Runtime, v any) goja.Value {
	switch x := v.(type) {
	case nil:
		return goja.Null()
	case map[string]any:
		if x == nil {
			return goja.Null()
		}
		o := vm.NewObject()
		for k, val := range x {
			_ = o.Set(k, toJS(vm, val))
		}
		return o
	case map[string]string:
		o := vm.NewObject()
		for k, val := range x {
			_ = o.Set(k, val)
		}
		return o
	case []any:
		items := make([]any, len(x))
		for i, val := range x {
			items[i] = toJS(vm, val)
		}
		return vm.NewArray(items...)
	case []string:
		items := make([]any, len(x))
		for i, val := range x {
			items[i] = val
		}
		return vm.NewArray(items...)
	default:
		return vm.ToValue(x)
	}
}
