package poll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"unifi/models"
	"unifi/models/pg"
)

const (
	maxResponseBytes = 32 << 20  // an answer larger than this fails the run
	maxStoredBody    = 256 << 10 // what an HTTP Request record keeps of a body
	max429Attempts   = 6         // a request answered 429 is sent again at most this often
)

// fetch sends one poll request to the active connection, honouring 429 with
// Retry-After (waiting it out, the lease renewed meanwhile), and records
// every attempt as an HTTP Request of the poll request pr.
func (r *run) fetch(ctx context.Context, pr int64, req *Request) (*Response, error) {
	for attempt := 1; ; attempt++ {
		resp, wait, err := r.fetchOnce(ctx, pr, req, attempt)
		if err != nil || wait < 0 {
			return resp, err
		}
		if attempt >= max429Attempts {
			return nil, fmt.Errorf("the remote system answered 429 (too many requests) %d times in a row", attempt)
		}
		if wait > r.rn.maxRetryAfter {
			return nil, fmt.Errorf("the remote system answered 429 and asked to wait %s, longer than %s: the next run tries again",
				wait, r.rn.maxRetryAfter)
		}
		if err := r.renewLease(ctx); err != nil {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// fetchOnce makes one attempt; wait >= 0 asks for another after that long (429).
func (r *run) fetchOnce(ctx context.Context, pr int64, req *Request, attempt int) (*Response, time.Duration, error) {
	hreq, err := r.httpRequest(ctx, req)
	if err != nil {
		return nil, -1, err
	}
	reqBody := req.Text
	if reqBody == "" && len(req.Body) > 0 {
		reqBody = string(req.Body)
	}
	started := time.Now()
	hresp, err := r.rn.client.Do(hreq)
	rec := httpRecord{method: hreq.Method, url: hreq.URL.String(), headers: models.RedactHeaders(hreq.Header),
		body: reqBody, attempt: attempt}
	if err != nil {
		rec.err = err.Error()
		rec.dur = time.Since(started)
		r.record(ctx, pr, rec)
		return nil, -1, fmt.Errorf("%s %s: %w", hreq.Method, redactURL(hreq.URL), err)
	}
	defer hresp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(hresp.Body, maxResponseBytes+1))
	rec.dur, rec.status, rec.respHeaders, rec.respBody = time.Since(started), hresp.StatusCode, models.RedactHeaders(hresp.Header), string(raw)
	if err == nil && len(raw) > maxResponseBytes {
		err = fmt.Errorf("the answer is larger than %d MB", maxResponseBytes>>20)
	}
	if err != nil {
		rec.err = err.Error()
		r.record(ctx, pr, rec)
		return nil, -1, fmt.Errorf("%s %s: read answer: %w", hreq.Method, redactURL(hreq.URL), err)
	}
	if hresp.StatusCode == http.StatusTooManyRequests {
		rec.err = "429 Too Many Requests: waiting " + hresp.Header.Get("Retry-After") + " s as Retry-After asks"
		r.record(ctx, pr, rec)
		return nil, retryAfter(hresp.Header.Get("Retry-After"), time.Now()), nil
	}
	if hresp.StatusCode < 200 || hresp.StatusCode > 299 {
		rec.err = fmt.Sprintf("HTTP %d", hresp.StatusCode)
		r.record(ctx, pr, rec)
		return nil, -1, fmt.Errorf("%s %s: the remote system answered HTTP %d: %s", hreq.Method, redactURL(hreq.URL),
			hresp.StatusCode, snippet(raw))
	}
	r.record(ctx, pr, rec)
	out := &Response{Status: hresp.StatusCode, Headers: hresp.Header, Text: string(raw), request: hreq.URL.Redacted()}
	if len(bytes.TrimSpace(raw)) > 0 && json.Unmarshal(raw, &out.Body) != nil {
		out.Body = nil // not JSON: the script reads Text
	}
	return out, -1, nil
}

// httpRequest builds the HTTP request of req on the active connection.
func (r *run) httpRequest(ctx context.Context, req *Request) (*http.Request, error) {
	method := strings.ToUpper(cmpOr(req.Method, http.MethodGet))
	u, err := url.Parse(joinURL(r.conn.EndpointURL, req.Path))
	if err != nil {
		return nil, fmt.Errorf("the Request script's path %q does not make a URL: %w", req.Path, err)
	}
	// The connection's credentials go only to the connection's own host: a
	// full URL (a "next" link) elsewhere is refused.
	if base, berr := url.Parse(r.conn.EndpointURL); berr != nil || base.Scheme != u.Scheme || base.Host != u.Host {
		return nil, fmt.Errorf("the Request script asked for %s, which is not on the connection's endpoint %s", u.Redacted(),
			r.conn.EndpointURL)
	}
	if len(req.Query) > 0 {
		q := u.Query()
		for k, v := range req.Query {
			q.Set(k, v)
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	switch {
	case req.Text != "":
		body = strings.NewReader(req.Text)
	case len(req.Body) > 0 && string(req.Body) != "null":
		body = bytes.NewReader(req.Body)
	}
	hreq, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("the Request script's request: %w", err)
	}
	hreq.Header.Set("Accept", "application/json")
	if body != nil && req.Text == "" {
		hreq.Header.Set("Content-Type", "application/json")
	}
	for k, v := range req.Headers {
		hreq.Header.Set(k, v)
	}
	if err := r.authorize(ctx, hreq); err != nil {
		return nil, err
	}
	return hreq, nil
}

// authorize sets the connection's outbound authentication.
func (r *run) authorize(ctx context.Context, req *http.Request) error {
	c := r.conn
	switch c.AuthType {
	case models.AuthBasic:
		req.SetBasicAuth(c.AuthUsername, c.AuthSecret)
	case models.AuthBearer:
		req.Header.Set("Authorization", "Bearer "+c.AuthSecret)
	case models.AuthOAuth2:
		if r.tokens == nil {
			cfg := clientcredentials.Config{ClientID: c.OAuthClientID, ClientSecret: c.AuthSecret, TokenURL: c.OAuthTokenURL,
				Scopes: strings.Fields(c.OAuthScopes)}
			r.tokens = cfg.TokenSource(context.WithValue(context.WithoutCancel(ctx), oauth2.HTTPClient, r.rn.client))
		}
		tok, err := r.tokens.Token()
		if err != nil {
			return fmt.Errorf("could not get an OAuth2 token from %s: %w", c.OAuthTokenURL, err)
		}
		tok.SetAuthHeader(req)
	}
	return nil
}

// httpRecord is one attempt, as stored.
type httpRecord struct {
	method, url, body    string
	headers, respHeaders map[string]string
	status, attempt      int
	respBody, err        string
	dur                  time.Duration
}

// record stores an attempt. A failure to store it is logged, not fatal: the
// poll's own outcome matters more than its record.
func (r *run) record(ctx context.Context, pr int64, h httpRecord) {
	state := models.RequestOK
	if h.err != "" {
		state = models.RequestError
	}
	var status *int
	if h.status != 0 {
		status = &h.status
	}
	reqH, _ := json.Marshal(h.headers)
	respH, _ := json.Marshal(cmpOrMap(h.respHeaders))
	dur := int(h.dur.Milliseconds())
	if _, err := pg.Exec(r.rn.db.WithContext(context.WithoutCancel(ctx)), sqlRecordHTTP, r.integration.ID, pr, state, h.attempt,
		h.method, h.url, string(reqH), clip(h.body), status, string(respH), clip(h.respBody), dur, clip(h.err)); err != nil {
		r.rn.logger.ErrorContext(ctx, "record poll HTTP request", "poll_request_id", pr, "error", err)
	}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date; 1 s when
// absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return time.Second
}

func joinURL(endpoint, path string) string {
	if path == "" {
		return endpoint
	}
	if strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://") {
		return path // a full URL (a "next" link the remote gave)
	}
	return strings.TrimRight(endpoint, "/") + "/" + strings.TrimLeft(path, "/")
}

func redactURL(u *url.URL) string { return u.Redacted() }

func snippet(b []byte) string {
	s := strings.ToValidUTF8(string(b), "?")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

func clip(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", ""), "?")
	if len(s) > maxStoredBody {
		s = s[:maxStoredBody]
	}
	return s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmpOrMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

var errLeaseLost = errors.New("this server process lost the poller's lease (another process runs it now); nothing of the page was kept")
