package designer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"unifi/models"
)

// Test Connection (docs/designer.md): one request to the endpoint with the
// connection's outbound authentication, a second only when the first
// failed, each recorded as an HTTP Request; for OAuth2 the token is fetched
// first and the result said.

// TestAttempt is one test request and what it means.
type TestAttempt struct {
	Attempt    int
	Status     int // 0: no answer
	Duration   time.Duration
	FirstBytes string // the start of the response body
	Error      string // no answer: why
	Failed     bool
	Meaning    string
	RequestID  int64 // the HTTP Request record
}

// TestResult is what Test Connection found.
type TestResult struct {
	Connection models.Connection // its secret left sealed
	URL        string
	OAuth      *TokenResult // OAuth2 connections only
	Attempts   []TestAttempt
	OK         bool
}

// TokenResult is the outcome of fetching an OAuth2 token.
type TokenResult struct {
	OK       bool
	Duration time.Duration
	Error    string
}

// testFirstBytes is how much of a response the dialog shows.
const testFirstBytes = 512

// FailedStatus reports whether a test answer means the connection does not
// work: only these statuses do (the address, the method or the credentials
// are wrong). Any other answer shows the remote system was reached and let
// us in; a 5xx is its own trouble, and a 422 is its refusal of our test
// message.
func FailedStatus(status int) bool {
	switch status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
		return true
	}
	return false
}

// Meaning says in plain words what a test answer means.
func Meaning(status int) string {
	switch {
	case status == 0:
		return "No answer: the address could not be reached. Check the endpoint URL, and that the remote system is up and lets this server connect."
	case status >= 200 && status < 300:
		return "The remote system accepted the test request: the address and the credentials work."
	case status >= 300 && status < 400:
		return "The remote system answered with a redirect, which is not followed: check whether the endpoint URL has moved (see the Location header)."
	case status == http.StatusBadRequest:
		return "The remote system refused the request as malformed: the address may not be its message endpoint."
	case status == http.StatusUnauthorized:
		return "The remote system refused the credentials: check the outbound authentication (user, password, token or client secret)."
	case status == http.StatusForbidden:
		return "The credentials were recognised but are not allowed to send here: ask the remote system's admins for access."
	case status == http.StatusNotFound:
		return "There is nothing at this address: check the endpoint URL's path."
	case status == http.StatusMethodNotAllowed:
		return "The address does not accept POST requests: it is probably not the message endpoint."
	case status == http.StatusUnprocessableEntity:
		return "Reached and authenticated: the remote system did not recognise the test message, as expected. The connection works."
	case status >= 400 && status < 500:
		return fmt.Sprintf("Reached: the remote system refused the test message itself (HTTP %d), not the connection.", status)
	default:
		return fmt.Sprintf("Reached, but the remote system had an error on its side (HTTP %d); the connection itself works. Try again later.", status)
	}
}

// TestConnection sends the test request to a connection's endpoint.
func (d *Designer) TestConnection(ctx context.Context, actor models.Actor, id int64) (*TestResult, error) {
	c, err := d.Connection(ctx, id)
	if err != nil {
		return nil, err
	}
	var in models.Integration
	if err := d.store.DB(ctx).Take(&in, c.IntegrationID).Error; err != nil {
		return nil, fmt.Errorf("test connection %d: integration: %w", id, err)
	}
	res := &TestResult{Connection: *c, URL: c.EndpointURL}
	open := *c
	if err := d.store.OpenSecret(&open); err != nil {
		return nil, fmt.Errorf("test connection %d: %w", id, err)
	}
	client := d.testClient(time.Duration(min(in.SyncTimeoutS, 30)) * time.Second)
	var token *oauth2.Token
	if open.AuthType == models.AuthOAuth2 {
		token, res.OAuth = fetchToken(ctx, client, &open)
	}
	for attempt := 1; attempt <= 2; attempt++ {
		a := d.testOnce(ctx, client, &open, token, &in, attempt)
		res.Attempts = append(res.Attempts, a)
		if !a.Failed {
			break
		}
	}
	last := res.Attempts[len(res.Attempts)-1]
	res.OK = !last.Failed && (res.OAuth == nil || res.OAuth.OK)
	return res, nil
}

