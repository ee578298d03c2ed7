package handlers

import (
	"context"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"unifi/internal/metrics"
)

// Healthz says the process is up.
func (h *Handlers) Healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// Readyz says whether the database is reachable and fully migrated.
func (h *Handlers) Readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.Store.Ping(ctx); err != nil {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "error": err.Error()})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

// Metrics serves the Prometheus metrics (internal/metrics). With
// METRICS_TOKEN set a scraper sends it as a bearer token; without it only a
// scraper on this machine (a loopback peer) is answered: the figures name
// integrations and their troubles, not for anyone on the network.
func (h *Handlers) Metrics() echo.HandlerFunc {
	serve := promhttp.HandlerFor(metrics.NewRegistry(h.Query, h.Logger, h.EngineStats), promhttp.HandlerOpts{})
	return func(c echo.Context) error {
		if !h.metricsAllowed(c.Request()) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			return echo.NewHTTPError(http.StatusUnauthorized,
				"Metrics need the METRICS_TOKEN as a bearer token, or a scraper on this machine.")
		}
		serve.ServeHTTP(c.Response(), c.Request())
		return nil
	}
}

func (h *Handlers) metricsAllowed(r *http.Request) bool {
	if tok := h.Config.MetricsToken; tok != "" {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), []byte(tok)) == 1
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip, perr := netip.ParseAddr(host)
	return err == nil && perr == nil && ip.IsLoopback() && r.Header.Get("X-Forwarded-For") == ""
}
