package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"unifi/models"
	"unifi/models/script"
)

// Scripts is the product's ProcessorFunc: the processor's Setup, Request
// and Response scripts run on engine (docs/pollers.md has what each sees and
// returns). An empty Setup starts from {}; an empty Request or Response
// fails the run, saying which.
func Scripts(engine *script.Engine) ProcessorFunc {
	return func(p *models.PollProcessor) (Processor, error) {
		return &scripted{e: engine, p: *p}, nil
	}
}

type scripted struct {
	e *script.Engine
	p models.PollProcessor
}

func (s *scripted) spec(pt script.Point, src string) script.Script {
	return script.Script{ID: s.p.ID, Version: int64(s.p.Version), Point: pt, Source: src, Name: s.p.Name + " / " + pt.Label()}
}

func pollInput(c Call) script.Input {
	return script.Input{Vars: c.Vars, Poll: map[string]any{"mark": c.Mark, "state": c.State, "input": c.Input, "page": c.Page}}
}

func (s *scripted) Setup(_ context.Context, c Call) (map[string]any, error) {
	if strings.TrimSpace(s.p.SetupScript) == "" {
		return map[string]any{}, nil
	}
	m, _, err := s.e.Object(s.spec(script.PollSetup, s.p.SetupScript), pollInput(c), true)
	if m == nil {
		m = map[string]any{}
	}
	return m, err
}

func (s *scripted) Request(_ context.Context, c Call) (*Request, error) {
	if strings.TrimSpace(s.p.RequestScript) == "" {
		return nil, fmt.Errorf("the processor has no Request script")
	}
	sp := s.spec(script.PollRequest, s.p.RequestScript)
	m, _, err := s.e.Object(sp, pollInput(c), true)
	if err != nil || m == nil {
		return nil, err // nothing returned: nothing to ask, the run ends
	}
	var r Request
	if err := remarshal(m, &r); err != nil {
		return nil, &script.Error{Script: sp.Name, Kind: script.KindResult,
			Message: "must return {method, path, query, headers, body} (query and headers objects of strings): " + err.Error()}
	}
	if t, ok := m["body"].(string); ok {
		r.Body, r.Text = nil, t
	}
	for k := range r.Headers {
		if lk := strings.ToLower(k); lk == "authorization" || lk == "host" {
			return nil, &script.Error{Script: sp.Name, Kind: script.KindResult,
				Message: "may not set the " + k + " header: the connection's authentication sets it"}
		}
	}
	return &r, nil
}

func (s *scripted) Response(_ context.Context, c Call, r *Response) (*Page, error) {
	if strings.TrimSpace(s.p.ResponseScript) == "" {
		return nil, fmt.Errorf("the processor has no Response script")
	}
	sp := s.spec(script.PollResponse, s.p.ResponseScript)
	headers := map[string]any{}
	for k, v := range r.Headers {
		headers[strings.ToLower(k)] = strings.Join(v, ", ")
	}
	in := pollInput(c)
	in.Response = map[string]any{"status": r.Status, "headers": headers, "body": r.Body, "text": r.Text}
	m, _, err := s.e.Object(sp, in, true)
	if err != nil || m == nil {
		return &Page{}, err
	}
	var raw struct {
		Items []struct {
			Body json.RawMessage `json:"body"`
			Mark map[string]any  `json:"mark"`
		} `json:"items"`
		Mark  map[string]any `json:"mark"`
		Next  map[string]any `json:"next"`
		Polls []ChildPoll    `json:"polls"`
	}
	if err := remarshal(m, &raw); err != nil {
		return nil, &script.Error{Script: sp.Name, Kind: script.KindResult,
			Message: "must return {items: [{body, mark}], mark, next, polls}: " + err.Error()}
	}
	p := &Page{Mark: raw.Mark, Next: raw.Next, Polls: raw.Polls}
	for i, it := range raw.Items {
		if len(it.Body) == 0 || string(it.Body) == "null" {
			return nil, &script.Error{Script: sp.Name, Kind: script.KindResult, Message: fmt.Sprintf("item %d has no body", i+1)}
		}
		p.Items = append(p.Items, Item{Body: it.Body, Mark: it.Mark})
	}
	return p, nil
}

// remarshal converts a script's plain result into a Go struct.
func remarshal(v any, dst any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, dst)
}
