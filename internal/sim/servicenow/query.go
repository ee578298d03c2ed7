package servicenow

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"unifi/internal/sim"
)

// An encoded query (sysparm_query): conditions joined by ^ (AND), each
// `field<op>value` with op one of = != > >= < <= LIKE NOTLIKE STARTSWITH
// ENDSWITH IN NOT IN ISEMPTY ISNOTEMPTY, then ORDERBYfield or
// ORDERBYDESCfield terms. Date values are "yyyy-MM-dd HH:mm:ss" (UTC) or
// javascript:gs.dateGenerate('yyyy-MM-dd','HH:mm:ss'). ^OR and ^NQ are
// refused with 400 (the real instance would run them).

type condition struct {
	field, op, value string
	values           []string // IN, NOT IN
}

type orderTerm struct {
	field string
	desc  bool
}

type encodedQuery struct {
	conds []condition
	order []orderTerm
}

var (
	condRe       = regexp.MustCompile(`^([a-z_][a-z0-9_.]*?)(ISNOTEMPTY|ISEMPTY|NOT IN|NOTLIKE|STARTSWITH|ENDSWITH|LIKE|IN|>=|<=|!=|=|>|<)(.*)$`)
	dateGenerate = regexp.MustCompile(`^javascript:gs\.dateGenerate\('(\d{4}-\d{2}-\d{2})',\s*'(\d{2}:\d{2}:\d{2})'\)$`)
)

// parseQuery reads an encoded query over the fields known says exist.
func parseQuery(q string, known func(string) bool) (*encodedQuery, error) {
	out := &encodedQuery{}
	if strings.TrimSpace(q) == "" {
		return out, nil
	}
	for _, term := range strings.Split(q, "^") {
		switch {
		case term == "" || term == "EQ":
			continue
		case strings.HasPrefix(term, "ORDERBYDESC"):
			out.order = append(out.order, orderTerm{field: strings.TrimPrefix(term, "ORDERBYDESC"), desc: true})
			continue
		case strings.HasPrefix(term, "ORDERBY"):
			out.order = append(out.order, orderTerm{field: strings.TrimPrefix(term, "ORDERBY")})
			continue
		case strings.HasPrefix(term, "OR") || strings.HasPrefix(term, "NQ"):
			return nil, fmt.Errorf("the simulator joins conditions with ^ (AND) only; ^OR and ^NQ are not supported")
		}
		m := condRe.FindStringSubmatch(term)
		if m == nil {
			return nil, fmt.Errorf("cannot read the condition %q", term)
		}
		c := condition{field: m[1], op: m[2], value: m[3]}
		if !known(c.field) {
			return nil, fmt.Errorf("unknown field %q in the condition %q", c.field, term)
		}
		if d := dateGenerate.FindStringSubmatch(c.value); d != nil {
			c.value = d[1] + " " + d[2]
		}
		if c.op == "IN" || c.op == "NOT IN" {
			c.values = strings.Split(c.value, ",")
		}
		out.conds = append(out.conds, c)
	}
	for _, o := range out.order {
		if !known(o.field) {
			return nil, fmt.Errorf("unknown field %q to order by", o.field)
		}
	}
	return out, nil
}

// compareValues compares two field values: as numbers when both are
// integers, else as text (the date-time format sorts as text).
func compareValues(a, b string) int {
	if x, err := strconv.Atoi(a); err == nil {
		if y, err := strconv.Atoi(b); err == nil {
			return cmp.Compare(x, y)
		}
	}
	return strings.Compare(a, b)
}

func (c *condition) match(v string) bool {
	switch c.op {
	case "=":
		return v == c.value
	case "!=":
		return v != c.value
	case ">":
		return compareValues(v, c.value) > 0
	case ">=":
		return compareValues(v, c.value) >= 0
	case "<":
		return compareValues(v, c.value) < 0
	case "<=":
		return compareValues(v, c.value) <= 0
	case "LIKE":
		return strings.Contains(strings.ToLower(v), strings.ToLower(c.value))
	case "NOTLIKE":
		return !strings.Contains(strings.ToLower(v), strings.ToLower(c.value))
	case "STARTSWITH":
		return strings.HasPrefix(strings.ToLower(v), strings.ToLower(c.value))
	case "ENDSWITH":
		return strings.HasSuffix(strings.ToLower(v), strings.ToLower(c.value))
	case "IN":
		return slices.Contains(c.values, v)
	case "NOT IN":
		return !slices.Contains(c.values, v)
	case "ISEMPTY":
		return v == ""
	case "ISNOTEMPTY":
		return v != ""
	}
	return false
}

