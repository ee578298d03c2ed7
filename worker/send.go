package worker

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"unifi/models"
	"unifi/models/script"
	"unifi/worker/enginedb"
)

// Limits on what an HTTP Request record keeps.
const (
	maxStoredBody   = 64 << 10 // bytes of a request or response body kept
	maxResponseRead = 1 << 20  // bytes of a response read at most
)

// duplicateAnswer is the inbound refusal (docs/domain.md) a remote gives for a
// message it has already applied. For the sender it means "delivered": the
// earlier attempt got through but its answer was lost.
const duplicateAnswer = "Message has already been processed"

// errAbandoned marks an attempt cut short because this process is stopping
// hard: it is not recorded, the lease expires and another process sends it.
var errAbandoned = errors.New("attempt abandoned: the engine is stopping")

// sender does the HTTP side of one attempt.
type sender struct {
	client  *http.Client
	scripts *script.Engine
	now     func() time.Time
	jitter  func() float64 // in [0, 1)

	mu     sync.Mutex
	tokens map[int64]tokenEntry // OAuth2 token sources by connection id
}

type tokenEntry struct {
	changed time.Time // the connection's updated_at: a changed connection gets a new source
	src     oauth2.TokenSource
}

func newSender(client *http.Client, now func() time.Time, scripts *script.Engine) *sender {
	return &sender{client: client, now: now, scripts: scripts, jitter: rand.Float64, tokens: map[int64]tokenEntry{}}
}

// tokenSource returns the cached client-credentials token source of conn.
func (s *sender) tokenSource(conn *models.Connection) oauth2.TokenSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.tokens[conn.ID]; ok && e.changed.Equal(conn.UpdatedAt) {
		return e.src
	}
	cfg := clientcredentials.Config{ClientID: conn.OAuthClientID, ClientSecret: conn.AuthSecret,
		TokenURL: conn.OAuthTokenURL, Scopes: strings.Fields(conn.OAuthScopes)}
	// The token source outlives any one attempt, so its context carries only the client.
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, s.client)
	src := cfg.TokenSource(ctx)
	s.tokens[conn.ID] = tokenEntry{changed: conn.UpdatedAt, src: src}
	return src
}

// authorize sets the Authorization header of conn's outbound auth.
func (s *sender) authorize(req *http.Request, conn *models.Connection) error {
	switch conn.AuthType {
	case models.AuthBasic:
		req.SetBasicAuth(conn.AuthUsername, conn.AuthSecret)
	case models.AuthBearer:
		req.Header.Set("Authorization", "Bearer "+conn.AuthSecret)
	case models.AuthOAuth2:
		tok, err := s.tokenSource(conn).Token()
		if err != nil {
			return fmt.Errorf("could not get an OAuth2 token from %s: %w", conn.OAuthTokenURL, err)
		}
		tok.SetAuthHeader(req)
	}
	return nil
}

// joinURL appends a message path to a connection endpoint.
func joinURL(endpoint, path string) string {
	if path == "" {
		return endpoint
	}
	return strings.TrimRight(endpoint, "/") + "/" + strings.TrimLeft(path, "/")
}

// envelope builds the wire message of w (docs/domain.md, "The wire protocol"),
// stamped with the time stamp given when the change was made (a resend sends
// the same), or at, now, when it has none (a receipt; a message staged
// before stamps were kept).
func envelope(w *enginedb.Work, at time.Time) models.Envelope {
	if w.TimeStamp != nil && !w.IsReceipt() {
		at = *w.TimeStamp
	}
	env := models.Envelope{
		Message: models.EnvelopeHeader{Name: w.Message.Name, TimeStamp: at.UTC(), SourceReference: w.Ticket,
			SourceID: w.Transaction.MessageIdent},
		Data: w.Data, Stamps: w.Stamps,
	}
	if w.Bond != nil {
		env.Message.TargetReference = w.Bond.ExternalReference
	}
	if w.IsReceipt() {
		if w.Receipt != nil {
			env.Message.Name = w.Receipt.Name
		}
		env.Message.TargetID = w.Transaction.ExternalMessageID
		env.Data, env.Stamps = map[string]any{}, nil
		env.Status = &models.EnvelopeStatus{ProcessState: w.Transaction.ProcessState.String(),
			Error: w.Transaction.ProcessError}
	}
	return env
}

