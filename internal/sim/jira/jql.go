package jira

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The JQL the simulator understands: clauses joined by AND, each
// `field op value` (op one of = != > >= < <= ~ !~) or `field [NOT] IN (v, ...)`,
// then an optional ORDER BY of one or more fields, each ASC or DESC.
// Fields: project, key (issuekey, id), status, priority, issuetype (type),
// resolution, labels, summary (~ only), created (createdDate), updated
// (updatedDate). Dates are "yyyy-MM-dd HH:mm", "yyyy/MM/dd HH:mm", "yyyy-MM-dd"
// or "yyyy/MM/dd" in the account's time zone (Opts.Location), or relative
// like -5m, -2h, -1d, -1w. OR, parentheses and functions are refused.

type jqlClause struct {
	field string
	op    string   // = != > >= < <= ~ !~ in notin
	vals  []string // one value, or the list of IN
	at    time.Time
}

type jqlOrder struct {
	field string
	desc  bool
}

type jqlQuery struct {
	clauses []jqlClause
	order   []jqlOrder
}

var jqlFields = map[string]string{
	"project": "project", "key": "key", "issuekey": "key", "id": "key", "status": "status",
	"priority": "priority", "issuetype": "issuetype", "type": "issuetype", "resolution": "resolution",
	"labels": "labels", "summary": "summary", "text": "summary", "created": "created", "createddate": "created",
	"updated": "updated", "updateddate": "updated",
}

// jqlError is a query the simulator cannot run; Jira answers such with 400.
type jqlError struct{ msg string }

func (e *jqlError) Error() string { return e.msg }

func jqlErrorf(format string, args ...any) error { return &jqlError{fmt.Sprintf(format, args...)} }

