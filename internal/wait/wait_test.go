package wait_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/wait"
)

type fakeTB struct{ failed string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestFor(t *testing.T) {
	t.Parallel()
	t.Run("Holds", func(t *testing.T) {
		t.Parallel()
		n := 0
		tb := &fakeTB{}
		wait.For(tb, 5*time.Second, func() (bool, error) { n++; return n == 3, nil }, "the third look")
		require.Empty(t, tb.failed)
		require.Equal(t, 3, n)
	})
	t.Run("TimesOut", func(t *testing.T) {
		t.Parallel()
		tb := &fakeTB{}
		start := time.Now()
		wait.For(tb, 50*time.Millisecond, func() (bool, error) { return false, errors.New("still 2 queued") },
			"%d transactions Complete", 7)
		require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond)
		require.Equal(t, "wait: 7 transactions Complete: timed out after 50ms; last error: still 2 queued", tb.failed)
	})
	t.Run("NoError", func(t *testing.T) {
		t.Parallel()
		err := wait.Until(20*time.Millisecond, func() (bool, error) { return false, nil })
		require.EqualError(t, err, "timed out after 20ms")
	})
}