// exchange is one request on the wire and what came back.
type exchange struct {
	record     models.HTTPRequest
	status     int // 0 when no response came
	body       []byte
	headers    http.Header
	retryAfter time.Duration
	err        error // transport error, in plain words
}

// outRequest is what goes on the wire: our envelope by default, or what a
// Stage to Request script built.
type outRequest struct {
	Method  string
	URL     string
	Body    []byte
	Headers map[string]string // set over the defaults (JSON content type and accept)
}

// do sends out with conn's auth within timeout and records it.
func (s *sender) do(ctx context.Context, out outRequest, conn *models.Connection, timeout time.Duration) exchange {
	method := cmp.Or(out.Method, http.MethodPost)
	rec := models.HTTPRequest{Method: method, URL: out.URL, RequestBody: capBody(out.Body),
		ResponseHeaders: models.JSON[map[string]string]{V: map[string]string{}}}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, out.URL, bytes.NewReader(out.Body))
	if err != nil {
		rec.State, rec.Error = models.RequestError, fmt.Sprintf("The endpoint URL is not valid: %v", err)
		rec.RequestHeaders = models.JSON[map[string]string]{V: map[string]string{}}
		return exchange{record: rec, err: errors.New(rec.Error)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "unifi-engine/1")
	for k, v := range out.Headers {
		req.Header.Set(k, v)
	}
	authErr := s.authorize(req, conn)
	rec.RequestHeaders = models.JSON[map[string]string]{V: models.RedactHeaders(req.Header)}
	if authErr != nil {
		rec.State, rec.Error = models.RequestError, authErr.Error()
		return exchange{record: rec, err: authErr}
	}
	start := time.Now()
	resp, err := s.client.Do(req)
	ms := int(time.Since(start).Milliseconds())
	rec.DurationMS = &ms
	if err != nil {
		rec.State = models.RequestError
		switch {
		case ctx.Err() == context.DeadlineExceeded:
			rec.Error = syncTimeoutError(req.URL.Host, timeout)
		default:
			rec.Error = fmt.Sprintf("Could not reach %s: %s", req.URL.Host, plainNetError(err))
		}
		return exchange{record: rec, err: errors.New(rec.Error)}
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseRead))
	status := resp.StatusCode
	rec.ResponseStatus = &status
	rec.ResponseHeaders = models.JSON[map[string]string]{V: models.RedactHeaders(resp.Header)}
	rec.ResponseBody = capBody(respBody)
	if err != nil {
		rec.State = models.RequestError
		rec.Error = fmt.Sprintf("The answer from %s broke off: %s", req.URL.Host, plainNetError(err))
		return exchange{record: rec, status: status, err: errors.New(rec.Error)}
	}
	rec.State = models.RequestOK
	if status < 200 || status > 299 {
		rec.State = models.RequestError
	}
	return exchange{record: rec, status: status, body: respBody, headers: resp.Header,
		retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), s.now())}
}

