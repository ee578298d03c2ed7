package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/designer"
	"unifi/models/inbound"
	"unifi/web/pages/errorpage"
)

// httpError maps an error to a status and a message a person can act on.
// Anything unexpected is a 500 whose details go only to the log.
func httpError(err error) (int, string, map[string]string) {
	var he *echo.HTTPError
	var ve *models.ValidationError
	var fe *models.ForbiddenError
	var ce *models.ConflictError
	var ir *inbound.Refusal
	var se *designer.StaleVersionError
	switch {
	case errors.As(err, &se):
		return http.StatusConflict, se.Error(), nil
	case errors.As(err, &ir):
		return refusalStatus[ir.Kind], ir.Reason, nil
	case errors.As(err, &he):
		msg := fmt.Sprint(he.Message)
		if he.Code == http.StatusNotFound && msg == "Not Found" {
			msg = "There is no page at this address."
		}
		if he.Code == http.StatusMethodNotAllowed {
			msg = "This address does not accept that kind of request."
		}
		if he.Code == http.StatusRequestEntityTooLarge {
			msg = "The request is too large."
		}
		return he.Code, msg, nil
	case errors.As(err, &ve):
		return http.StatusUnprocessableEntity, "Some values are not valid: " + joinFields(ve.Fields), ve.Fields
	case errors.As(err, &fe):
		return http.StatusForbidden, fe.Reason, nil
	case errors.As(err, &ce):
		return http.StatusConflict, ce.Reason, nil
	case errors.Is(err, models.ErrNotFound):
		return http.StatusNotFound, "That record does not exist (it may have been deleted).", nil
	}
	return http.StatusInternalServerError, "", nil
}

func joinFields(m map[string]string) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+": "+m[k])
	}
	return strings.Join(parts, "; ")
}

// errorHandler is the only place errors become responses: JSON for the API,
// a fragment for htmx, the error page otherwise.
func (h *Handlers) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, msg, _ := httpError(err)
	reqID := c.Response().Header().Get(echo.HeaderXRequestID)
	if status == http.StatusInternalServerError {
		h.Logger.ErrorContext(c.Request().Context(), "request failed", slog.String("error", err.Error()),
			slog.String("path", c.Request().URL.Path), slog.String("request_id", reqID))
		msg = "Something went wrong on our side. It has been logged with reference " + reqID + "."
	}
	var werr error
	var stale *designer.StaleVersionError
	switch {
	case c.Request().Method == http.MethodHead:
		werr = c.NoContent(status)
	case strings.HasPrefix(c.Request().URL.Path, "/api/"):
		_, body := apiErrorBody(c, err)
		werr = c.JSONBlob(status, body)
	case c.Request().Header.Get("HX-Request") != "":
		c.Response().Header().Set("HX-Retarget", "#alerts")
		c.Response().Header().Set("HX-Reswap", "innerHTML")
		werr = page.Render(c, status, errorpage.Alert(msg))
	case errors.As(err, &stale):
		werr = page.Render(c, status, errorpage.Stale(page.Props(c, "Changed meanwhile", ""), msg, stale.Changes, backTo(c, err)))
	default:
		werr = page.Render(c, status, errorpage.Page(page.Props(c, http.StatusText(status), ""), status, msg))
	}
	if werr != nil {
		h.Logger.ErrorContext(c.Request().Context(), "write error response", slog.String("error", werr.Error()))
	}
}

// backTo is the page that shows the refused form's record again: the one the
// handler named (page.Reopen), else the page the form came from (its
// Referer, when it is this server's), else the form's own address.
func backTo(c echo.Context, err error) string {
	var re *page.ReopenError
	if errors.As(err, &re) {
		return re.URL
	}
	if u, err := url.Parse(c.Request().Referer()); err == nil && u.Host == c.Request().Host && strings.HasPrefix(u.Path, "/") {
		return u.RequestURI()
	}
	return c.Request().URL.Path
}

// methodNotAllowed answers 405 (with an Allow header) when the request's path
// is a route for other methods only. The groups' catch-all routes would
// otherwise answer 404 (or send an anonymous visitor to the login page)
// before Echo can tell that the path exists for another method. Register it
// after every route; errorHandler words the answer.
func methodNotAllowed(e *echo.Echo) echo.MiddlewareFunc {
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		routes[r.Method+" "+r.Path] = true
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			method := c.Request().Method
			if routes[method+" "+c.Path()] || method == http.MethodHead || method == http.MethodOptions {
				return next(c)
			}
			path := echo.GetPath(c.Request())
			var allow []string
			for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
				if m == method {
					continue
				}
				probe := e.NewContext(c.Request(), nil)
				e.Router().Find(m, path, probe)
				if routes[m+" "+probe.Path()] {
					allow = append(allow, m)
				}
			}
			if len(allow) == 0 {
				return next(c)
			}
			c.Response().Header().Set(echo.HeaderAllow, strings.Join(allow, ", "))
			return echo.ErrMethodNotAllowed
		}
	}
}

// refusalStatus is the HTTP status of each inbound refusal (docs/inbound.md).
var refusalStatus = map[inbound.RefusalKind]int{
	inbound.RefusalMalformed:          http.StatusBadRequest,
	inbound.RefusalMediaType:          http.StatusUnsupportedMediaType,
	inbound.RefusalTooLarge:           http.StatusRequestEntityTooLarge,
	inbound.RefusalUnauthenticated:    http.StatusUnauthorized,
	inbound.RefusalThrottled:          http.StatusTooManyRequests,
	inbound.RefusalForbidden:          http.StatusForbidden,
	inbound.RefusalUnavailable:        http.StatusForbidden,
	inbound.RefusalUnknownIntegration: http.StatusNotFound,
	inbound.RefusalNoName:             http.StatusBadRequest,
	inbound.RefusalUnknownName:        http.StatusUnprocessableEntity,
	inbound.RefusalNoTargetID:         http.StatusUnprocessableEntity,
	inbound.RefusalNoInitiating:       http.StatusNotFound,
	inbound.RefusalProcessedAlready:   http.StatusConflict,
	inbound.RefusalInFlight:           http.StatusConflict,
	inbound.RefusalDuplicate:          http.StatusConflict,
	inbound.RefusalNotValidForBond:    http.StatusConflict,
	inbound.RefusalNoBond:             http.StatusNotFound,
	inbound.RefusalCreateRejected:     http.StatusUnprocessableEntity,
	inbound.RefusalScript:             http.StatusUnprocessableEntity,
}

// apiErrorBody is the JSON answer of an /api/ request that failed:
// {"error": "..."} plus per-field problems, and for an inbound refusal its
// detail and, for a duplicate, the message header we first answered with.
func apiErrorBody(c echo.Context, err error) (int, []byte) {
	status, msg, fields := httpError(err)
	if status == http.StatusInternalServerError {
		msg = "Something went wrong on our side. It has been logged with reference " +
			c.Response().Header().Get(echo.HeaderXRequestID) + "."
	}
	body := map[string]any{"error": msg}
	if fields != nil {
		body["fields"] = fields
	}
	var ir *inbound.Refusal
	if errors.As(err, &ir) {
		if ir.Detail != "" {
			body["detail"] = ir.Detail
		}
		if ir.Original != nil {
			body["message"] = ir.Original
		}
	}
	b, jerr := json.Marshal(body)
	if jerr != nil {
		b = []byte(`{"error":"Something went wrong on our side."}`)
	}
	return status, b
}
