package jira

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"unifi/internal/sim"
)

func (s *Sim) search(w http.ResponseWriter, r *http.Request, base place) {
	var b struct {
		JQL        string   `json:"jql"`
		StartAt    *int     `json:"startAt"`
		MaxResults *int     `json:"maxResults"`
		Fields     []string `json:"fields"`
	}
	var start, max int
	var errs []string
	if r.Method == http.MethodPost {
		if err := sim.DecodeJSON(r, &b); err != nil {
			writeErrors(w, http.StatusBadRequest, nil, err.Error())
			return
		}
		start, max = 0, 50
		if b.StartAt != nil {
			start = *b.StartAt
		}
		if b.MaxResults != nil {
			max = *b.MaxResults
		}
		if start < 0 || max < 0 {
			errs = append(errs, "startAt and maxResults are 0 or more.")
		}
		max = min(max, s.o.MaxPage)
	} else {
		q := r.URL.Query()
		b.JQL = q.Get("jql")
		if f := q.Get("fields"); f != "" {
			b.Fields = strings.Split(f, ",")
		}
		start, max, errs = paging(q.Get("startAt"), q.Get("maxResults"), s.o.MaxPage)
	}
	if errs != nil {
		writeErrors(w, http.StatusBadRequest, nil, errs...)
		return
	}
	query, err := parseJQL(b.JQL, s.o.Now(), s.o.Location)
	var je *jqlError
	if errors.As(err, &je) {
		writeErrors(w, http.StatusBadRequest, nil, je.msg)
		return
	}
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, nil, err.Error())
		return
	}
	fields := fieldFilter(strings.Join(b.Fields, ","))
	issues := []map[string]any{}
	total := s.issues.Select(sim.Query[issue]{Match: query.match, Order: query.compare, Offset: start, Limit: max,
		Read: func(is *issue) { issues = append(issues, is.view(base, fields)) }})
	if max == 0 {
		issues = []map[string]any{}
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"expand": "names,schema", "startAt": start, "maxResults": max,
		"total": total, "issues": issues})
}

// match reports whether is meets every clause.
func (q *jqlQuery) match(is *issue) bool {
	for i := range q.clauses {
		if !q.clauses[i].match(is) {
			return false
		}
	}
	return true
}

func (c *jqlClause) match(is *issue) bool {
	switch c.field {
	case "created", "updated":
		t := is.Created
		if c.field == "updated" {
			t = is.Updated
		}
		return compareBy(c.op, t.Compare(c.at))
	case "summary":
		return containsWords(is.Summary, c.vals[0]) == (c.op == "~")
	case "labels":
		return c.any(func(v string) bool { return slices.Contains(is.Labels, v) })
	case "key":
		if strings.ContainsAny(c.op, "<>") {
			p, _, _ := strings.Cut(c.vals[0], "-")
			return strings.EqualFold(p, is.Project) && compareBy(c.op, cmp.Compare(keyNumber(is.Key), keyNumber(c.vals[0])))
		}
		return c.any(func(v string) bool { return strings.EqualFold(v, is.Key) || v == strconv.Itoa(is.ID) })
	case "priority":
		if strings.ContainsAny(c.op, "<>") { // Jira orders priorities from Highest (1) down
			p := priorityOf(c.vals[0])
			return p > 0 && compareBy(c.op, cmp.Compare(p, is.Priority))
		}
		return c.any(func(v string) bool { return priorityOf(v) == is.Priority })
	case "project":
		return c.any(func(v string) bool { return strings.EqualFold(v, is.Project) })
	case "status":
		return c.any(func(v string) bool { return strings.EqualFold(v, is.Status.Name) || v == is.Status.ID })
	case "issuetype":
		return c.any(func(v string) bool { return strings.EqualFold(v, issueTypes[is.IssueType]) || v == is.IssueType })
	case "resolution":
		return c.any(func(v string) bool {
			return strings.EqualFold(v, is.Resolution) || is.Resolution == "" && strings.EqualFold(v, "unresolved")
		})
	}
	return false
}

// any applies an equality test under = != IN and NOT IN.
func (c *jqlClause) any(eq func(string) bool) bool {
	hit := slices.ContainsFunc(c.vals, eq)
	if c.op == "!=" || c.op == "notin" {
		return !hit
	}
	return hit
}

// compareBy turns a comparison result (record against value) into op's answer.
func compareBy(op string, c int) bool {
	switch op {
	case "=":
		return c == 0
	case "!=":
		return c != 0
	case ">":
		return c > 0
	case ">=":
		return c >= 0
	case "<":
		return c < 0
	case "<=":
		return c <= 0
	}
	return false
}

func priorityOf(v string) int {
	for id, n := range priorities {
		if id > 0 && (strings.EqualFold(v, n) || v == strconv.Itoa(id)) {
			return id
		}
	}
	return 0
}