// attempt sends w once and decides what follows (docs/domain.md, "Transaction states": deliver, retry, fail).
func (s *sender) attempt(ctx context.Context, w *enginedb.Work, actions []models.ResponseAction) (enginedb.AttemptResult, error) {
	res := enginedb.AttemptResult{Work: w}
	msg := w.Message
	path := msg.Path
	if w.IsReceipt() && w.Receipt != nil {
		path = w.Receipt.Path
	}
	out := outRequest{URL: joinURL(w.Connection.EndpointURL, path)}
	if msg := scriptFailure(w); msg != "" {
		return s.scriptFailed(res, out, msg), nil
	}
	if sc := w.Scripts[string(script.StageToRequest)]; sc != nil && !w.IsReceipt() {
		var err error
		if out, err = s.stageToRequest(w, sc, &res); err != nil {
			return s.scriptFailed(res, outRequest{URL: joinURL(w.Connection.EndpointURL, path)}, err.Error()), nil
		}
	} else {
		body, err := json.Marshal(envelope(w, s.now()))
		if err != nil {
			return res, fmt.Errorf("encode envelope of transaction %d: %w", w.Transaction.ID, err)
		}
		out.Body = body
	}
	ex := s.do(ctx, out, w.Connection, w.Integration.SyncTimeout())
	if ctx.Err() != nil { // stopping hard: the remote may or may not have it; another process will resend
		return res, errAbandoned
	}
	res.Request = ex.record
	verdict := responseVerdict{}
	if sc := w.Scripts[string(script.Response)]; sc != nil && !w.IsReceipt() && ex.err == nil {
		var err error
		if verdict, err = s.readResponse(w, sc, ex, &res); err != nil {
			// The remote has the request; the script could not read the answer.
			res.Outcome, res.Error = enginedb.OutcomeFailed, err.Error()
			res.Request.ResponseAction = "error: the Response script failed"
			return res, nil
		}
	}
	switch {
	case verdict.outcome == "error":
		res.Outcome = enginedb.OutcomeFailed
		res.Error = cmp.Or(verdict.error, "The Response script marked the answer as an error.")
		res.Request.ResponseAction = "error: decided by the Response script"
		return res, nil
	case verdict.outcome == "success":
		res.Outcome = enginedb.OutcomeDelivered
		res.ExternalReference = verdict.externalReference
		res.Request.ResponseAction = "delivered: decided by the Response script"
		return res, nil
	case verdict.outcome == "retry":
		ex.err = errors.New(cmp.Or(verdict.error, "The Response script asked for a retry"))
		ex.record.Error = ex.err.Error()
		ex.status = 0 // no response action: the script decided
		res.Request.State = models.RequestError
	case ex.err == nil && ex.status >= 200 && ex.status <= 299:
		res.Outcome = enginedb.OutcomeDelivered
		if !w.IsReceipt() {
			res.ExternalReference = cmp.Or(verdict.externalReference, externalReference(ex.body))
			if msg.ResponseMessageID != nil {
				res.ResponseData = answerData(ex.body)
			}
		}
		return res, nil
	case ex.err == nil && isDuplicateAnswer(ex.body):
		res.Outcome = enginedb.OutcomeDelivered
		res.Request.ResponseAction = "delivered: the remote already has this message"
		return res, nil
	case ex.err == nil && w.IsReceipt() && receiptNoLongerWanted(ex.body):
		// The remote finished the transaction another way (docs/inbound.md,
		// "After a crash: duplicates and owed receipts"): the receipt is done.
		res.Outcome = enginedb.OutcomeDelivered
		res.Request.ResponseAction = "done: the remote has finished this transaction already"
		return res, nil
	}
	retry := true
	var action *models.ResponseAction
	if ex.status != 0 {
		action = enginedb.MatchResponseAction(actions, w.Integration.ID, msg.ID, ex.status)
	}
	if action != nil {
		retry = action.Retry
		res.SetStatus = action.SetIntegrationStatus
		res.Request.ResponseAction = action.Description
		if res.Request.ResponseAction == "" {
			res.Request.ResponseAction = fmt.Sprintf("%d: retry %t", action.StatusCode, action.Retry)
		}
	}
	if action != nil && !retry && action.SetTransactionState != nil && *action.SetTransactionState == models.Complete {
		// The integration's admin says this answer means delivered (e.g. a
		// 409 "exists already"): the transaction completes, waiting for no
		// receipt, and the bond's queue moves on.
		res.Outcome, res.Complete = enginedb.OutcomeDelivered, true
		applyActionEffects(&res, action)
		return res, nil
	}
	what := ex.record.Error
	if ex.status != 0 {
		what = fmt.Sprintf("The remote system answered %d %s%s", ex.status, http.StatusText(ex.status), snippet(ex.body))
	}
	limit := w.Integration.RetryLimit
	switch {
	case retry && w.Attempt() <= limit:
		res.Outcome = enginedb.OutcomeRetry
		res.RetryDelay = s.receiptDelayCap(w, s.retryDelay(w.Integration.RetryDelay(), w.Attempt(), ex.retryAfter))
		res.Error = fmt.Sprintf("%s. Retry %d of %d is due in %s.", what, w.Attempt(), limit,
			enginedb.RoundDelay(res.RetryDelay))
		if res.Request.ResponseAction == "" {
			res.Request.ResponseAction = fmt.Sprintf("retry %d of %d", w.Attempt(), limit)
		}
	case retry && w.IsReceipt() && receiptOwed(ex.status, ex.body):
		// A receipt is owed until the remote answers it: no retry limit
		// (docs/inbound.md, "After a crash: duplicates and owed receipts").
		res.Outcome = enginedb.OutcomeRetry
		res.RetryDelay = s.receiptDelayCap(w, s.retryDelay(w.Integration.RetryDelay(), w.Attempt(), ex.retryAfter))
		res.Error = fmt.Sprintf("%s. The receipt is owed, so it is sent until the remote answers it: attempt %d; the next is due in %s.",
			what, w.Attempt()+1, enginedb.RoundDelay(res.RetryDelay))
		if res.Request.ResponseAction == "" {
			res.Request.ResponseAction = fmt.Sprintf("owed receipt: attempt %d", w.Attempt()+1)
		}
	case retry:
		res.Outcome = enginedb.OutcomeFailed
		res.Error = fmt.Sprintf("%s. Gave up after %d attempts (the retry limit is %d).", what, w.Attempt(), limit)
	default:
		res.Outcome = enginedb.OutcomeFailed
		res.Error = fmt.Sprintf("%s. Not retried: %s.", what, strings.TrimSuffix(res.Request.ResponseAction, "."))
		if ex.status == http.StatusUnauthorized {
			res.Error = fmt.Sprintf("%s. The remote system refused our credentials; not retried, because credentials do not fix themselves. Check the connection's authentication.", what)
		}
	}
	if action != nil && res.Outcome == enginedb.OutcomeFailed {
		applyActionEffects(&res, action)
	}
	return res, nil
}

