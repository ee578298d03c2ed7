// Package page is what every page handler shares, whichever area it serves:
// the request's user and browser session (its CSRF token and flashes), the
// page shell's properties, buffered rendering, the record id of the path and
// the actor the audit records. handlers and handlers/designer both build on it.
package page

import (
	"bytes"
	"net/http"
	"strconv"
	"sync"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/web/layout"
)

// renderBuffers are Render's buffers, reused: a list page is some 60 KB,
// which a fresh buffer reached by doubling a dozen times.
var renderBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// Render writes a templ component with status, buffered so that a render
// error can still become a clean 500.
func Render(c echo.Context, status int, comp templ.Component) error {
	buf := renderBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 { // an unusually large page is not kept
			buf.Reset()
			renderBuffers.Put(buf)
		}
	}()
	if err := comp.Render(c.Request().Context(), buf); err != nil {
		return err
	}
	// With its length known, net/http sends the page as headers and body in
	// one write instead of chunks (several writes for a page of tens of KB).
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(buf.Len()))
	return c.HTMLBlob(status, buf.Bytes())
}

// Props builds the page shell's properties, taking pending flashes.
func Props(c echo.Context, title, nav string) layout.PageProps {
	p := layout.PageProps{Title: title, Nav: nav, User: CurrentUser(c), CSRF: CSRFToken(c)}
	if s := Session(c); s != nil {
		if fs := s.Flashes(); len(fs) > 0 {
			for _, f := range fs {
				if fl, ok := f.(layout.Flash); ok {
					p.Flashes = append(p.Flashes, fl)
				}
			}
			_ = s.Save(c.Request(), c.Response())
		}
	}
	return p
}

// Flash stores a message for the next page.
func Flash(c echo.Context, kind layout.FlashKind, text string) error {
	s := Session(c)
	s.AddFlash(layout.Flash{Kind: kind, Text: text})
	return s.Save(c.Request(), c.Response())
}

// FlashRedirect ends a successful change: a message for the next page,
// then 303 to it.
func FlashRedirect(c echo.Context, kind layout.FlashKind, msg, to string) error {
	if err := Flash(c, kind, msg); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, to)
}

// PathID reads a positive integer path parameter.
func PathID(c echo.Context, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Param(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, echo.NewHTTPError(http.StatusNotFound, "There is no record with that number.")
	}
	return id, nil
}

// Actor is who makes the request and from where, as the audit records it.
func Actor(c echo.Context) models.Actor {
	return models.ActorOf(CurrentUser(c), c.RealIP())
}

// ReopenError carries the page that shows a record again, for the "open it
// again" link of an error page (the 409 of a stale edit), when the form
// posts to an address that has no page of its own (POST only).
type ReopenError struct {
	Err error
	URL string // a GET page of this server
}

func (e *ReopenError) Error() string { return e.Err.Error() }

// Unwrap lets errors.As find the error it carries (the stale edit, ...).
func (e *ReopenError) Unwrap() error { return e.Err }

// Reopen wraps err (nil stays nil) with the page that shows its record again.
func Reopen(err error, url string) error {
	if err == nil {
		return nil
	}
	return &ReopenError{Err: err, URL: url}
}
