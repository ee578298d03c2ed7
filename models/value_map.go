package models

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// ValueRow is one row of a field's value map as the Designer edits it: a
// ticket value and a payload value, mapped both ways or one way only.
type ValueRow struct {
	Ticket    string
	Payload   string
	Direction Direction
}

// maxValueRows bounds a value map: a two-column table an admin edits by hand.
const maxValueRows = 200

// ValueMapsFromRows turns the edited rows into the two stored maps: the
// outbound map (ticket value -> payload value) from rows that go out, and
// the inbound map (payload value -> ticket value) from rows that come in.
// Rows with both cells empty are blank rows of the form and are skipped. It
// returns the first problem in plain words: a half-filled row, an unknown
// direction, or a value in two rows of the same direction.
func ValueMapsFromRows(rows []ValueRow) (out, in map[string]string, problem string) {
	out, in = map[string]string{}, map[string]string{}
	n := 0
	for i, r := range rows {
		if r.Ticket == "" && r.Payload == "" {
			continue
		}
		if n++; n > maxValueRows {
			return nil, nil, fmt.Sprintf("A value map holds at most %d rows.", maxValueRows)
		}
		if r.Ticket == "" || r.Payload == "" {
			return nil, nil, fmt.Sprintf("Row %d needs both a ticket value and a payload value.", i+1)
		}
		for _, v := range []string{r.Ticket, r.Payload} {
			if p := TextProblem(v); p != "" {
				return nil, nil, fmt.Sprintf("Row %d: %s", i+1, p)
			}
			if len(v) > 200 {
				return nil, nil, fmt.Sprintf("Row %d: a value may be at most 200 characters long.", i+1)
			}
		}
		switch r.Direction {
		case Bidirectional, Outbound, Inbound:
		default:
			return nil, nil, fmt.Sprintf("Row %d: the direction must be both ways, outbound or inbound.", i+1)
		}
		if r.Direction != Inbound {
			if _, dup := out[r.Ticket]; dup {
				return nil, nil, fmt.Sprintf("Ticket value %q is in two rows that map outbound; keep one of them.", r.Ticket)
			}
			out[r.Ticket] = r.Payload
		}
		if r.Direction != Outbound {
			if _, dup := in[r.Payload]; dup {
				return nil, nil, fmt.Sprintf("Payload value %q is in two rows that map inbound; keep one of them, or make the other outbound only.", r.Payload)
			}
			in[r.Payload] = r.Ticket
		}
	}
	return out, in, ""
}

// ValueRowsOf turns the stored maps back into rows for editing: a pair that
// is in both maps is one row both ways; the rest are one-way rows. Rows come
// sorted by ticket value, then payload value, so the table reads the same
// every time.
func ValueRowsOf(out, in map[string]string) []ValueRow {
	rows := make([]ValueRow, 0, len(out)+len(in))
	for t, p := range out {
		d := Outbound
		if in[p] == t {
			d = Bidirectional
		}
		rows = append(rows, ValueRow{Ticket: t, Payload: p, Direction: d})
	}
	for p, t := range in {
		if q, ok := out[t]; ok && q == p {
			continue
		}
		rows = append(rows, ValueRow{Ticket: t, Payload: p, Direction: Inbound})
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].Ticket != rows[j].Ticket {
			return naturalLess(rows[i].Ticket, rows[j].Ticket)
		}
		return rows[i].Payload < rows[j].Payload
	})
	return rows
}

// naturalLess orders "2" before "10", and text as text.
func naturalLess(a, b string) bool {
	if len(a) != len(b) && isDigits(a) && isDigits(b) {
		return len(a) < len(b)
	}
	return a < b
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// CheckValueMaps says, in plain words, why a field's outbound map out
// (ticket -> payload) and inbound map in (payload -> ticket) are not
// consistent for a field travelling in direction, or returns "". The rule
// (docs/designer-messages.md, "Value maps"): a field that only goes out has
// no inbound rows and one that only comes in has no outbound rows; for a
// field both ways, every payload value we send has an inbound row (the
// remote sends our values back), and that row leads to a ticket value that
// is sent as the same payload value again, so a value never changes on its
// way out and back. Several ticket values may share a payload value (4 and
// 5 both "Low"); the inbound row then says which one "Low" becomes. Extra
// inbound rows (synonyms: "P1" -> 1) are fine.
func CheckValueMaps(direction Direction, out, in map[string]string) string {
	switch {
	case direction == Outbound && len(in) > 0:
		return "This field only goes out: its value map takes outbound rows only."
	case direction == Inbound && len(out) > 0:
		return "This field only comes in: its value map takes inbound rows only."
	case direction != Bidirectional || len(out) == 0:
		return ""
	}
	tickets := make([]string, 0, len(out))
	for t := range out {
		tickets = append(tickets, t)
	}
	sort.Slice(tickets, func(i, j int) bool { return naturalLess(tickets[i], tickets[j]) })
	for _, t := range tickets {
		p := out[t]
		back, ok := in[p]
		if !ok {
			if shared := ticketsSending(out, p); len(shared) > 1 {
				return fmt.Sprintf("Ticket values %s all go out as %q: add an inbound row that says which of them %q becomes.",
					joinQuoted(shared), p, p)
			}
			return fmt.Sprintf("Ticket value %q goes out as %q, but no row maps %q back inbound: the remote would send it back and it would be refused. Make the row map both ways.", t, p, p)
		}
		q, mapped := out[back]
		if !mapped {
			q = back // a value with no outbound row is sent as it is
		}
		if back != t && q != p {
			sent := "is sent as it is"
			if mapped {
				sent = fmt.Sprintf("goes out as %q", q)
			}
			return fmt.Sprintf("Ticket value %q goes out as %q, which comes back as %q, and %q %s: the value would change on its way out and back.",
				t, p, back, back, sent)
		}
	}
	return ""
}

// ticketsSending lists the ticket values the outbound map sends as p.
func ticketsSending(out map[string]string, p string) []string {
	var ts []string
	for t, q := range out {
		if q == p {
			ts = append(ts, t)
		}
	}
	slices.SortFunc(ts, func(a, b string) int {
		if naturalLess(a, b) {
			return -1
		}
		if a == b {
			return 0
		}
		return 1
	})
	return ts
}

func joinQuoted(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = fmt.Sprintf("%q", v)
	}
	if len(q) < 2 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