// applyActionEffects carries what a response action sets besides retrying
// into the result, for an attempt that ends the transaction's sending
// (docs/designer-messages.md, "Response actions"): the process state, the
// note for the bond's history, and pausing the integration. A retried
// answer sets none of them: the transaction is not done yet.
func applyActionEffects(res *enginedb.AttemptResult, a *models.ResponseAction) {
	res.ProcessState = a.SetProcessState
	if a.BondNote != "" {
		res.BondNote = fmt.Sprintf("%s: %s (response action for %d)", res.Work.Transaction.MessageIdent, a.BondNote, a.StatusCode)
	}
	if a.SetIntegrationState != nil && *a.SetIntegrationState == models.IntegrationPaused {
		res.Pause = true
		res.Request.ResponseAction += "; the integration is paused"
	}
}

// retryDelay is the wait before retry n: the base delay doubled for each
// earlier retry (capped at an hour), ±20% jitter, and never less than what
// the remote asked for in Retry-After.
func (s *sender) retryDelay(base time.Duration, attempt int, retryAfter time.Duration) time.Duration {
	d := float64(base) * math.Pow(2, float64(attempt-1))
	d = math.Min(d, float64(time.Hour))
	d *= 0.8 + 0.4*s.jitter()
	delay := time.Duration(d)
	if retryAfter > delay {
		delay = retryAfter
	}
	return delay
}

// receiptDelayCap caps the wait before a receipt's next attempt at half the
// integration's async timeout, so that a sender waiting that long for the
// receipt (configured alike) sees at least one attempt while it waits.
func (s *sender) receiptDelayCap(w *enginedb.Work, d time.Duration) time.Duration {
	if limit := w.Integration.AsyncTimeout() / 2; w.IsReceipt() && limit > 0 && d > limit {
		return limit
	}
	return d
}