func (q *encodedQuery) matches(get func(string) string) bool {
	for i := range q.conds {
		if !q.conds[i].match(get(q.conds[i].field)) {
			return false
		}
	}
	return true
}

func (q *encodedQuery) compare(a, b func(string) string) int {
	for _, o := range q.order {
		c := compareValues(a(o.field), b(o.field))
		if o.desc {
			c = -c
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// paging reads sysparm_offset and sysparm_limit [10000, the Table API's default].
func paging(r *http.Request) (offset, limit int, err error) {
	offset, limit = 0, 10000
	qs := r.URL.Query()
	if v := qs.Get("sysparm_offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, fmt.Errorf("sysparm_offset %q is not a number, 0 or more", v)
		}
	}
	if v := qs.Get("sysparm_limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
			return 0, 0, fmt.Errorf("sysparm_limit %q is not a number, 1 or more", v)
		}
	}
	return offset, limit, nil
}

// writePage answers a list: the result, X-Total-Count and the Link header
// of the Table API (first, prev, next, last).
func writePage(w http.ResponseWriter, r *http.Request, result []map[string]string, total, offset, limit int) {
	link := func(rel string, off int) string {
		u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path}
		q := r.URL.Query()
		q.Set("sysparm_offset", strconv.Itoa(off))
		q.Set("sysparm_limit", strconv.Itoa(limit))
		u.RawQuery = q.Encode()
		return fmt.Sprintf("<%s>;rel=%q", u.String(), rel)
	}
	links := []string{link("first", 0)}
	if offset > 0 {
		links = append(links, link("prev", max(offset-limit, 0)))
	}
	if offset+limit < total {
		links = append(links, link("next", offset+limit))
	}
	links = append(links, link("last", max(total-1, 0)/limit*limit))
	w.Header().Set("Link", strings.Join(links, ","))
	w.Header().Set("X-Total-Count", strconv.Itoa(total))
	sim.WriteJSON(w, http.StatusOK, map[string]any{"result": result})
}

func isIncidentField(f string) bool {
	return slices.Contains(fieldOrder, f) || strings.HasPrefix(f, "u_")
}

func (s *Sim) list(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid paging", err.Error())
		return
	}
	q, err := parseQuery(r.URL.Query().Get("sysparm_query"), isIncidentField)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid query", err.Error())
		return
	}
	only, display := fieldsParam(r), displayJournal(r)
	result := []map[string]string{}
	get := func(in *incident) func(string) string { return func(f string) string { return in.f[f] } }
	total := s.incs.Select(sim.Query[incident]{
		Match:  func(in *incident) bool { return q.matches(get(in)) },
		Order:  func(a, b *incident) int { return q.compare(get(a), get(b)) },
		Offset: offset, Limit: limit,
		Read: func(in *incident) { result = append(result, in.view(only, display)) }})
	writePage(w, r, result, total, offset, limit)
}

func (e *journalEntry) field(f string) string {
	switch f {
	case "sys_id":
		return e.SysID
	case "element_id":
		return e.ElementID
	case "element":
		return e.Element
	case "value":
		return e.Value
	case "name":
		return "incident"
	case "sys_created_on":
		return e.CreatedOn.Format(TimeLayout)
	case "sys_created_by":
		return e.CreatedBy
	}
	return ""
}

var journalFields = []string{"sys_id", "element_id", "element", "value", "name", "sys_created_on", "sys_created_by"}

// listJournal is GET /api/now/table/sys_journal_field: the journal entries
// (work notes and comments) of every incident.
func (s *Sim) listJournal(w http.ResponseWriter, r *http.Request) {
	offset, limit, err := paging(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid paging", err.Error())
		return
	}
	q, err := parseQuery(r.URL.Query().Get("sysparm_query"), func(f string) bool { return slices.Contains(journalFields, f) })
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid query", err.Error())
		return
	}
	only := fieldsParam(r)
	result := []map[string]string{}
	total := s.journal.Select(sim.Query[journalEntry]{
		Match:  func(e *journalEntry) bool { return q.matches(e.field) },
		Order:  func(a, b *journalEntry) int { return q.compare(a.field, b.field) },
		Offset: offset, Limit: limit,
		Read: func(e *journalEntry) {
			rec := map[string]string{}
			for _, f := range journalFields {
				if only == nil || only[f] {
					rec[f] = e.field(f)
				}
			}
			result = append(result, rec)
		}})
	writePage(w, r, result, total, offset, limit)
}
