package script

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The limit is the thread's CPU time: it advances while the thread computes
// and not while it sleeps.
func TestThreadClock(t *testing.T) {
	t.Parallel()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	clock := threadClock()
	require.NotNil(t, clock)
	a := clock()
	time.Sleep(50 * time.Millisecond)
	b := clock()
	require.Less(t, b-a, 20*time.Millisecond, "sleeping uses no CPU")
	// Spin until the thread has had 10 ms of CPU, with a wall-clock bound:
	// on a loaded machine 30 ms of wall time may hold only 4 ms of CPU, so the
	// wall time spent says nothing; a broken clock never gets there.
	for start := time.Now(); clock()-b < 10*time.Millisecond && time.Since(start) < 10*time.Second; {
	}
	require.GreaterOrEqual(t, clock()-b, 10*time.Millisecond, "a busy loop does")
}
