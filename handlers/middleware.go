package handlers

import (
	"log/slog"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
)

// securityHeaders sets the headers every response carries: a CSP without
// inline script, no framing, no sniffing, a strict referrer policy.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		hd := c.Response().Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "+
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "same-origin")
		hd.Set("Cross-Origin-Opener-Policy", "same-origin")
		return next(c)
	}
}

// logRequests writes one line per request: 4xx at Info, 5xx at Error.
func (h *Handlers) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err) // writes the response, so the status below is the real one
		}
		status := c.Response().Status
		level := slog.LevelDebug
		switch {
		case status >= 500:
			level = slog.LevelError
		case status >= 400:
			level = slog.LevelInfo
		case c.Request().Method != "GET":
			level = slog.LevelInfo
		}
		if !h.Logger.Enabled(c.Request().Context(), level) {
			return nil
		}
		attrs := []any{
			slog.String("method", c.Request().Method),
			slog.String("path", c.Request().URL.Path),
			slog.Int("status", status),
			slog.Int64("duration_ms", time.Since(start).Milliseconds()),
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("remote", c.RealIP()),
		}
		if u := page.CurrentUser(c); u != nil {
			attrs = append(attrs, slog.String("user", u.Name))
		}
		h.Logger.Log(c.Request().Context(), level, "request", slog.Group("request", attrs...))
		return nil
	}
}

// refuseUnstorableText answers 422 when a path parameter, a query value or a
// UI form value holds a NUL byte or invalid UTF-8, which PostgreSQL cannot
// store or compare: refused at the boundary in plain words, instead of a 500
// from deep inside a query. (JSON bodies are checked by the operations.)
func refuseUnstorableText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		v := &models.ValidationError{}
		check := func(name, value string) {
			if msg := models.TextProblem(value); msg != "" {
				if models.TextProblem(name) != "" {
					name = "a field"
				}
				v.Add(name, msg)
			}
		}
		for i, name := range c.ParamNames() {
			if i < len(c.ParamValues()) {
				check(name, c.ParamValues()[i])
			}
		}
		for name, values := range c.QueryParams() {
			check(name, name)
			for _, value := range values {
				check(name, value)
			}
		}
		if ct := c.Request().Header.Get(echo.HeaderContentType); !strings.HasPrefix(c.Request().URL.Path, "/api/") &&
			(strings.HasPrefix(ct, echo.MIMEApplicationForm) || strings.HasPrefix(ct, echo.MIMEMultipartForm)) {
			if form, err := c.FormParams(); err == nil {
				for name, values := range form {
					check(name, name)
					for _, value := range values {
						check(name, value)
					}
				}
			}
		}
		if err := v.Err(); err != nil {
			return err
		}
		return next(c)
	}
}