// receiptOwed reports whether a failed receipt is sent again beyond the retry
// limit: when the remote did not answer, failed itself (5xx), or asked us to
// come back (408, 409 "still being sent", 425, 429). Any other refusal will not
// mend by itself and keeps the limit, and so does "processed already" without
// a detail naming the state (a remote that is not this product: we cannot
// tell whether it will ever take the receipt).
func receiptOwed(status int, body []byte) bool {
	var e struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if status == http.StatusConflict && json.Unmarshal(body, &e) == nil && strings.HasPrefix(e.Error, processedAlready) &&
		e.Detail == "" {
		return false
	}
	switch {
	case status == 0, status >= 500:
		return true
	}
	switch status {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return false
}

// processedAlready is the inbound refusal (docs/domain.md) of a receipt for a
// transaction that is not awaiting one; its detail names the state.
const processedAlready = "Error processing request: Transaction Error: Request rejected; the transaction has been processed already"

// receiptNoLongerWanted reports whether the answer to a receipt says the
// remote has finished the transaction (Complete or Ignored) without it.
func receiptNoLongerWanted(body []byte) bool {
	var e struct {
		Error  string `json:"error"`
		Detail string `json:"detail"`
	}
	if json.Unmarshal(body, &e) != nil || !strings.HasPrefix(e.Error, processedAlready) {
		return false
	}
	return strings.HasSuffix(e.Detail, " is "+models.Complete.String()) || strings.HasSuffix(e.Detail, " is "+models.Ignored.String())
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// externalReference reads message.source_reference from a synchronous
// envelope answer: the remote ticket's number.
func externalReference(body []byte) string {
	var env struct {
		Message struct {
			SourceReference string `json:"source_reference"`
		} `json:"message"`
	}
	if json.Unmarshal(body, &env) != nil {
		return ""
	}
	return strings.TrimSpace(env.Message.SourceReference)
}

// answerData reads the data object of a synchronous envelope answer (the
// remote ticket through its response message's fields); nil when the answer
// has none.
func answerData(body []byte) map[string]any {
	var env struct {
		Data map[string]any `json:"data"`
	}
	if json.Unmarshal(body, &env) != nil {
		return nil
	}
	return env.Data
}

func isDuplicateAnswer(body []byte) bool {
	var e struct {
		Error string `json:"error"`
	}
	return json.Unmarshal(body, &e) == nil && strings.HasPrefix(e.Error, duplicateAnswer)
}

func snippet(body []byte) string {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return ""
	}
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		s = e.Error
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + s
}

func plainNetError(err error) string {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Err.Error()
	}
	return err.Error()
}

func capBody(b []byte) string {
	if len(b) > maxStoredBody {
		return string(b[:maxStoredBody]) + "\n[… cut at 64 KiB]"
	}
	return string(b)
}

// replay re-sends a replayed HTTP Request with the connection's current
// credentials (the stored headers are redacted).
func (s *sender) replay(ctx context.Context, req *models.HTTPRequest, conn *models.Connection, in *models.Integration) models.HTTPRequest {
	ex := s.do(ctx, outRequest{Method: req.Method, URL: req.URL, Body: []byte(req.RequestBody)}, conn, in.SyncTimeout())
	return ex.record
}

// syncTimeoutError is a stored attempt's error when the remote at host did
// not answer within the sync timeout.
func syncTimeoutError(host string, timeout time.Duration) string {
	return fmt.Sprintf("No answer from %s within the sync timeout of %s.", host, timeout)
}

// IsSyncTimeoutError reports whether a stored attempt's error says the
// remote did not answer within the sync timeout (syncTimeoutError): the
// fault tests tell such an attempt's resend from a kill's duplicate.
func IsSyncTimeoutError(stored string) bool {
	return strings.HasPrefix(stored, "No answer from ") && strings.Contains(stored, " within the sync timeout of ")
}
