package handlers

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// pageWait is how long a page view waits for its turn before it is answered
// 503: long enough for a burst to pass, short enough that a person is told
// rather than left looking at a blank tab.
const pageWait = 10 * time.Second

// pageBusy is the 503 answer's text.
var pageBusy = fmt.Sprintf("The server is busy: this page waited its turn for %d seconds. Try again in a moment.",
	int(pageWait/time.Second))

// clientClosedRequest is the status logged for a page view whose browser left
// while it waited (nginx's 499); nothing reaches the browser.
const clientClosedRequest = 499

// pageTurns lets n page views (GET and HEAD) run at once in this process and
// queues the rest in arrival order, so that under load every view waits about
// as long as the others instead of some waiting twice as long.
//
// Measured on the pages bench (50 users, 2 CPUs, 1M transactions; A/B in
// docs/engine.md, "Tenth round"): with every view running at once, p95 was 1.8
// to 1.9 times p50, the views sharing the CPUs by the scheduler's whim; with 4
// turns, 1.3 to 1.4 times, and p95 fell by a quarter at the same throughput.
// Two turns left the CPUs idle while views waited on the database.
//
// Actions (POST) do not wait: they are few, a person is waiting on each, and
// some call a remote system or read an upload. The progress stream
// (BulkJobEvents) is registered outside the turns: it stays open for minutes.
type pageTurns struct {
	slots   chan struct{} // a view holds one while it runs; blocked senders are served first come, first served
	wait    time.Duration
	waiting atomic.Int64 // views waiting for a turn now (tests watch it)
}

func newPageTurns(n int, wait time.Duration) *pageTurns {
	return &pageTurns{slots: make(chan struct{}, max(n, 1)), wait: wait}
}

func (t *pageTurns) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			return next(c)
		}
		select {
		case t.slots <- struct{}{}: // a free turn: no timer to start
		default:
			if turn, err := t.queue(c); !turn {
				return err
			}
		}
		defer func() { <-t.slots }()
		return next(c)
	}
}

// queue waits for a turn (true), the wait's end or the client's leaving
// (false, with what to answer).
func (t *pageTurns) queue(c echo.Context) (bool, error) {
	t.waiting.Add(1)
	defer t.waiting.Add(-1)
	timer := time.NewTimer(t.wait)
	defer timer.Stop()
	select {
	case t.slots <- struct{}{}:
		return true, nil
	case <-timer.C:
		c.Response().Header().Set("Retry-After", "5")
		return false, echo.NewHTTPError(http.StatusServiceUnavailable, pageBusy)
	case <-c.Request().Context().Done():
		return false, c.NoContent(clientClosedRequest)
	}
}
