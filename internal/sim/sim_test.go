package sim_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"unifi/internal/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rec struct {
	N  int
	At time.Time
}

func TestStore(t *testing.T) {
	t.Parallel()
	clk := sim.NewClock(time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC))
	s := sim.NewStore[rec](clk.Now)
	for i := range 5 {
		require.NoError(t, s.Create(func(n int, at time.Time) (*rec, []string, error) {
			return &rec{N: n, At: at}, []string{fmt.Sprint(n), fmt.Sprint("k", n)}, nil
		}))
		if i == 2 {
			clk.Set(clk.Now().Add(-time.Hour)) // a clock going back: changes keep their order in time
		}
	}
	require.Error(t, s.Create(func(int, time.Time) (*rec, []string, error) { return nil, nil, errors.New("refused") }))
	require.Equal(t, 5, s.Len(), "a refused create stores nothing")

	var got []int
	total := s.Select(sim.Query[rec]{Match: func(r *rec) bool { return r.N%2 == 1 },
		Order: func(a, b *rec) int { return b.N - a.N }, Offset: 1, Limit: 1, Read: func(r *rec) { got = append(got, r.N) }})
	require.Equal(t, 3, total)
	require.Equal(t, []int{3}, got)

	got = nil
	require.Equal(t, 5, s.Select(sim.Query[rec]{Offset: 4, Limit: 10, Read: func(r *rec) { got = append(got, r.N) }}))
	require.Equal(t, []int{5}, got)
	require.Equal(t, 5, s.Select(sim.Query[rec]{Offset: 99, Read: func(*rec) { t.Fatal("no record past the end") }}))

	found, err := s.Update("k5", func(r *rec, at time.Time) error { r.At = at; return nil })
	require.True(t, found)
	require.NoError(t, err)
	var at3, at5 time.Time
	require.True(t, s.Get("3", func(r *rec) { at3 = r.At }))
	require.True(t, s.Get("5", func(r *rec) { at5 = r.At }))
	require.False(t, at5.Before(at3), "the time of a change never runs backwards, though the clock did")
	found, _ = s.Update("nope", func(*rec, time.Time) error { return nil })
	require.False(t, found)
	s.Reset()
	require.Equal(t, 0, s.Len())
}

// api is the smallest simulator: one record list, one route.
type api struct{ seeded int }

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sim.WriteJSON(w, http.StatusOK, map[string]string{"path": r.URL.Path})
}
func (a *api) Listing() sim.Listing {
	return sim.Listing{Title: "Test records", Columns: []string{"Key", "Text"},
		Rows: [][]string{{"A-1", "<script>alert(1)</script>"}}, Notes: []string{"a note"}}
}
func (a *api) Records() any { return []string{"A-1"} }
func (a *api) Seed(body []byte) (any, error) {
	var o struct{ Count int }
	if err := json.Unmarshal(body, &o); err != nil || o.Count < 1 {
		return nil, errors.New("count is a number from 1")
	}
	a.seeded += o.Count
	return map[string]int{"count": o.Count}, nil
}
func (a *api) Reset() { a.seeded = 0 }

func TestFrame(t *testing.T) {
	t.Parallel()
	a := &api{}
	f, err := sim.NewFrame(a, sim.Opts{Name: "the test simulator", Users: map[string]string{"u": "p"},
		Unauthorized: func(w http.ResponseWriter) { w.WriteHeader(http.StatusUnauthorized) },
		ErrorBody:    func(_ int, text string) any { return map[string]string{"oops": text} }})
	require.NoError(t, err)
	srv := httptest.NewServer(f)
	t.Cleanup(func() { f.Close(); srv.Close() })
	open := sim.Client{Base: srv.URL}
	authed := sim.Client{Base: srv.URL, User: "u", Secret: "p"}

	res, err := open.Do("GET", "/", nil)
	require.NoError(t, err)
	page := string(res.Body)
	require.Contains(t, page, `<title>Test records</title>`)
	require.Contains(t, page, "&lt;script&gt;", "record text is escaped")
	require.Contains(t, page, `data-testid="sim-mode">ok<`)
	require.Contains(t, page, "a note")

	res, err = authed.Do("GET", "/anything", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status)
	res, err = open.Do("GET", "/anything", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, res.Status)

	res, err = open.Do("POST", "/seed", map[string]int{"count": 0})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status)
	res, err = open.Do("POST", "/seed", map[string]int{"count": 3})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status)
	require.Equal(t, 3, a.seeded)

	res, err = open.Do("POST", "/control", map[string]any{"rate_limit_per_s": -1})
	require.NoError(t, err)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status)
	res, err = open.Do("POST", "/control", map[string]any{"rate_limit_per_s": 1, "burst": 1, "mode": "fail500"})
	require.NoError(t, err)
	var c sim.Control
	require.NoError(t, res.Decode(&c))
	require.Equal(t, 1.0, *c.RateLimit)
	require.EqualValues(t, "fail500", c.Mode)
	res, err = authed.Do("GET", "/anything", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, res.Status)
	require.JSONEq(t, `{"oops":"The test simulator is failing on purpose (mode fail500)"}`, string(res.Body))

	res, err = open.Do("POST", "/reset", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.Status)
	require.Zero(t, a.seeded)
	require.Zero(t, f.Stats().Requests)
	res, err = open.Do("GET", "/", nil)
	require.NoError(t, err)
	require.True(t, strings.Contains(string(res.Body), "1/s (burst 1)"))
}
