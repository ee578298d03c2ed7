// Package servicenow simulates the parts of a ServiceNow instance an
// integration uses: the Table API on the incident table (create, read, query
// with an encoded query and pages, update by PATCH or PUT), work notes and
// comments as journal fields (also readable from sys_journal_field), the
// data policy that refuses a resolve without close code and notes, basic
// authentication, and an outbound webhook, like a business rule calling
// RESTMessageV2, that POSTs its own JSON body to a configured URL when an
// incident changes, with retries. Records live in memory.
// docs/simulators.md lists what differs from the real instance.
package servicenow

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"unifi/internal/failmode"
	"unifi/internal/sim"
)

// TimeLayout is how the Table API writes date-times (UTC, whole seconds).
const TimeLayout = "2006-01-02 15:04:05"

// Incident states, as the incident table ships them.
const (
	StateNew        = "1"
	StateInProgress = "2"
	StateOnHold     = "3"
	StateResolved   = "6"
	StateClosed     = "7"
	StateCanceled   = "8"
)

// Opts configures the simulator.
type Opts struct {
	User     string // the integration user [unifi.integration]
	Password string // its password
	// AgentUser is a second account, a service-desk agent: changes made
	// with it fire the webhook, the integration user's do not (the business
	// rule's condition, so our own updates do not echo back). [agent]
	AgentUser     string
	AgentPassword string // [the integration user's password]
	Webhook       WebhookOpts
	RateLimit     float64 // requests per second before 429 (0: none)
	Burst         int
	Mode          failmode.Mode
	Now           func() time.Time // the clock [time.Now]
	Logger        *slog.Logger
}

// Sim is the ServiceNow simulator.
type Sim struct {
	o       Opts
	frame   *sim.Frame
	incs    *sim.Store[incident]
	journal *sim.Store[journalEntry]
	hook    *webhook
	nextNum int // guarded by incs' write lock
	log     *slog.Logger
}

type journalEntry struct {
	SysID     string
	ElementID string // the incident's sys_id
	Element   string // work_notes or comments
	Value     string
	CreatedOn time.Time
	CreatedBy string
}

// incident is one record: its fields as the Table API shows them (strings),
// plus its journal.
type incident struct {
	f       map[string]string
	journal []journalEntry // oldest first
}

// writable are the fields a caller may set; u_* custom fields are accepted
// too. Other fields are ignored, as the Table API ignores unknown fields.
var writable = map[string]bool{
	"short_description": true, "description": true, "state": true, "impact": true, "urgency": true,
	"category": true, "subcategory": true, "caller_id": true, "assignment_group": true, "assigned_to": true,
	"correlation_id": true, "correlation_display": true, "close_code": true, "close_notes": true,
	"contact_type": true, "hold_reason": true,
}

// fieldOrder is every field a record has, in the order the listing and the
// webhook use.
var fieldOrder = []string{"sys_id", "number", "short_description", "description", "state", "priority", "impact",
	"urgency", "category", "subcategory", "caller_id", "assignment_group", "assigned_to", "correlation_id",
	"correlation_display", "close_code", "close_notes", "contact_type", "hold_reason", "active", "opened_at",
	"opened_by", "resolved_at", "closed_at", "sys_created_on", "sys_created_by", "sys_updated_on", "sys_updated_by",
	"sys_mod_count", "sys_class_name", "work_notes", "comments"}

