package handlers

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"golang.org/x/time/rate"
)

// tooManyRequests is the 429 answer's text (docs/openapi.json, RateLimited).
const tooManyRequests = "Too many requests; slow down and try again shortly."

// rateLimit is Echo's rate limiter with a token bucket per client address
// (RealIP) in this process's memory: perSec requests per second after a
// burst of burst, answered 429 with Retry-After beyond that. A rate of 0
// turns the limit off. It guards one server process against floods; login
// throttling across processes lives in the database
// (models.CheckLoginThrottle).
func rateLimit(perSec float64, burst int) echo.MiddlewareFunc {
	if perSec <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	// An emptied bucket has a token again after 1/perSec: with the rates
	// LOGIN_RATE and API_RATE allow (whole requests per second), 1 s.
	retryAfter := strconv.Itoa(int(math.Ceil(1 / perSec)))
	return middleware.RateLimiterWithConfig(middleware.RateLimiterConfig{
		Store: middleware.NewRateLimiterMemoryStoreWithConfig(middleware.RateLimiterMemoryStoreConfig{
			Rate: rate.Limit(perSec), Burst: burst, ExpiresIn: time.Minute}),
		DenyHandler: func(c echo.Context, _ string, _ error) error {
			c.Response().Header().Set("Retry-After", retryAfter)
			return echo.NewHTTPError(http.StatusTooManyRequests, tooManyRequests)
		},
	})
}
