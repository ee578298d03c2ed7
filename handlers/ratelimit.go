package handlers

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"
)

// limiter keeps a token bucket per client address. It guards one server
// process against floods; login throttling across processes lives in the
// database (models.CheckLoginThrottle).
type limiter struct {
	mu      sync.Mutex
	perSec  rate.Limit
	burst   int
	clients map[string]*client
	swept   time.Time
}

type client struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(perSec float64, burst int) *limiter {
	return &limiter{perSec: rate.Limit(perSec), burst: burst, clients: map[string]*client{}, swept: time.Now()}
}

func (l *limiter) allow(key string) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if now.Sub(l.swept) > time.Minute { // forget clients idle for a minute
		for k, c := range l.clients {
			if now.Sub(c.seen) > time.Minute {
				delete(l.clients, k)
			}
		}
		l.swept = now
	}
	c, ok := l.clients[key]
	if !ok {
		c = &client{lim: rate.NewLimiter(l.perSec, l.burst)}
		l.clients[key] = c
	}
	c.seen = now
	r := c.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// rateLimit answers 429 with Retry-After when a client exceeds its rate.
// A rate of 0 turns the limit off.
func rateLimit(perSec float64, burst int) echo.MiddlewareFunc {
	if perSec <= 0 {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	l := newLimiter(perSec, burst)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			ok, wait := l.allow(c.RealIP())
			if !ok {
				c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
				return echo.NewHTTPError(http.StatusTooManyRequests, "Too many requests; slow down and try again shortly.")
			}
			return next(c)
		}
	}
}
