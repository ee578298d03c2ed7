package poll_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"unifi/models"
	"unifi/worker/poll"
)

// jiraProcessor polls the Jira simulator's search as the "Jira (poll)"
// template's scripts do, in Go, so the runner is tested apart from the
// script engine. Items are our envelope: CreateIncident for an issue whose
// created equals its updated, UpdateIncident otherwise.
//
// The mark is {"ms": the last committed issue's updated (Unix ms), "keys":
// the keys committed at that very ms}. A run searches
// updated >= minute(mark) ORDER BY updated (JQL dates are minutes) and skips
// what the mark covers. Pages after the first start one issue early: when
// that issue is not one already seen, an issue was updated meanwhile and
// the rest moved back a place, so the run starts again from the new mark
// rather than skip one.
type jiraProcessor struct{ pageSize int }

const jiraTime = "2006-01-02T15:04:05.000-0700"

func (p jiraProcessor) Setup(_ context.Context, c poll.Call) (map[string]any, error) {
	return map[string]any{"jql": jql(c.Mark), "startAt": 0.0}, nil
}

func jql(mark map[string]any) string {
	ms, _ := mark["ms"].(float64)
	return fmt.Sprintf(`updated >= "%s" ORDER BY updated ASC`, time.UnixMilli(int64(ms)).UTC().Format("2006-01-02 15:04"))
}

func (p jiraProcessor) Request(_ context.Context, c poll.Call) (*poll.Request, error) {
	start := int(c.State["startAt"].(float64))
	return &poll.Request{Method: "GET", Path: "/rest/api/2/search", Query: map[string]string{"jql": c.State["jql"].(string),
		"startAt": strconv.Itoa(start), "maxResults": strconv.Itoa(p.pageSize), "fields": "summary,created,updated"}}, nil
}

func seen(mark map[string]any, ms int64, key string) bool {
	m, _ := mark["ms"].(float64)
	if ms != int64(m) {
		return ms < int64(m)
	}
	keys, _ := mark["keys"].([]any)
	return slices.Contains(keys, any(key))
}

func (p jiraProcessor) Response(_ context.Context, c poll.Call, r *poll.Response) (*poll.Page, error) {
	body, _ := r.Body.(map[string]any)
	issues, _ := body["issues"].([]any)
	start := int(c.State["startAt"].(float64))
	total := int(body["total"].(float64))
	mark := c.Mark
	page := &poll.Page{}
	for i, raw := range issues {
		is := raw.(map[string]any)
		f := is["fields"].(map[string]any)
		key := is["key"].(string)
		up, err := time.Parse(jiraTime, f["updated"].(string))
		if err != nil {
			return nil, err
		}
		ms := up.UnixMilli()
		if i == 0 && start > 0 && !seen(mark, ms, key) {
			// The issue before this page moved: start again from the mark.
			return &poll.Page{Next: map[string]any{"jql": jql(mark), "startAt": 0.0}}, nil
		}
		if seen(mark, ms, key) {
			continue
		}
		name := "UpdateIncident"
		if f["created"] == f["updated"] {
			name = "CreateIncident"
		}
		env := models.Envelope{Message: models.EnvelopeHeader{Name: name, TimeStamp: up, SourceReference: key,
			SourceID: key + "@" + f["updated"].(string)}, Data: map[string]any{"short_description": f["summary"]}}
		b, err := json.Marshal(env)
		if err != nil {
			return nil, err
		}
		keys := []any{key}
		if m, _ := mark["ms"].(float64); int64(m) == ms {
			old, _ := mark["keys"].([]any)
			keys = append(slices.Clone(old), key)
		}
		mark = map[string]any{"ms": float64(ms), "keys": keys}
		page.Items = append(page.Items, poll.Item{Body: b, Mark: mark})
	}
	if next := start + len(issues); next < total && len(issues) > 0 {
		page.Next = map[string]any{"jql": c.State["jql"], "startAt": float64(next - 1)}
	}
	return page, nil
}
