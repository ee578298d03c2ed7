package script_test

import (
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models/script"
)

// newEngine has a time limit generous enough for a loaded test machine
// (two cores shared, the race detector on).
func newEngine() *script.Engine {
	return script.NewEngine(script.Limits{Timeout: 5 * time.Second})
}

func src(name, body string) script.Script {
	return script.Script{ID: 1, Version: 1, Name: name, Point: script.StageToRequest, Source: body}
}

func TestRunReturnsObjectLogsAndVars(t *testing.T) {
	t.Parallel()
	e := newEngine()
	in := script.Input{Stage: map[string]any{"short_description": "Disk full", "priority": "1",
		"tags": []any{"a", "b"}}, Vars: map[string]string{"project": "OPS"}}
	m, out, err := e.Object(src("Create / Stage to Request", `
		log("building for", vars.project, stage.tags);
		return {method: "POST", path: "/rest/api/2/issue",
		        body: {fields: {project: {key: vars.project}, summary: stage.short_description}}};`), in, false)
	require.NoError(t, err)
	require.Equal(t, "POST", m["method"])
	body := m["body"].(map[string]any)["fields"].(map[string]any)
	require.Equal(t, "Disk full", body["summary"])
	require.Equal(t, []string{`building for OPS ["a","b"]`}, out.Logs)
	require.Positive(t, out.Duration)
}

func TestScriptCannotChangeCallerData(t *testing.T) {
	t.Parallel()
	e := newEngine()
	stage := map[string]any{"a": "1"}
	_, err := e.Run(src("s", `stage.a = "changed"; stage.b = 2;`), script.Input{Stage: stage})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"a": "1"}, stage)
}

// Each attack ends in a clear *script.Error of the right kind, and the engine
// goes on running good scripts afterwards.
func TestAttacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		kind     script.ErrorKind
		line     int
		contains string
	}{
		{"InfiniteLoop", "let i = 0;\nwhile (true) { i++; }", script.KindTimeout, 2, "ran longer than the limit"},
		{"DoublingString", "let s = 'x';\nwhile (true) { s = s + s; }", "", 0, "stopped"},
		{"GrowingArray", "const a = [];\nwhile (true) { a.push({k: 'some text here', n: a.length}); }", "", 0, "stopped"},
		{"HugeRepeat", "return 'x'.repeat(1e9);", script.KindException, 1, "more than the limit"},
		{"HugePad", "return ''.padStart(2e9, 'ab');", script.KindException, 1, "more than the limit"},
		{"HugeFill", "const a = new Array(4e9);\nreturn a.fill(0).length;", script.KindException, 2, "more than the limit"},
		{"HugeArrayFrom", "return Array.from({length: 1e9}).length;", script.KindException, 1, "more than the limit"},
		{"HugeJoin", "const a = new Array(100000);\nreturn a.join('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx');", script.KindException, 2, "more than the limit"},
		{"TypedArray", "return new Uint8Array(1e9).length;", script.KindException, 1, "Uint8Array is not defined"},
		{"Throw", "const x = 1;\nthrow new Error('the remote key is missing');", script.KindException, 2, "the remote key is missing"},
		{"Require", "const fs = require('fs');\nreturn fs.readFileSync('/etc/passwd');", script.KindException, 1, "require is not defined"},
		{"Fetch", "return fetch('http://example.com');", script.KindException, 1, "fetch is not defined"},
		{"XHR", "return new XMLHttpRequest();", script.KindException, 1, "XMLHttpRequest is not defined"},
		{"Process", "return process.env.HOME;", script.KindException, 1, "process is not defined"},
		{"Recursion", "function f(n) { return f(n + 1) + 1; }\nreturn f(0);", script.KindException, 1, "call stack is deeper"},
		{"CatastrophicRegexp", `return /^(a+)+\1$/.test('a'.repeat(40) + 'b');`, "", 1, ""},
		{"Syntax", "let x = ;\nreturn x;", script.KindSyntax, 1, "Unexpected token"},
	}
	e := script.NewEngine(script.Limits{Timeout: 200 * time.Millisecond})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := src(tc.name, tc.body)
			s.ID = int64(100 + i) // the program cache is keyed by id and version
			_, err := e.Run(s, script.Input{})
			se := script.AsError(err)
			require.NotNil(t, se, "want a script error, got %v", err)
			require.Equal(t, tc.name, se.Script)
			if tc.kind != "" {
				require.Equal(t, tc.kind, se.Kind, se.Error())
			} else {
				require.Contains(t, []script.ErrorKind{script.KindTimeout, script.KindMemory}, se.Kind, se.Error())
			}
			if tc.line > 0 {
				require.Equal(t, tc.line, se.Line, se.Error())
			}
			require.Contains(t, se.Error(), tc.contains)
			require.True(t, strings.HasPrefix(se.Error(), `Script "`+tc.name+`"`), se.Error())

			// The engine still serves.
			v, _, err := e.String(script.Script{ID: 99, Version: 1, Name: "ok", Source: "return 'fine';"}, script.Input{})
			require.NoError(t, err)
			require.Equal(t, "fine", v)
		})
	}
	runtime.GC()
}

