// Package jira simulates the parts of Jira's REST API v2 an integration
// uses: issue create, get and edit, comments, workflow transitions and
// search by JQL with startAt/maxResults pages, behind basic authentication
// with an API token and a rate limit answered with 429 and Retry-After.
// Like Jira without webhooks configured, it never calls anyone: an
// integration polls it. Records live in memory. docs/simulators.md lists
// what differs from the real API.
package jira

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"unifi/internal/failmode"
	"unifi/internal/sim"
)

// TimeLayout is how Jira writes date-times: 2026-12-05T05:21:16.123+0000.
const TimeLayout = "2006-01-02T15:04:05.000-0700"

// Opts configures the simulator.
type Opts struct {
	User  string // the integration's account: its e-mail address [sim@example.com]
	Token string // its API token (the basic-auth password)
	// AgentUser is a second account, a person working in Jira: its
	// comments and changes show its name, so a poller can tell them from
	// its own. [agent@example.com]
	AgentUser  string
	AgentToken string   // [the integration's token]
	Projects   []string // project keys that exist [SIM]
	MaxPage    int      // the largest maxResults a search answers [100]
	RateLimit  float64  // requests per second before 429 (0: none)
	Burst      int      // requests allowed at once above the rate
	Mode       failmode.Mode
	// Location is the account's time zone: JQL dates are read in it and
	// times are written in it, as Jira does with the user's profile zone. [UTC]
	Location *time.Location
	Now      func() time.Time // the clock [time.Now]
	Logger   *slog.Logger
}

// Status is a workflow status.
type Status struct {
	ID, Name, CategoryKey, CategoryName string
	CategoryID                          int
}

// The workflow: every status can move to every other (Jira's simplified
// workflow); transition ids are Jira's usual 11, 21, 31.
var (
	StatusToDo       = Status{ID: "10000", Name: "To Do", CategoryID: 2, CategoryKey: "new", CategoryName: "To Do"}
	StatusInProgress = Status{ID: "3", Name: "In Progress", CategoryID: 4, CategoryKey: "indeterminate", CategoryName: "In Progress"}
	StatusDone       = Status{ID: "10001", Name: "Done", CategoryID: 3, CategoryKey: "done", CategoryName: "Done"}
	transitions      = []struct {
		ID string
		To Status
	}{{"11", StatusToDo}, {"21", StatusInProgress}, {"31", StatusDone}}
)

// Priorities by id, as Jira ships them.
var priorities = []string{"", "Highest", "High", "Medium", "Low", "Lowest"}

var issueTypes = map[string]string{"10001": "Task", "10002": "Bug", "10003": "Story"}

type comment struct {
	ID      int
	Author  string
	Body    string
	Created time.Time
	Updated time.Time
}

type issue struct {
	ID          int
	Key         string
	Project     string
	Summary     string
	Description *string
	IssueType   string // id
	Priority    int
	Status      Status
	Resolution  string
	Resolved    time.Time
	Labels      []string
	Assignee    string
	Reporter    string
	Created     time.Time
	Updated     time.Time
	Comments    []comment
	Custom      map[string]json.RawMessage // customfield_NNNNN as sent
}

// Sim is the Jira simulator.
type Sim struct {
	o        Opts
	frame    *sim.Frame
	issues   *sim.Store[issue]
	projects map[string]int // key -> project id
	nextKey  map[string]int // per project, guarded by the store's write lock
	nextCom  int            // guarded by the store's write lock
}

