package worker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"unifi/models"
	"unifi/models/script"
	"unifi/worker/enginedb"
)

// The outbound message scripts around a send (docs/scripting.md): Stage to
// Request builds the HTTP request, Response reads the synchronous answer.

// scriptFailure is the error a Source to Stage script left in the Stage when
// the transaction was created (models/store, planOutbound), or "".
func scriptFailure(w *enginedb.Work) string {
	if w.IsReceipt() {
		return ""
	}
	msg, _ := w.Data[models.StageScriptError].(string)
	return msg
}

// scriptFailed ends an attempt that a script stopped before anything was
// sent: Error at once (a script does not mend itself by retrying), with an
// HTTP Request record that says nothing went out.
func (s *sender) scriptFailed(res enginedb.AttemptResult, out outRequest, msg string) enginedb.AttemptResult {
	res.Outcome = enginedb.OutcomeFailed
	res.Error = msg + " Nothing was sent; mend the script and Replay."
	res.Request = models.HTTPRequest{Method: cmpMethod(out.Method), URL: out.URL, State: models.RequestError,
		Error: "Not sent: " + msg, RequestHeaders: models.JSON[map[string]string]{V: map[string]string{}},
		ResponseHeaders: models.JSON[map[string]string]{V: map[string]string{}},
		ResponseAction:  "error: script failed"}
	return res
}

func cmpMethod(m string) string {
	if m == "" {
		return http.MethodPost
	}
	return m
}

// scriptOf turns a stored script into the sandbox's, named for errors.
func scriptOf(w *enginedb.Work, sc *models.MessageScript) script.Script {
	p := script.Point(sc.Point)
	return script.Script{ID: sc.ID, Version: sc.Version, Point: p, Source: sc.Source,
		Name: w.Message.Name + " / " + p.Label()}
}

// scriptInput is what the outbound scripts see of a transaction.
func scriptInput(w *enginedb.Work) script.Input {
	in := script.Input{Stage: w.Data, Vars: w.Vars,
		Transaction: script.TransactionData(w.Transaction.Number, w.Transaction.MessageIdent, w.Message.Name, w.Ticket, w.Attempt())}
	if w.Bond != nil {
		in.Bond = script.BondData(w.Bond.InternalReference, w.Bond.ExternalReference)
	}
	return in
}

// stageToRequest runs the Stage to Request script: method, path (joined to
// the endpoint), query, headers, and a body that is JSON for an object or
// array and sent as it is for a string.
func (s *sender) stageToRequest(w *enginedb.Work, sc *models.MessageScript, res *enginedb.AttemptResult) (outRequest, error) {
	spec := scriptOf(w, sc)
	m, out, err := s.scripts.Object(spec, scriptInput(w), false)
	res.ScriptLogs = append(res.ScriptLogs, out.Logs...)
	if err != nil {
		return outRequest{}, err
	}
	bad := func(format string, args ...any) error {
		return &script.Error{Script: spec.Name, Kind: script.KindResult, Message: fmt.Sprintf(format, args...)}
	}
	req := outRequest{Method: http.MethodPost, Headers: map[string]string{}}
	if v, ok := m["method"]; ok {
		str, _ := v.(string)
		str = strings.ToUpper(strings.TrimSpace(str))
		switch str {
		case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			req.Method = str
		default:
			return req, bad("method must be GET, POST, PUT, PATCH or DELETE, not %v", v)
		}
	}
	path := w.Message.Path
	if v, ok := m["path"]; ok {
		str, isStr := v.(string)
		if !isStr || strings.Contains(str, "://") || strings.HasPrefix(str, "//") {
			return req, bad("path must be a path on the connection's endpoint (like /api/now/table/incident), not %v", v)
		}
		path = str
	}
	req.URL = joinURL(w.Connection.EndpointURL, path)
	if v, ok := m["query"]; ok && v != nil {
		q, isObj := v.(map[string]any)
		if !isObj {
			return req, bad("query must be an object of names and values")
		}
		vals := url.Values{}
		for k, val := range q {
			vals.Set(k, fmt.Sprint(val))
		}
		sep := "?"
		if strings.Contains(req.URL, "?") {
			sep = "&"
		}
		req.URL += sep + vals.Encode()
	}
	if v, ok := m["headers"]; ok && v != nil {
		h, isObj := v.(map[string]any)
		if !isObj {
			return req, bad("headers must be an object of names and values")
		}
		for k, val := range h {
			if strings.EqualFold(k, "Authorization") || strings.EqualFold(k, "Host") {
				return req, bad("the %s header comes from the connection, not the script", k)
			}
			req.Headers[k] = fmt.Sprint(val)
		}
	}
	switch b := m["body"].(type) {
	case nil:
	case string:
		req.Body = []byte(b)
		if _, set := req.Headers["Content-Type"]; !set {
			req.Headers["Content-Type"] = "text/plain; charset=utf-8"
		}
	default:
		body, err := json.Marshal(b)
		if err != nil {
			return req, bad("body cannot be sent as JSON: %v", err)
		}
		req.Body = body
	}
	return req, nil
}

// responseVerdict is what a Response script decided ("" outcome: the usual rules).
type responseVerdict struct {
	outcome           string // "", "success", "retry", "error"
	error             string
	externalReference string
}

// readResponse runs the Response script on the synchronous answer.
func (s *sender) readResponse(w *enginedb.Work, sc *models.MessageScript, ex exchange, res *enginedb.AttemptResult) (responseVerdict, error) {
	spec := scriptOf(w, sc)
	in := scriptInput(w)
	headers := map[string]any{}
	for k, v := range ex.headers {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	var body any
	if json.Unmarshal(ex.body, &body) != nil {
		body = nil
	}
	in.Response = map[string]any{"status": ex.status, "headers": headers, "body": body, "text": string(ex.body)}
	m, out, err := s.scripts.Object(spec, in, true)
	res.ScriptLogs = append(res.ScriptLogs, out.Logs...)
	if err != nil || m == nil {
		return responseVerdict{}, err
	}
	v := responseVerdict{}
	v.outcome, _ = m["outcome"].(string)
	switch v.outcome {
	case "", "success", "retry", "error":
	default:
		return v, &script.Error{Script: spec.Name, Kind: script.KindResult,
			Message: fmt.Sprintf(`outcome must be "success", "retry" or "error", not %q`, v.outcome)}
	}
	v.error, _ = m["error"].(string)
	if ref, ok := m["external_reference"]; ok && ref != nil {
		v.externalReference = strings.TrimSpace(fmt.Sprint(ref))
	}
	return v, nil
}