func TestWrongReturnType(t *testing.T) {
	t.Parallel()
	e := newEngine()
	_, _, err := e.Object(src("Create / Stage to Request", "return 42;"), script.Input{}, false)
	require.EqualError(t, err, `Script "Create / Stage to Request": must return an object, but returned the number 42`)
	_, _, err = e.Bool(script.Script{ID: 2, Version: 1, Name: "cond", Source: "return 'yes';"}, script.Input{})
	require.EqualError(t, err, `Script "cond": must return true or false, but returned the string "yes"`)
	require.Equal(t, script.KindResult, script.AsError(err).Kind)
}

func TestCompiledOncePerVersion(t *testing.T) {
	t.Parallel()
	e := newEngine()
	s := script.Script{ID: 7, Version: 1, Name: "v", Source: "return 'one';"}
	v, _, err := e.String(s, script.Input{})
	require.NoError(t, err)
	require.Equal(t, "one", v)
	// Same version, different source: the cached program is used (the source
	// of a version never changes once saved).
	s.Source = "return 'two';"
	v, _, _ = e.String(s, script.Input{})
	require.Equal(t, "one", v)
	s.Version = 2
	v, _, _ = e.String(s, script.Input{})
	require.Equal(t, "two", v)
}

func TestRejectAndConcurrentRuns(t *testing.T) {
	t.Parallel()
	e := newEngine()
	s := script.Script{ID: 8, Version: 1, Name: "target", Point: script.StageToTarget,
		Source: "if (stage.state === 'Closed') { reject('Closed tickets cannot be reopened'); return; }\nreturn {state: stage.state};"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			state := "Open"
			if i%2 == 0 {
				state = "Closed"
			}
			for range 50 {
				m, out, err := e.Object(s, script.Input{Stage: map[string]any{"state": state}}, true)
				if !(err == nil) {
					t.Error(err)
					return
				}
				if state == "Closed" && (out.Rejected != "Closed tickets cannot be reopened" || m != nil) {
					t.Errorf("want a rejection, got %v %q", m, out.Rejected)
				}
				if state == "Open" && (out.Rejected != "" || m["state"] != "Open") {
					t.Errorf("want Open, got %v %q", m, out.Rejected)
				}
			}
		}()
	}
	wg.Wait()
}

func TestCompileReportsLine(t *testing.T) {
	t.Parallel()
	err := script.Compile(script.Script{Name: "x", Source: "const a = 1;\nconst b = 1 +* 2;\n"})
	se := script.AsError(err)
	require.NotNil(t, se)
	require.Equal(t, script.KindSyntax, se.Kind)
	require.Equal(t, 2, se.Line)
}

// A script that keeps allocating is stopped by the memory bound before the
// time limit (the limit here is long so that only the bound can stop it).
//
// Not parallel: the bound measures the process's heap (docs/decisions.md), so
// this hog would stop other tests' scripts running at the same time.
func TestMemoryBound(t *testing.T) { //nolint:paralleltest // see above
	e := script.NewEngine(script.Limits{Timeout: 20 * time.Second, MaxHeapGrowth: 32 << 20})
	_, err := e.Run(script.Script{ID: 1, Version: 1, Name: "hog",
		Source: "const a = [], mb = 'x'.repeat(1 << 20);\nwhile (true) { a.push(mb + a.length); }"}, script.Input{})
	se := script.AsError(err)
	require.NotNil(t, se, "%v", err)
	require.Equal(t, script.KindMemory, se.Kind, se.Error())
	require.Equal(t, `Script "hog" line 2: used more than the memory bound of 32 MiB and was stopped`, se.Error())
}
