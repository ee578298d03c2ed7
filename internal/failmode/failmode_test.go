package failmode_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"unifi/internal/failmode"
	"unifi/internal/wait"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func guarded(t *testing.T, o failmode.Opts) (*failmode.Switch, *httptest.Server) {
	t.Helper()
	s, err := failmode.New(o)
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/control" {
			s.ServeControl(w, r)
			return
		}
		if s.Intercept(w, r) {
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { s.Close(); srv.Close() })
	return s, srv
}

func get(t *testing.T, url string) (*http.Response, error) {
	t.Helper()
	c := &http.Client{Timeout: 500 * time.Millisecond}
	res, err := c.Get(url)
	if err == nil {
		res.Body.Close()
	}
	return res, err
}

func TestSwitchModes(t *testing.T) {
	t.Parallel()
	ra := 7
	s, srv := guarded(t, failmode.Opts{Name: "the simulator", RetryAfterS: 3,
		ErrorBody: func(status int, text string) any { return map[string]any{"errorMessages": []string{text}} }})

	res, err := get(t, srv.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, res.StatusCode)

	require.NoError(t, s.Set(failmode.Control{Mode: failmode.Fail429, RetryAfterS: &ra}))
	res, err = get(t, srv.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.Equal(t, "7", res.Header.Get("Retry-After"))

	for _, m := range []failmode.Mode{failmode.Fail500, failmode.Fail401} {
		require.NoError(t, s.Set(failmode.Control{Mode: m}))
		res, err = get(t, srv.URL)
		require.NoError(t, err)
		require.Equal(t, map[failmode.Mode]int{failmode.Fail500: 500, failmode.Fail401: 401}[m], res.StatusCode)
	}
	require.NoError(t, s.Set(failmode.Control{Mode: failmode.Refuse}))
	_, err = get(t, srv.URL)
	require.Error(t, err)
	require.NoError(t, s.Set(failmode.Control{Mode: failmode.Stall}))
	_, err = get(t, srv.URL)
	require.ErrorContains(t, err, "Timeout")
	require.EqualValues(t, 5, s.Failed())

	// The control endpoint answers whatever the mode, and for_seconds ends a mode by itself.
	res, err = http.Post(srv.URL+"/control", "application/json", strings.NewReader(`{"mode":"fail500","for_seconds":0.05}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	wait.For(t, 5*time.Second, func() (bool, error) { return s.State().Mode == failmode.OK, nil }, "the mode to end")
	res, err = http.Post(srv.URL+"/control", "application/json", strings.NewReader(`{"mode":"sideways"}`))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 422, res.StatusCode)
}

func TestSwitchFlaky(t *testing.T) {
	t.Parallel()
	_, srv := guarded(t, failmode.Opts{Mode: failmode.Flaky, FailShare: 0.5, Seed: 42})
	fails := 0
	for range 200 {
		res, err := get(t, srv.URL)
		require.NoError(t, err)
		if res.StatusCode == 500 {
			fails++
		}
	}
	require.InDelta(t, 100, fails, 30)
}