// New returns the simulator; Frame().Close stops its webhook sender.
func New(o Opts) (*Sim, error) {
	if o.User == "" {
		o.User = "unifi.integration"
	}
	if o.Password == "" {
		return nil, errors.New("servicenow simulator: a password is required")
	}
	if o.AgentUser == "" {
		o.AgentUser = "agent"
	}
	if o.AgentPassword == "" {
		o.AgentPassword = o.Password
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Sim{o: o, incs: sim.NewStore[incident](o.Now), journal: sim.NewStore[journalEntry](o.Now),
		nextNum: 10000, log: o.Logger}
	hook, err := newWebhook(o.Webhook, o.Logger)
	if err != nil {
		return nil, fmt.Errorf("servicenow simulator: %w", err)
	}
	s.hook = hook
	frame, err := sim.NewFrame(s, sim.Opts{Name: "the ServiceNow simulator",
		Users: map[string]string{o.User: o.Password, o.AgentUser: o.AgentPassword},
		Unauthorized: func(w http.ResponseWriter) {
			w.Header().Set("WWW-Authenticate", `Basic realm="Service-now"`)
			writeError(w, http.StatusUnauthorized, "User Not Authenticated", "Required to provide Auth information")
		},
		ErrorBody: func(_ int, text string) any { return errorBody(text, "") },
		Mode:      o.Mode, RateLimit: o.RateLimit, Burst: o.Burst, Logger: o.Logger,
		Routes:  map[string]http.HandlerFunc{"/webhook": s.webhookControl},
		OnClose: hook.close})
	if err != nil {
		hook.close()
		return nil, fmt.Errorf("servicenow simulator: %w", err)
	}
	s.frame = frame
	return s, nil
}

// Frame is the simulator's frame: its handler, control and Serve.
func (s *Sim) Frame() *sim.Frame { return s.frame }

// WebhookStats are the webhook's counters.
func (s *Sim) WebhookStats() WebhookStats { return s.hook.stats() }

func errorBody(message, detail string) map[string]any {
	return map[string]any{"error": map[string]string{"message": message, "detail": detail}, "status": "failure"}
}

func writeError(w http.ResponseWriter, status int, message, detail string) {
	sim.WriteJSON(w, status, errorBody(message, detail))
}

const tablePrefix = "/api/now/table/"

// ServeHTTP is the Table API, behind the frame's authentication and limits.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, tablePrefix)
	if !ok {
		writeError(w, http.StatusBadRequest, "Requested URI does not represent any resource", r.URL.Path)
		return
	}
	table, sysID, _ := strings.Cut(rest, "/")
	user, _, _ := r.BasicAuth()
	switch {
	case table == "sys_journal_field" && sysID == "" && r.Method == http.MethodGet:
		s.listJournal(w, r)
	case table != "incident":
		writeError(w, http.StatusBadRequest, "Invalid table "+table, "")
	case sysID == "" && r.Method == http.MethodGet:
		s.list(w, r)
	case sysID == "" && r.Method == http.MethodPost:
		s.insert(w, r, user)
	case sysID != "" && r.Method == http.MethodGet:
		var rec map[string]string
		if !s.incs.Get(sysID, func(in *incident) { rec = in.view(fieldsParam(r), displayJournal(r)) }) {
			writeError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
			return
		}
		sim.WriteJSON(w, http.StatusOK, map[string]any{"result": rec})
	case sysID != "" && (r.Method == http.MethodPatch || r.Method == http.MethodPut):
		s.update(w, r, sysID, user)
	default:
		writeError(w, http.StatusMethodNotAllowed, "Method not Supported", r.Method+" "+r.URL.Path)
	}
}

func newSysID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readBody reads a record's JSON object, each value as the string the
// Table API stores (numbers and booleans as written).
func readBody(r *http.Request) (map[string]string, error) {
	var raw map[string]any
	if err := sim.DecodeJSON(r, &raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v := v.(type) {
		case nil:
			out[k] = ""
		case string:
			out[k] = v
		case float64:
			out[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case bool:
			out[k] = strconv.FormatBool(v)
		default:
			b, _ := json.Marshal(v)
			out[k] = string(b)
		}
	}
	return out, nil
}

// change is what one write did, for the answer and the webhook.
type change struct {
	view      map[string]string
	hook      map[string]string
	changed   bool
	policyErr string
}

func (s *Sim) insert(w http.ResponseWriter, r *http.Request, user string) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Exception while reading request", err.Error())
		return
	}
	var ch change
	err = s.incs.Create(func(_ int, at time.Time) (*incident, []string, error) {
		in := s.newIncident(user, at)
		if ch = s.apply(in, body, user, at, "insert"); ch.policyErr != "" {
			return nil, nil, errPolicy
		}
		return in, []string{in.f["sys_id"]}, nil
	})
	if errors.Is(err, errPolicy) {
		writePolicy(w, ch.policyErr)
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "Operation Failed", err.Error())
		return
	}
	s.fire(ch, user)
	sim.WriteJSON(w, http.StatusCreated, map[string]any{"result": ch.view})
}