// fetchToken gets a client-credentials token with the same library the
// engine sends with.
func fetchToken(ctx context.Context, client *http.Client, c *models.Connection) (*oauth2.Token, *TokenResult) {
	cfg := clientcredentials.Config{ClientID: c.OAuthClientID, ClientSecret: c.AuthSecret, TokenURL: c.OAuthTokenURL,
		Scopes: strings.Fields(c.OAuthScopes)}
	start := time.Now()
	tok, err := cfg.Token(context.WithValue(ctx, oauth2.HTTPClient, client))
	r := &TokenResult{Duration: time.Since(start)}
	if err != nil {
		r.Error = "Could not get a token from " + c.OAuthTokenURL + ": " + tokenError(err)
		return nil, r
	}
	r.OK = true
	return tok, r
}

// tokenError words a token failure without echoing a secret.
func tokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		msg := fmt.Sprintf("the token endpoint answered HTTP %d", re.Response.StatusCode)
		if re.ErrorCode != "" {
			msg += " (" + re.ErrorCode + ")"
		}
		return msg + "; check the client ID and secret."
	}
	return plainError(err)
}

// testClient sends without following redirects, and refuses to connect to a
// forbidden address unless allowed (a name that resolved elsewhere when
// saved cannot reach the metadata service now).
func (d *Designer) testClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: DialControl(d.opts.AllowLinkLocal)}
	return &http.Client{Timeout: timeout, Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: http.ProxyFromEnvironment},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// DialControl is a net.Dialer Control that refuses to connect to a
// link-local or cloud metadata address (Forbidden), checked on the address
// actually dialled, after name resolution; nil when allow is set. Test
// Connection and the engine both dial through it.
func DialControl(allow bool) func(network, address string, c syscall.RawConn) error {
	if allow {
		return nil
	}
	return func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip != nil && Forbidden(ip) {
			return fmt.Errorf("%s is a link-local or cloud metadata address, refused (set ALLOW_LINK_LOCAL_ENDPOINTS=true to allow it)", ip)
		}
		return nil
	}
}

// testBody is the test message: the envelope with a name no integration
// has, so a Unifi peer answers 422 ("Message name not recognised") once it
// has accepted the credentials, and stores nothing but the refusal.
const testBody = `{"message":{"name":"ConnectionTest","source_id":"","target_id":""},"data":{},"status":{}}`

// testOnce sends one test request and records it as an HTTP Request.
func (d *Designer) testOnce(ctx context.Context, client *http.Client, c *models.Connection, token *oauth2.Token,
	in *models.Integration, attempt int) TestAttempt {
	a := TestAttempt{Attempt: attempt}
	rec := models.HTTPRequest{IntegrationID: &in.ID, Direction: models.Outbound, State: models.RequestError, Attempt: attempt,
		Method: http.MethodPost, URL: c.EndpointURL, RequestBody: testBody, ResponseAction: "test connection"}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.EndpointURL, strings.NewReader(testBody))
	if err == nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "unifi-test-connection")
		switch c.AuthType {
		case models.AuthBasic:
			req.SetBasicAuth(c.AuthUsername, c.AuthSecret)
		case models.AuthBearer:
			req.Header.Set("Authorization", "Bearer "+c.AuthSecret)
		case models.AuthOAuth2:
			if token != nil {
				token.SetAuthHeader(req)
			}
		}
		rec.RequestHeaders = models.JSON[map[string]string]{V: models.RedactHeaders(req.Header)}
		start := time.Now()
		var resp *http.Response
		resp, err = client.Do(req)
		a.Duration = time.Since(start)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			a.Status = resp.StatusCode
			a.FirstBytes = firstBytes(body)
			rec.ResponseStatus = &a.Status
			rec.ResponseHeaders = models.JSON[map[string]string]{V: models.RedactHeaders(resp.Header)}
			rec.ResponseBody = strings.ToValidUTF8(strings.ReplaceAll(string(body), "\x00", ""), "?")
		}
	}
	ms := int(a.Duration.Milliseconds())
	rec.DurationMS = &ms
	if err != nil {
		a.Error = plainError(err)
		rec.Error = a.Error
	}
	a.Failed = err != nil || FailedStatus(a.Status)
	a.Meaning = Meaning(a.Status)
	if !a.Failed {
		rec.State = models.RequestOK
	}
	if err := d.store.DB(ctx).Create(&rec).Error; err == nil {
		a.RequestID = rec.ID
	}
	return a
}

// firstBytes is the start of a response, as text.
func firstBytes(b []byte) string {
	if len(b) > testFirstBytes {
		b = b[:testFirstBytes]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return string(bytes.ToValidUTF8(bytes.ReplaceAll(b, []byte{0}, nil), []byte("?")))
}

// plainError is a network error without Go's wrapping.
func plainError(err error) string {
	var ne *net.OpError
	if errors.As(err, &ne) && ne.Err != nil {
		return ne.Err.Error()
	}
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err.Error()
	}
	return err.Error()
}
