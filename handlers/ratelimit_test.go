package handlers

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"
)

func TestRateLimit(t *testing.T) {
	t.Parallel()
	e := echo.New()
	e.HTTPErrorHandler = (&Handlers{Logger: slog.New(slog.DiscardHandler)}).errorHandler
	e.GET("/api/x", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, rateLimit(1, 3))
	get := func(ip string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/api/x", nil)
		req.RemoteAddr = ip + ":1234"
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		return rec
	}
	for i := range 3 {
		require.Equal(t, http.StatusNoContent, get("10.0.0.1").Code, "burst request %d", i+1)
	}
	rec := get("10.0.0.1")
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.JSONEq(t, `{"error":"Too many requests; slow down and try again shortly."}`, rec.Body.String())
	require.Equal(t, http.StatusNoContent, get("10.0.0.2").Code, "another client has its own bucket")
}
