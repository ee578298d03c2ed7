package script_test

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models/script"
)

// TestRuntimeKeptAcrossGC: a script's runtime is used again by its next run
// even when garbage collections came between (a sync.Pool drops its content
// on the second one, and a new runtime costs as much as the run). The script
// counts its runs on its runtime's global object, which only a kept runtime
// remembers.
func TestRuntimeKeptAcrossGC(t *testing.T) {
	t.Parallel()
	e := newEngine()
	s := src("counter", `globalThis.runs = (globalThis.runs || 0) + 1; return globalThis.runs;`)
	for want := int64(1); want <= 3; want++ {
		out, err := e.Run(s, script.Input{})
		require.NoError(t, err)
		require.Equal(t, want, out.Value, "run %d built a new runtime", want)
		runtime.GC()
		runtime.GC()
	}
	// Another version of the script is another program: a fresh runtime.
	s.Version++
	out, err := e.Run(s, script.Input{})
	require.NoError(t, err)
	require.Equal(t, int64(1), out.Value)
}