// compare orders two issues by the ORDER BY; ties (and no ORDER BY) keep
// creation order, so paging a stable set never repeats or skips an issue.
func (q *jqlQuery) compare(a, b *issue) int {
	for _, o := range q.order {
		var c int
		switch o.field {
		case "updated":
			c = a.Updated.Compare(b.Updated)
		case "created":
			c = a.Created.Compare(b.Created)
		case "key":
			c = cmp.Or(cmp.Compare(a.Project, b.Project), cmp.Compare(keyNumber(a.Key), keyNumber(b.Key)))
		case "priority":
			c = cmp.Compare(a.Priority, b.Priority)
		case "status":
			c = cmp.Compare(a.Status.Name, b.Status.Name)
		case "issuetype":
			c = cmp.Compare(issueTypes[a.IssueType], issueTypes[b.IssueType])
		case "project":
			c = cmp.Compare(a.Project, b.Project)
		case "resolution":
			c = cmp.Compare(a.Resolution, b.Resolution)
		case "summary":
			c = cmp.Compare(a.Summary, b.Summary)
		}
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// fields is which fields a view shows: nil shows all.
type fields map[string]bool

func fieldFilter(list string) fields {
	if list == "" {
		return nil
	}
	f := fields{}
	for _, n := range strings.Split(list, ",") {
		n = strings.TrimSpace(n)
		if n == "*all" || n == "*navigable" {
			return nil
		}
		f[n] = true
	}
	return f
}

// place is where a view is shown: the base URL of self links, and the
// account's time zone that times are written in.
type place struct {
	url string
	loc *time.Location // nil: UTC
}

// time writes t as Jira does, in the account's zone (null when unset).
func (p place) time(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	if p.loc == nil {
		return t.UTC().Format(TimeLayout)
	}
	return t.In(p.loc).Format(TimeLayout)
}

func userView(name string) map[string]any {
	return map[string]any{"name": name, "key": name, "accountId": name, "emailAddress": name, "displayName": name, "active": true}
}

func (st Status) view(base place) map[string]any {
	return map[string]any{"self": base.url + "/rest/api/2/status/" + st.ID, "id": st.ID, "name": st.Name,
		"statusCategory": map[string]any{"id": st.CategoryID, "key": st.CategoryKey, "name": st.CategoryName}}
}

func (c comment) view(base place, issueID int) map[string]any {
	return map[string]any{"self": fmt.Sprintf("%s/rest/api/2/issue/%d/comment/%d", base.url, issueID, c.ID),
		"id": strconv.Itoa(c.ID), "author": userView(c.Author), "updateAuthor": userView(c.Author), "body": c.Body,
		"created": base.time(c.Created), "updated": base.time(c.Updated)}
}

// view is the issue as GET /rest/api/2/issue/{key} and search show it.
func (is *issue) view(base place, only fields) map[string]any {
	f := map[string]any{}
	put := func(name string, v any) {
		if only == nil || only[name] {
			f[name] = v
		}
	}
	put("summary", is.Summary)
	if is.Description != nil {
		put("description", *is.Description)
	} else {
		put("description", nil)
	}
	put("project", map[string]any{"key": is.Project, "name": is.Project, "self": base.url + "/rest/api/2/project/" + is.Project})
	put("issuetype", map[string]any{"id": is.IssueType, "name": issueTypes[is.IssueType], "subtask": false})
	put("priority", map[string]any{"id": strconv.Itoa(is.Priority), "name": priorities[is.Priority],
		"self": base.url + "/rest/api/2/priority/" + strconv.Itoa(is.Priority)})
	put("status", is.Status.view(base))
	if is.Resolution != "" {
		put("resolution", map[string]any{"name": is.Resolution})
	} else {
		put("resolution", nil)
	}
	put("resolutiondate", base.time(is.Resolved))
	put("labels", append([]string{}, is.Labels...))
	if is.Assignee != "" {
		put("assignee", userView(is.Assignee))
	} else {
		put("assignee", nil)
	}
	put("reporter", userView(is.Reporter))
	put("created", base.time(is.Created))
	put("updated", base.time(is.Updated))
	comments := make([]map[string]any, len(is.Comments))
	for i, c := range is.Comments {
		comments[i] = c.view(base, is.ID)
	}
	put("comment", map[string]any{"comments": comments, "maxResults": len(comments), "total": len(comments), "startAt": 0})
	for k, v := range is.Custom {
		put(k, json.RawMessage(v))
	}
	id := strconv.Itoa(is.ID)
	return map[string]any{"expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
		"id": id, "key": is.Key, "self": base.url + "/rest/api/2/issue/" + id, "fields": f}
}