// New returns the simulator; serve it with Serve or use it as a handler.
func New(o Opts) (*Sim, error) {
	if o.User == "" {
		o.User = "sim@example.com"
	}
	if o.Token == "" {
		return nil, errors.New("jira simulator: an API token is required")
	}
	if o.AgentUser == "" {
		o.AgentUser = "agent@example.com"
	}
	if o.AgentToken == "" {
		o.AgentToken = o.Token
	}
	if len(o.Projects) == 0 {
		o.Projects = []string{"SIM"}
	}
	if o.MaxPage <= 0 {
		o.MaxPage = 100
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	s := &Sim{o: o, issues: sim.NewStore[issue](o.Now), projects: map[string]int{}, nextKey: map[string]int{}, nextCom: 10000}
	for i, p := range o.Projects {
		if !projectKey.MatchString(p) {
			return nil, fmt.Errorf("jira simulator: project key %q is not upper-case letters and digits", p)
		}
		s.projects[p] = 10000 + i
	}
	frame, err := sim.NewFrame(s, sim.Opts{Name: "the Jira simulator", Users: map[string]string{o.User: o.Token, o.AgentUser: o.AgentToken},
		Unauthorized: func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Basic realm="protected-by-jira"`)
			writeErrors(w, http.StatusUnauthorized, nil, "You are not authenticated. Authentication required to perform this operation.")
		},
		ErrorBody: func(_ int, text string) any { return errorBody(nil, text) },
		Mode:      o.Mode, RateLimit: o.RateLimit, Burst: o.Burst, Logger: o.Logger})
	if err != nil {
		return nil, fmt.Errorf("jira simulator: %w", err)
	}
	s.frame = frame
	return s, nil
}

var projectKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// Frame is the simulator's frame: its handler, control and Serve.
func (s *Sim) Frame() *sim.Frame { return s.frame }

// errorBody is Jira's error collection.
func errorBody(fields map[string]string, messages ...string) map[string]any {
	if fields == nil {
		fields = map[string]string{}
	}
	if messages == nil {
		messages = []string{}
	}
	return map[string]any{"errorMessages": messages, "errors": fields}
}

func writeErrors(w http.ResponseWriter, status int, fields map[string]string, messages ...string) {
	sim.WriteJSON(w, status, errorBody(fields, messages...))
}

var (
	issuePath   = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)$`)
	commentPath = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)/comment$`)
	transPath   = regexp.MustCompile(`^/rest/api/2/issue/([^/]+)/transitions$`)
)

// ServeHTTP is the API, behind the frame's authentication and limits.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	user, _, _ := r.BasicAuth()
	base := place{url: "http://" + r.Host, loc: s.o.Location}
	switch {
	case p == "/rest/api/2/issue" && r.Method == http.MethodPost:
		s.create(w, r, base, user)
	case p == "/rest/api/2/search" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.search(w, r, base)
	case p == "/rest/api/2/myself" && r.Method == http.MethodGet:
		sim.WriteJSON(w, http.StatusOK, userView(user))
	case issuePath.MatchString(p):
		key := issuePath.FindStringSubmatch(p)[1]
		switch r.Method {
		case http.MethodGet:
			s.get(w, r, base, key)
		case http.MethodPut:
			s.edit(w, r, key, user)
		default:
			writeErrors(w, http.StatusMethodNotAllowed, nil, "Method not allowed.")
		}
	case commentPath.MatchString(p):
		key := commentPath.FindStringSubmatch(p)[1]
		switch r.Method {
		case http.MethodGet:
			s.comments(w, r, base, key)
		case http.MethodPost:
			s.addComment(w, r, base, key, user)
		default:
			writeErrors(w, http.StatusMethodNotAllowed, nil, "Method not allowed.")
		}
	case transPath.MatchString(p):
		key := transPath.FindStringSubmatch(p)[1]
		switch r.Method {
		case http.MethodGet:
			s.transitions(w, base, key)
		case http.MethodPost:
			s.transition(w, r, key, user)
		default:
			writeErrors(w, http.StatusMethodNotAllowed, nil, "Method not allowed.")
		}
	default:
		writeErrors(w, http.StatusNotFound, nil, "The simulator has no such resource: "+r.Method+" "+p)
	}
}

const notFound = "Issue does not exist or you do not have permission to see it."

// issueBody is the body of a create or an edit.
type issueBody struct {
	Fields map[string]json.RawMessage              `json:"fields"`
	Update map[string][]map[string]json.RawMessage `json:"update"`
}

func (s *Sim) create(w http.ResponseWriter, r *http.Request, base place, user string) {
	var b issueBody
	if err := sim.DecodeJSON(r, &b); err != nil {
		writeErrors(w, http.StatusBadRequest, nil, err.Error())
		return
	}
	var made issue
	err := s.issues.Create(func(_ int, at time.Time) (*issue, []string, error) {
		is := &issue{Priority: 3, Status: StatusToDo, Reporter: user, Created: at, Updated: at}
		if errs := s.apply(is, b, user, at, true); len(errs) > 0 {
			return nil, nil, fieldErrors(errs)
		}
		s.nextKey[is.Project]++
		s.nextCom++ // ids of issues and comments share no space in Jira either; one counter keeps them unique
		is.ID = s.nextCom
		is.Key = fmt.Sprintf("%s-%d", is.Project, s.nextKey[is.Project])
		made = *is
		return is, []string{is.Key, strconv.Itoa(is.ID)}, nil
	})
	var fe fieldErrors
	if errors.As(err, &fe) {
		writeErrors(w, http.StatusBadRequest, fe)
		return
	}
	if err != nil {
		writeErrors(w, http.StatusInternalServerError, nil, err.Error())
		return
	}
	sim.WriteJSON(w, http.StatusCreated, map[string]string{"id": strconv.Itoa(made.ID), "key": made.Key,
		"self": base.url + "/rest/api/2/issue/" + strconv.Itoa(made.ID)})
}

// fieldErrors are Jira's per-field errors (answered 400).
type fieldErrors map[string]string

func (fe fieldErrors) Error() string { return fmt.Sprintf("field errors: %v", map[string]string(fe)) }

// apply sets the fields and runs the update operations of b on is, under
// the store's lock. A create requires project, summary and issuetype.
func (s *Sim) apply(is *issue, b issueBody, user string, at time.Time, create bool) fieldErrors {
	errs := fieldErrors{}
	for name, raw := range b.Fields {
		if msg := s.setField(is, name, raw, create); msg != "" {
			errs[name] = msg
		}
	}
	for name, ops := range b.Update {
		for _, op := range ops {
			for verb, raw := range op {
				if msg := s.updateOp(is, name, verb, raw, user, at, create); msg != "" {
					errs[name] = msg
				}
			}
		}
	}
	if create {
		if is.Project == "" && errs["project"] == "" {
			errs["project"] = "project is required"
		}
		if strings.TrimSpace(is.Summary) == "" {
			errs["summary"] = "You must specify a summary of the issue."
		}
		if is.IssueType == "" && errs["issuetype"] == "" {
			errs["issuetype"] = "issue type is required"
		}
	} else if _, ok := b.Fields["summary"]; ok && strings.TrimSpace(is.Summary) == "" {
		errs["summary"] = "You must specify a summary of the issue."
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

type ref struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Name      string `json:"name"`
	AccountID string `json:"accountId"`
}

// setField sets one field from its JSON value; it returns Jira's error text
// for a value it cannot take.
func (s *Sim) setField(is *issue, name string, raw json.RawMessage, create bool) string {
	var rf ref
	str := func() (string, bool) {
		var v string
		return v, json.Unmarshal(raw, &v) == nil
	}
	switch name {
	case "project":
		if !create {
			return "Field 'project' cannot be changed by the simulator."
		}
		_ = json.Unmarshal(raw, &rf)
		for key, id := range s.projects {
			if rf.Key == key || rf.ID == strconv.Itoa(id) {
				is.Project = key
				return ""
			}
		}
		return "valid project is required"
	case "summary":
		v, ok := str()
		if !ok {
			return "Operation value must be a string"
		}
		is.Summary = v
	case "description":
		if string(raw) == "null" {
			is.Description = nil
			return ""
		}
		v, ok := str()
		if !ok {
			return "Operation value must be a string"
		}
		is.Description = &v
	case "issuetype":
		_ = json.Unmarshal(raw, &rf)
		for id, n := range issueTypes {
			if rf.ID == id || strings.EqualFold(rf.Name, n) {
				is.IssueType = id
				return ""
			}
		}
		return "The issue type selected is invalid."
	case "priority":
		_ = json.Unmarshal(raw, &rf)
		for id, n := range priorities {
			if id > 0 && (rf.ID == strconv.Itoa(id) || strings.EqualFold(rf.Name, n)) {
				is.Priority = id
				return ""
			}
		}
		return "The priority selected is invalid."
	case "labels":
		var v []string
		if json.Unmarshal(raw, &v) != nil {
			return "Labels are a list of strings."
		}
		for _, l := range v {
			if strings.ContainsAny(l, " \t") {
				return "The label '" + l + "' contains spaces which is invalid."
			}
		}
		is.Labels = slices.Compact(slices.Sorted(slices.Values(v)))
	case "assignee":
		if string(raw) == "null" {
			is.Assignee = ""
			return ""
		}
		_ = json.Unmarshal(raw, &rf)
		is.Assignee = rf.AccountID + rf.Name
		if is.Assignee == "" {
			return "Specify an assignee by accountId or name."
		}
	case "status":
		return "Field 'status' cannot be set. Use a transition."
	default:
		if !strings.HasPrefix(name, "customfield_") {
			return "Field '" + name + "' cannot be set. It is not on the appropriate screen, or unknown."
		}
		if is.Custom == nil {
			is.Custom = map[string]json.RawMessage{}
		}
		is.Custom[name] = append(json.RawMessage(nil), raw...)
	}
	return ""
}

// updateOp runs one operation of an edit's "update": set (any field), add
// and remove (labels), add (comment).
func (s *Sim) updateOp(is *issue, name, verb string, raw json.RawMessage, user string, at time.Time, create bool) string {
	switch {
	case verb == "set":
		return s.setField(is, name, raw, create)
	case name == "labels" && (verb == "add" || verb == "remove"):
		var l string
		if json.Unmarshal(raw, &l) != nil || l == "" {
			return "A label is a string."
		}
		is.Labels = slices.DeleteFunc(is.Labels, func(x string) bool { return x == l })
		if verb == "add" {
			is.Labels = slices.Sorted(slices.Values(append(is.Labels, l)))
		}
	case name == "comment" && verb == "add":
		var c struct {
			Body string `json:"body"`
		}
		if json.Unmarshal(raw, &c) != nil || strings.TrimSpace(c.Body) == "" {
			return "Comment body can not be empty!"
		}
		s.nextCom++
		is.Comments = append(is.Comments, comment{ID: s.nextCom, Author: user, Body: c.Body, Created: at, Updated: at})
	default:
		return "Field '" + name + "' does not support the operation '" + verb + "'."
	}
	return ""
}

func (s *Sim) edit(w http.ResponseWriter, r *http.Request, key, user string) {
	var b issueBody
	if err := sim.DecodeJSON(r, &b); err != nil {
		writeErrors(w, http.StatusBadRequest, nil, err.Error())
		return
	}
	var errs fieldErrors
	found, _ := s.issues.Update(key, func(is *issue, at time.Time) error {
		next := is.clone()
		if errs = s.apply(next, b, user, at, false); errs != nil {
			return nil // nothing changes when any field is refused, as in Jira
		}
		next.Updated = at
		*is = *next
		return nil
	})
	switch {
	case !found:
		writeErrors(w, http.StatusNotFound, nil, notFound)
	case errs != nil:
		writeErrors(w, http.StatusBadRequest, errs)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// clone copies is deeply enough that changing the copy leaves is alone.
func (is *issue) clone() *issue {
	c := *is
	c.Labels = slices.Clone(is.Labels)
	c.Comments = slices.Clone(is.Comments)
	if is.Custom != nil {
		c.Custom = make(map[string]json.RawMessage, len(is.Custom))
		for k, v := range is.Custom {
			c.Custom[k] = v
		}
	}
	return &c
}

func (s *Sim) get(w http.ResponseWriter, r *http.Request, base place, key string) {
	fields := fieldFilter(r.URL.Query().Get("fields"))
	var view map[string]any
	if !s.issues.Get(key, func(is *issue) { view = is.view(base, fields) }) {
		writeErrors(w, http.StatusNotFound, nil, notFound)
		return
	}
	sim.WriteJSON(w, http.StatusOK, view)
}

func (s *Sim) addComment(w http.ResponseWriter, r *http.Request, base place, key, user string) {
	var c struct {
		Body string `json:"body"`
	}
	if err := sim.DecodeJSON(r, &c); err != nil {
		writeErrors(w, http.StatusBadRequest, nil, err.Error())
		return
	}
	if strings.TrimSpace(c.Body) == "" {
		writeErrors(w, http.StatusBadRequest, fieldErrors{"comment": "Comment body can not be empty!"})
		return
	}
	var view map[string]any
	found, _ := s.issues.Update(key, func(is *issue, at time.Time) error {
		s.nextCom++
		is.Comments = append(is.Comments, comment{ID: s.nextCom, Author: user, Body: c.Body, Created: at, Updated: at})
		is.Updated = at
		view = is.Comments[len(is.Comments)-1].view(base, is.ID)
		return nil
	})
	if !found {
		writeErrors(w, http.StatusNotFound, nil, notFound)
		return
	}
	sim.WriteJSON(w, http.StatusCreated, view)
}

func (s *Sim) comments(w http.ResponseWriter, r *http.Request, base place, key string) {
	start, max, errs := paging(r.URL.Query().Get("startAt"), r.URL.Query().Get("maxResults"), 5000)
	if errs != nil {
		writeErrors(w, http.StatusBadRequest, nil, errs...)
		return
	}
	out := map[string]any{"startAt": start, "maxResults": max}
	if !s.issues.Get(key, func(is *issue) {
		list := []map[string]any{}
		for i := start; i < len(is.Comments) && len(list) < max; i++ {
			list = append(list, is.Comments[i].view(base, is.ID))
		}
		out["comments"], out["total"] = list, len(is.Comments)
	}) {
		writeErrors(w, http.StatusNotFound, nil, notFound)
		return
	}
	sim.WriteJSON(w, http.StatusOK, out)
}

func (s *Sim) transitions(w http.ResponseWriter, base place, key string) {
	var list []map[string]any
	if !s.issues.Get(key, func(is *issue) {
		for _, t := range transitions {
			if t.To.ID != is.Status.ID {
				list = append(list, map[string]any{"id": t.ID, "name": t.To.Name, "to": t.To.view(base),
					"hasScreen": false, "isGlobal": true, "isInitial": false, "isConditional": false})
			}
		}
	}) {
		writeErrors(w, http.StatusNotFound, nil, notFound)
		return
	}
	sim.WriteJSON(w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": list})
}

func (s *Sim) transition(w http.ResponseWriter, r *http.Request, key, user string) {
	var b struct {
		Transition struct {
			ID string `json:"id"`
		} `json:"transition"`
		issueBody
	}
	if err := sim.DecodeJSON(r, &b); err != nil {
		writeErrors(w, http.StatusBadRequest, nil, err.Error())
		return
	}
	var (
		msg  string
		errs fieldErrors
	)
	found, _ := s.issues.Update(key, func(is *issue, at time.Time) error {
		var to *Status
		for _, t := range transitions {
			if t.ID == b.Transition.ID && t.To.ID != is.Status.ID {
				to = &t.To
			}
		}
		if to == nil {
			msg = fmt.Sprintf("Transition id '%s' is not valid for this issue.", b.Transition.ID)
			return nil
		}
		next := is.clone()
		res := b.Fields["resolution"]
		delete(b.Fields, "resolution")
		if errs = s.apply(next, b.issueBody, user, at, false); errs != nil {
			return nil
		}
		next.Status, next.Updated = *to, at
		if to.CategoryKey == "done" {
			next.Resolution, next.Resolved = "Done", at
			var rf ref
			if res != nil && json.Unmarshal(res, &rf) == nil && rf.Name != "" {
				next.Resolution = rf.Name
			}
		} else {
			next.Resolution, next.Resolved = "", time.Time{}
		}
		*is = *next
		return nil
	})
	switch {
	case !found:
		writeErrors(w, http.StatusNotFound, nil, notFound)
	case msg != "":
		writeErrors(w, http.StatusBadRequest, nil, msg)
	case errs != nil:
		writeErrors(w, http.StatusBadRequest, errs)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// paging reads startAt and maxResults (maxResults above cap is cut to cap).
func paging(startAt, maxResults string, cap int) (int, int, []string) {
	start, max := 0, 50
	var errs []string
	if startAt != "" {
		n, err := strconv.Atoi(startAt)
		if err != nil || n < 0 {
			errs = append(errs, "The value '"+startAt+"' is invalid for startAt.")
		}
		start = n
	}
	if maxResults != "" {
		n, err := strconv.Atoi(maxResults)
		if err != nil || n < 0 {
			errs = append(errs, "The value '"+maxResults+"' is invalid for maxResults.")
		}
		max = n
	}
	return start, min(max, cap), errs
}
