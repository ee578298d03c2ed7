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
	for start := time.Now(); time.Since(start) < 30*time.Millisecond; {
	}
	require.Greater(t, clock()-b, 5*time.Millisecond, "a busy loop does")
}
