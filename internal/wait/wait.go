// Package wait is the tests' one way to wait for something that happens on
// its own time (an engine, a server, a peer): poll a condition until it holds.
package wait

import (
	"fmt"
	"time"
)

// TB is the part of testing.TB that For uses.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// For polls cond until it reports true and fails t (Fatalf, from the test's
// goroutine) when timeout passes first, naming what it waited for (what,
// formatted with args) and the last error cond returned. An error does not
// end the wait: the condition may still come to hold (a restarting database).
// cond runs at once, then on a ticker: every hundredth of the timeout,
// between 10 and 100 ms.
func For(t TB, timeout time.Duration, cond func() (bool, error), what string, args ...any) {
	t.Helper()
	if err := Until(timeout, cond); err != nil {
		if len(args) > 0 {
			what = fmt.Sprintf(what, args...)
		}
		t.Fatalf("wait: %s: %v", what, err)
	}
}

// Until is For's loop without a test: nil once cond holds, or an error saying
// how long it waited and what cond last returned.
func Until(timeout time.Duration, cond func() (bool, error)) error {
	every := min(max(timeout/1000, 10*time.Millisecond), 100*time.Millisecond)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			if ok, err := cond(); ok { // one last look: the deadline may have won a tie
				return nil
			} else if err != nil {
				last = err
			}
			if last == nil {
				return &timeoutError{timeout: timeout}
			}
			return &timeoutError{timeout: timeout, last: last}
		}
	}
}

type timeoutError struct {
	timeout time.Duration
	last    error
}

func (e *timeoutError) Error() string {
	if e.last == nil {
		return "timed out after " + e.timeout.String()
	}
	return "timed out after " + e.timeout.String() + "; last error: " + e.last.Error()
}

func (e *timeoutError) Unwrap() error { return e.last }