var errPolicy = errors.New("data policy")

// newIncident is a new record's defaults; with the store's write lock held
// (it takes the next number).
func (s *Sim) newIncident(user string, at time.Time) *incident {
	s.nextNum++
	ts := at.Format(TimeLayout)
	return &incident{f: map[string]string{"sys_id": newSysID(), "number": fmt.Sprintf("INC%07d", s.nextNum),
		"state": StateNew, "impact": "3", "urgency": "3", "active": "true", "opened_at": ts, "opened_by": user,
		"sys_created_on": ts, "sys_created_by": user, "sys_class_name": "incident", "sys_mod_count": "-1"}}
}

func writePolicy(w http.ResponseWriter, detail string) {
	writeError(w, http.StatusForbidden, "Operation Failed", "Data Policy Exception: \n\tThe following fields are mandatory: "+detail+"\n")
}

func (s *Sim) update(w http.ResponseWriter, r *http.Request, sysID, user string) {
	body, err := readBody(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Exception while reading request", err.Error())
		return
	}
	var ch change
	found, _ := s.incs.Update(sysID, func(in *incident, at time.Time) error {
		next := in.clone()
		if ch = s.apply(next, body, user, at, "update"); ch.policyErr == "" {
			*in = *next
		}
		return nil
	})
	switch {
	case !found:
		writeError(w, http.StatusNotFound, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
	case ch.policyErr != "":
		writePolicy(w, ch.policyErr)
	default:
		s.fire(ch, user)
		sim.WriteJSON(w, http.StatusOK, map[string]any{"result": ch.view})
	}
}

// fire queues the webhook of a change, unless the change changed nothing
// or its author is the integration user.
func (s *Sim) fire(ch change, user string) {
	if ch.changed && user != s.o.User {
		s.hook.enqueue(ch.hook)
	}
}

// apply writes body into in (under the store's lock): the writable fields,
// the journal fields, then the derived ones (priority, active, resolved_at,
// closed_at) and the system fields, like a business rule would.
func (s *Sim) apply(in *incident, body map[string]string, user string, at time.Time, op string) change {
	ch := change{changed: op == "insert"}
	for k, v := range body {
		if (writable[k] || strings.HasPrefix(k, "u_")) && in.f[k] != v {
			in.f[k] = v
			ch.changed = true
		}
	}
	newNotes := map[string]string{}
	for _, el := range []string{"work_notes", "comments"} {
		if v := body[el]; strings.TrimSpace(v) != "" {
			e := journalEntry{SysID: newSysID(), ElementID: in.f["sys_id"], Element: el, Value: v, CreatedOn: at, CreatedBy: user}
			in.journal = append(in.journal, e)
			newNotes[el] = v
			ch.changed = true
		}
	}
	in.f["priority"] = priorityOf(in.f["impact"], in.f["urgency"])
	ts := at.Format(TimeLayout)
	switch st := in.f["state"]; st {
	case StateResolved, StateClosed:
		var missing []string
		if in.f["close_code"] == "" {
			missing = append(missing, "Resolution code")
		}
		if in.f["close_notes"] == "" {
			missing = append(missing, "Resolution notes")
		}
		if len(missing) > 0 {
			ch.policyErr = strings.Join(missing, ", ")
			return ch
		}
		if in.f["resolved_at"] == "" {
			in.f["resolved_at"] = ts
		}
		if st == StateClosed && in.f["closed_at"] == "" {
			in.f["closed_at"] = ts
		}
		in.f["active"] = strconv.FormatBool(st == StateResolved)
	case StateCanceled:
		in.f["active"] = "false"
	default:
		in.f["active"], in.f["resolved_at"], in.f["closed_at"] = "true", "", ""
	}
	if !ch.changed {
		ch.view = in.view(nil, false)
		return ch
	}
	n, _ := strconv.Atoi(in.f["sys_mod_count"])
	in.f["sys_mod_count"] = strconv.Itoa(n + 1)
	in.f["sys_updated_on"], in.f["sys_updated_by"] = ts, user
	ch.view = in.view(nil, false)
	ch.hook = in.hookBody(op, newNotes)
	// The journal entries go to sys_journal_field too, where integrations read them.
	for _, e := range in.journal[len(in.journal)-len(newNotes):] {
		_ = s.journal.Create(func(int, time.Time) (*journalEntry, []string, error) {
			e := e
			return &e, []string{e.SysID}, nil
		})
	}
	return ch
}

// priorityOf is the default Priority Lookup Rules: priority follows from
// impact and urgency (1 high .. 3 low) and cannot be written directly.
func priorityOf(impact, urgency string) string {
	i, err1 := strconv.Atoi(impact)
	u, err2 := strconv.Atoi(urgency)
	if err1 != nil || err2 != nil || i < 1 || i > 3 || u < 1 || u > 3 {
		return "5"
	}
	return strconv.Itoa(min(i+u-1, 5))
}

func (in *incident) clone() *incident {
	f := make(map[string]string, len(in.f))
	for k, v := range in.f {
		f[k] = v
	}
	return &incident{f: f, journal: slices.Clone(in.journal)}
}

// journalText is a journal field as a display value shows it: the entries
// newest first, each headed by its time, author and kind.
func (in *incident) journalText(el string) string {
	label := map[string]string{"work_notes": "Work notes", "comments": "Additional comments"}[el]
	var b strings.Builder
	for i := len(in.journal) - 1; i >= 0; i-- {
		if e := in.journal[i]; e.Element == el {
			fmt.Fprintf(&b, "%s - %s (%s)\n%s\n\n", e.CreatedOn.Format(TimeLayout), e.CreatedBy, label, e.Value)
		}
	}
	return b.String()
}

// view is the record as the Table API answers it. Journal fields read
// empty, unless displayJournal (sysparm_display_value=true or all).
func (in *incident) view(only map[string]bool, displayJournal bool) map[string]string {
	out := make(map[string]string, len(in.f)+2)
	for k, v := range in.f {
		if only == nil || only[k] {
			out[k] = v
		}
	}
	for _, el := range []string{"work_notes", "comments"} {
		if only == nil || only[el] {
			out[el] = ""
			if displayJournal {
				out[el] = in.journalText(el)
			}
		}
	}
	for _, k := range fieldOrder {
		if _, ok := out[k]; !ok && (only == nil || only[k]) {
			out[k] = ""
		}
	}
	return out
}

// hookBody is what the business rule posts: the incident's main fields and
// the journal entries this change added.
func (in *incident) hookBody(op string, notes map[string]string) map[string]string {
	out := map[string]string{"operation": op, "table": "incident", "work_notes": notes["work_notes"], "comments": notes["comments"]}
	for _, k := range []string{"sys_id", "number", "short_description", "description", "state", "priority", "impact",
		"urgency", "assignment_group", "assigned_to", "caller_id", "correlation_id", "close_code", "close_notes",
		"active", "sys_created_on", "sys_updated_on", "sys_updated_by", "sys_mod_count"} {
		out[k] = in.f[k]
	}
	for k, v := range in.f {
		if strings.HasPrefix(k, "u_") {
			out[k] = v
		}
	}
	return out
}

func fieldsParam(r *http.Request) map[string]bool {
	list := r.URL.Query().Get("sysparm_fields")
	if list == "" {
		return nil
	}
	out := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		out[strings.TrimSpace(f)] = true
	}
	return out
}

func displayJournal(r *http.Request) bool {
	v := r.URL.Query().Get("sysparm_display_value")
	return v == "true" || v == "all"
}
