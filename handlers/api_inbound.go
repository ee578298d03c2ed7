package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
)

// InboundMessage is POST /api/v1/integrations/:name/messages, where a remote
// system sends us an envelope (docs/domain.md, "The wire protocol"). It reads the body and the
// credentials and calls one Store operation. A refused request is recorded on
// its own after the operation rolled back; errorHandler writes the answer.
func (h *Handlers) InboundMessage(c echo.Context) error {
	return h.receiveInbound(c, h.Inbound.ReceiveInbound)
}

// InboundRaw is POST /api/v1/integrations/:name/raw, where a remote system
// sends a request in its own shape (a ServiceNow or Jira webhook): the
// integration's inbound message scripts identify and translate it
// (docs/scripting.md), then it is received as an envelope is.
func (h *Handlers) InboundRaw(c echo.Context) error {
	if h.Webhook == nil {
		return models.ErrNotFound
	}
	return h.receiveInbound(c, h.Webhook.ReceiveRaw)
}

// receiveInbound reads an inbound request, hands it to receive, and answers.
func (h *Handlers) receiveInbound(c echo.Context, receive func(context.Context, inbound.Request) (*inbound.Result, error)) error {
	req := c.Request()
	ctx := req.Context()
	name := c.Param("name")
	meta := inbound.RequestMeta{Method: req.Method, URL: req.URL.RequestURI(), Header: req.Header.Clone(),
		RemoteAddr: c.RealIP(), Started: time.Now()}
	raw, err := readInboundBody(c.Response(), req, h.Config.InboundMaxBytes)
	var res *inbound.Result
	if err == nil {
		in := inbound.Request{Integration: name, JSON: isJSON(req), Body: raw, Meta: meta}
		if scheme, tok, ok := strings.Cut(req.Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
			in.Bearer = strings.TrimSpace(tok)
		}
		in.BasicUser, in.BasicPassword, in.HasBasic = req.BasicAuth()
		res, err = receive(ctx, in)
	}
	if err != nil {
		var r *inbound.Refusal
		if errors.As(err, &r) {
			switch r.Kind {
			case inbound.RefusalUnauthenticated:
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="unifi", charset="UTF-8", Bearer`)
			case inbound.RefusalInFlight:
				c.Response().Header().Set("Retry-After", "1")
			case inbound.RefusalThrottled:
				te := account.ThrottledError{RetryAfter: r.RetryAfter}
				c.Response().Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
			}
		}
		status, body := apiErrorBody(c, err)
		if rerr := h.Inbound.RecordInboundRefusal(ctx, name, meta, raw, status, body); rerr != nil {
			h.Logger.ErrorContext(ctx, "record refused inbound request", slog.String("error", rerr.Error()),
				slog.String("integration", name))
		}
		return err
	}
	if res.Receipt || (res.Transaction != nil && res.Transaction.State == models.SendingReceipt) {
		h.notify(ctx)
	}
	return c.JSONBlob(http.StatusOK, res.Body)
}

// inboundDrainMax is how much of a too-large body is read and dropped before
// the 413 is answered.
const inboundDrainMax = 64 << 20

// readInboundBody reads at most limit bytes; a longer body is refused (and
// what was read is kept for the record).
func readInboundBody(w http.ResponseWriter, req *http.Request, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = 1 << 20
	}
	raw, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		return raw, &inbound.Refusal{Kind: inbound.RefusalMalformed, Reason: "The request body could not be read"}
	}
	if int64(len(raw)) > limit {
		// Read (and drop) what the client is still sending, up to a bound, so a
		// client that uploads its whole body before it reads the answer gets
		// the 413 instead of a connection reset; a body larger still ends the
		// connection after the answer.
		if n, _ := io.Copy(io.Discard, io.LimitReader(req.Body, inboundDrainMax)); n >= inboundDrainMax {
			w.Header().Set("Connection", "close")
		}
		return raw, &inbound.Refusal{Kind: inbound.RefusalTooLarge, Reason: "The request body is too large",
			Detail: "at most " + byteCount(limit) + " are accepted"}
	}
	return raw, nil
}

// isJSON reports whether the body was sent as application/json.
func isJSON(req *http.Request) bool {
	mt, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	return err == nil && mt == echo.MIMEApplicationJSON
}

func byteCount(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}
