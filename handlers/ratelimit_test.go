package handlers

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

// TestRateLimit: a client gets exactly its burst, then 429 with Retry-After
// and the API's error body; another address has its own bucket. The rate is
// one request an hour, so no token comes back during the test however slow
// the machine (Echo's memory store takes no clock to inject).
func TestRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 3
	e := echo.New()
	e.HTTPErrorHandler = (&Handlers{Logger: slog.New(slog.DiscardHandler)}).errorHandler
	e.GET("/api/x", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, rateLimit(1.0/3600, burst))
	e.GET("/off", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, rateLimit(0, burst))
	get := func(path, ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.RemoteAddr = ip + ":1234"
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	for i := range burst {
		require.Equal(t, http.StatusNoContent, get("/api/x", "10.0.0.1").Code, "burst request %d", i+1)
	}
	for range 2 {
		rec := get("/api/x", "10.0.0.1")
		require.Equal(t, http.StatusTooManyRequests, rec.Code)
		require.Equal(t, "3600", rec.Header().Get("Retry-After"))
		require.JSONEq(t, `{"error":"Too many requests; slow down and try again shortly."}`, rec.Body.String())
	}
	for i := range burst {
		require.Equal(t, http.StatusNoContent, get("/api/x", "10.0.0.2").Code, "another client has its own bucket: %d", i+1)
	}
	require.Equal(t, http.StatusTooManyRequests, get("/api/x", "10.0.0.2").Code)
	for range burst + 1 {
		require.Equal(t, http.StatusNoContent, get("/off", "10.0.0.1").Code, "a rate of 0 is no limit")
	}
}

// TestRateLimitRetryAfter: Retry-After is the time an emptied bucket takes
// to refill one request, in whole seconds (1 at the configured rates).
func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.HTTPErrorHandler = (&Handlers{Logger: slog.New(slog.DiscardHandler)}).errorHandler
	e.GET("/x", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, rateLimit(5, 1))
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
	require.Equal(t, http.StatusNoContent, rec.Code)
	for i := 0; ; i++ { // a machine may pause long enough to refill once (0.2 s); the bucket empties again
		require.Less(t, i, 100, "the limit never answered")
		rec = httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/x", nil))
		if rec.Code == http.StatusTooManyRequests {
			break
		}
	}
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
}
