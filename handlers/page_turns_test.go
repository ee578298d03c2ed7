package handlers

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"unifi/internal/wait"
)

// turnsServer is a real HTTP server whose GET /hold/:name and POST
// /hold/:name handlers enter, say so on entered, and return once their name
// is released.
type turnsServer struct {
	t       *testing.T
	turns   *pageTurns
	url     string
	entered chan string
	ended   chan struct{} // closed when the test ends: every handler returns

	mu      sync.Mutex
	release map[string]chan struct{}
	running int
	most    int // the most handlers running at once
}

func newTurnsServer(t *testing.T, n int, wait time.Duration) *turnsServer {
	s := &turnsServer{t: t, turns: newPageTurns(n, wait), entered: make(chan string, 10), ended: make(chan struct{}), release: map[string]chan struct{}{}}
	e := echo.New()
	e.HTTPErrorHandler = (&Handlers{Logger: slog.New(slog.DiscardHandler)}).errorHandler
	hold := func(c echo.Context) error {
		name := c.Param("name")
		s.mu.Lock()
		s.running++
		s.most = max(s.most, s.running)
		s.mu.Unlock()
		s.entered <- name
		select {
		case <-s.releaser(name):
		case <-s.ended:
		}
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
		return c.String(http.StatusOK, name)
	}
	e.GET("/hold/:name", hold, s.turns.middleware)
	e.POST("/hold/:name", hold, s.turns.middleware)
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close) // after ended is closed: cleanups run last first
	t.Cleanup(func() { close(s.ended) })
	s.url = srv.URL
	return s
}

func (s *turnsServer) releaser(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.release[name] == nil {
		s.release[name] = make(chan struct{})
	}
	return s.release[name]
}

// send makes a request in the background; its answer arrives on the channel.
func (s *turnsServer) send(ctx context.Context, method, name string) <-chan *http.Response {
	out := make(chan *http.Response, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, method, s.url+"/hold/"+name, nil)
		if err != nil {
			panic(err)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			out <- nil
			return
		}
		out <- res
	}()
	return out
}

func (s *turnsServer) waitEntered(want string) {
	s.t.Helper()
	select {
	case got := <-s.entered:
		require.Equal(s.t, want, got, "the next view to get its turn")
	case <-time.After(10 * time.Second):
		s.t.Fatalf("%s did not get a turn", want)
	}
}

func (s *turnsServer) waitQueued(n int64) {
	s.t.Helper()
	wait.For(s.t, 10*time.Second, func() (bool, error) { return s.turns.waiting.Load() == n, nil }, "%d views waiting", n)
}

// hold sends a request and returns once its handler runs.
func (s *turnsServer) hold(ctx context.Context, method, name string) <-chan *http.Response {
	s.t.Helper()
	answer := s.send(ctx, method, name)
	s.waitEntered(name)
	return answer
}

// finish lets name's handler return and requires its answer to be 200 with
// its name.
func (s *turnsServer) finish(name string, answer <-chan *http.Response) {
	s.t.Helper()
	close(s.releaser(name))
	code, body := status(s.t, answer)
	require.Equal(s.t, http.StatusOK, code)
	require.Equal(s.t, name, body)
}

func status(t *testing.T, answer <-chan *http.Response) (int, string) {
	t.Helper()
	select {
	case res := <-answer:
		require.NotNil(t, res, "the request failed")
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, string(body)
	case <-time.After(10 * time.Second):
		t.Fatal("no answer")
		return 0, ""
	}
}

// TestPageTurnsInArrivalOrder: with one turn, views run one at a time, in
// the order they arrived.
func TestPageTurnsInArrivalOrder(t *testing.T) {
	t.Parallel()
	s := newTurnsServer(t, 1, 10*time.Second)
	ctx := t.Context()
	a := s.hold(ctx, http.MethodGet, "a")
	b := s.send(ctx, http.MethodGet, "b")
	s.waitQueued(1)
	c := s.send(ctx, http.MethodGet, "c")
	s.waitQueued(2)
	s.finish("a", a)
	s.waitEntered("b")
	s.finish("b", b)
	s.waitEntered("c")
	s.finish("c", c)
	require.Equal(t, 1, s.most, "views at once")
}

// TestPageTurnsBusy: a view that waits longer than its limit is told the
// server is busy, with a Retry-After; the next one after the turn is free
// runs.
func TestPageTurnsBusy(t *testing.T) {
	t.Parallel()
	s := newTurnsServer(t, 1, 50*time.Millisecond)
	ctx := t.Context()
	a := s.hold(ctx, http.MethodGet, "a")
	// Bounded: were b let in, its handler would wait for a release that never comes.
	bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(bctx, http.MethodGet, s.url+"/hold/b", nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.NoError(t, res.Body.Close())
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	require.Equal(t, "5", res.Header.Get("Retry-After"))
	require.Contains(t, string(body), "The server is busy")
	s.finish("a", a)
	s.finish("c", s.hold(ctx, http.MethodGet, "c"))
}

// TestPageTurnsClientLeaves: a view whose client leaves while it waits gives
// up its place without taking a turn: the view after it runs as soon as the
// running one ends, and two turns' worth of views never run at once.
func TestPageTurnsClientLeaves(t *testing.T) {
	t.Parallel()
	s := newTurnsServer(t, 1, time.Minute) // longer than waitQueued waits: b must leave, not time out
	ctx := t.Context()
	a := s.hold(ctx, http.MethodGet, "a")
	leaving, leave := context.WithCancel(ctx)
	b := s.send(leaving, http.MethodGet, "b")
	s.waitQueued(1)
	leave()
	require.Nil(t, <-b, "the client gave up")
	s.waitQueued(0)
	s.finish("a", a)
	c := s.hold(ctx, http.MethodGet, "c")
	d := s.send(ctx, http.MethodGet, "d")
	s.waitQueued(1) // c holds the only turn: b's leaving did not free a second one
	s.finish("c", c)
	s.waitEntered("d")
	s.finish("d", d)
	require.Equal(t, 1, s.most)
}

// TestPageTurnsActionsGoAhead: an action (POST) runs while every turn is
// taken.
func TestPageTurnsActionsGoAhead(t *testing.T) {
	t.Parallel()
	s := newTurnsServer(t, 1, 10*time.Second)
	ctx := t.Context()
	a := s.hold(ctx, http.MethodGet, "a")
	s.finish("p", s.hold(ctx, http.MethodPost, "p"))
	s.finish("a", a)
	require.Equal(t, 2, s.most)
}