// tokenize splits JQL into words, quoted strings (marked by a leading quote
// kept in the token), operators and punctuation.
func tokenize(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			var b strings.Builder
			b.WriteByte('"')
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			if j >= len(s) {
				return nil, jqlErrorf("Error in the JQL Query: The quoted string starting at character %d is not closed.", i+1)
			}
			toks = append(toks, b.String())
			i = j + 1
		case c == '(' || c == ')' || c == ',':
			toks = append(toks, string(c))
			i++
		case strings.ContainsRune("=!<>~", rune(c)):
			j := i + 1
			if j < len(s) && (s[j] == '=' || s[j] == '~') {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n\"'(),=!<>~", rune(s[j])) {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks, nil
}

func parseJQL(s string, now time.Time, loc *time.Location) (*jqlQuery, error) {
	toks, err := tokenize(s)
	if err != nil {
		return nil, err
	}
	q := &jqlQuery{}
	i := 0
	peek := func() string {
		if i < len(toks) {
			return toks[i]
		}
		return ""
	}
	word := func(w string) bool { return strings.EqualFold(peek(), w) }
	for i < len(toks) && !word("order") {
		if len(q.clauses) > 0 {
			if !word("and") {
				if word("or") {
					return nil, jqlErrorf("The simulator's JQL joins clauses with AND only (OR is not supported).")
				}
				return nil, jqlErrorf("Error in the JQL Query: Expecting either 'OR' or 'AND' but got '%s'.", unquote(peek()))
			}
			i++
		}
		if peek() == "(" || word("not") {
			return nil, jqlErrorf("The simulator's JQL has no parentheses or NOT.")
		}
		name := strings.ToLower(unquote(peek()))
		field, ok := jqlFields[name]
		if !ok {
			return nil, jqlErrorf("Field '%s' does not exist or you do not have permission to view it.", unquote(peek()))
		}
		i++
		c := jqlClause{field: field}
		switch op := strings.ToLower(peek()); op {
		case "=", "!=", ">", ">=", "<", "<=", "~", "!~":
			c.op = op
			i++
			v := peek()
			if v == "" || v == "(" || v == ")" || v == "," {
				return nil, jqlErrorf("Error in the JQL Query: Expecting a value after '%s'.", op)
			}
			c.vals = []string{unquote(v)}
			i++
		case "in", "not":
			c.op = "in"
			i++
			if op == "not" {
				if !word("in") {
					return nil, jqlErrorf("Error in the JQL Query: Expecting 'IN' after 'NOT'.")
				}
				c.op = "notin"
				i++
			}
			if peek() != "(" {
				return nil, jqlErrorf("Error in the JQL Query: Expecting '(' after 'IN'.")
			}
			i++
			for peek() != ")" {
				if peek() == "" {
					return nil, jqlErrorf("Error in the JQL Query: Expecting ')' to close the list.")
				}
				if peek() != "," {
					c.vals = append(c.vals, unquote(peek()))
				}
				i++
			}
			i++
		default:
			return nil, jqlErrorf("Error in the JQL Query: Expecting an operator after '%s' but got '%s'.", name, peek())
		}
		if err := c.check(now, loc); err != nil {
			return nil, err
		}
		q.clauses = append(q.clauses, c)
	}
	if word("order") {
		i++
		if !word("by") {
			return nil, jqlErrorf("Error in the JQL Query: Expecting 'BY' after 'ORDER'.")
		}
		i++
		for {
			name := strings.ToLower(unquote(peek()))
			field, ok := jqlFields[name]
			if !ok || field == "labels" {
				return nil, jqlErrorf("Not able to sort using field '%s'.", unquote(peek()))
			}
			i++
			o := jqlOrder{field: field}
			if word("asc") {
				i++
			} else if word("desc") {
				o.desc = true
				i++
			}
			q.order = append(q.order, o)
			if peek() != "," {
				break
			}
			i++
		}
	}
	if i < len(toks) {
		return nil, jqlErrorf("Error in the JQL Query: Unexpected '%s' at the end of the query.", unquote(toks[i]))
	}
	return q, nil
}

func unquote(tok string) string { return strings.TrimPrefix(tok, `"`) }

var relative = regexp.MustCompile(`^([-+]?)(\d+)([mhdw])$`)

// check validates a clause's operator for its field and parses dates.
func (c *jqlClause) check(now time.Time, loc *time.Location) error {
	switch c.field {
	case "created", "updated":
		if c.op == "~" || c.op == "!~" {
			return jqlErrorf("The operator '%s' is not supported by the '%s' field.", c.op, c.field)
		}
		if c.op == "in" || c.op == "notin" {
			return jqlErrorf("The simulator compares '%s' with = != > >= < <= only.", c.field)
		}
		t, err := parseJQLDate(c.vals[0], now, loc)
		if err != nil {
			return err
		}
		c.at = t
	case "summary":
		if c.op != "~" && c.op != "!~" {
			return jqlErrorf("The operator '%s' is not supported by the 'summary' field.", c.op)
		}
	default:
		if c.op == "~" || c.op == "!~" {
			return jqlErrorf("The operator '%s' is not supported by the '%s' field.", c.op, c.field)
		}
		if c.field != "key" && c.field != "priority" && strings.ContainsAny(c.op, "<>") {
			return jqlErrorf("The operator '%s' is not supported by the '%s' field.", c.op, c.field)
		}
	}
	return nil
}

// parseJQLDate reads a JQL date value, in the account's zone loc.
func parseJQLDate(v string, now time.Time, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006-01-02 15:04", "2006/01/02 15:04", "2006-01-02", "2006/01/02"} {
		if t, err := time.ParseInLocation(layout, v, loc); err == nil {
			return t, nil
		}
	}
	if m := relative.FindStringSubmatch(strings.ToLower(v)); m != nil {
		n, _ := strconv.Atoi(m[2])
		unit := map[string]time.Duration{"m": time.Minute, "h": time.Hour, "d": 24 * time.Hour, "w": 7 * 24 * time.Hour}[m[3]]
		d := time.Duration(n) * unit
		if m[1] == "-" {
			d = -d
		}
		return now.UTC().Add(d).Truncate(time.Minute), nil
	}
	return time.Time{}, jqlErrorf("Date value '%s' for field is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', 'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or a period format e.g. '-5d', '4w 2d'.", v)
}

// keyNumber is the number of an issue key ("SIM-12" -> 12), or -1.
func keyNumber(k string) int {
	_, num, ok := strings.Cut(k, "-")
	if !ok {
		if n, err := strconv.Atoi(k); err == nil {
			return n
		}
		return -1
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}

func containsWords(text, query string) bool {
	text = strings.ToLower(text)
	for _, w := range strings.FieldsFunc(strings.ToLower(query), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if !strings.Contains(text, w) {
			return false
		}
	}
	return true
}
