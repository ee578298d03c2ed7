// Package transaction holds the transactions list, the Transaction page, the
// HTTP Request page and the bulk action confirmation.
package transaction

import (
	"fmt"
	"net/url"
	"sort"
	"time"

	"unifi/models"
	"unifi/models/query"
	"unifi/web/components"
)

// ListView is the transactions list with its filter form.
type ListView struct {
	Filter       query.TransactionFilter
	Query        url.Values // the filter as query values (for links and bulk forms)
	Page         *query.TransactionPage
	NextURL      string
	IsFirstPage  bool
	Integrations []query.IntegrationChoice
	Messages     []MessageOption
	FromText     string
	ToText       string
	CanBulk      bool
	SearchError  string
	FilterActive bool
}

// MessageOption is a message in the filter's select.
type MessageOption struct {
	ID   int64
	Name string // "demo · UpdateIncident"
}

// StateSelected reports whether the filter includes state s.
func (v ListView) StateSelected(s models.TransportState) bool {
	for _, x := range v.Filter.States {
		if x == s {
			return true
		}
	}
	return false
}

// ProcessSelected reports whether the filter's process state is s.
func (v ListView) ProcessSelected(s models.ProcessState) bool {
	return v.Filter.ProcessState != nil && *v.Filter.ProcessState == s
}

// DetailView is the Transaction page.
type DetailView struct {
	D            *query.TransactionDetail
	CanReplay    bool
	CanIgnore    bool
	Timeline     []TimelineEntry
	ProcessLabel string
}

// TimelineEntry is one moment on the transaction's time axis.
type TimelineEntry struct {
	At     time.Time
	Offset string // since the first entry
	Kind   string // "state", "request", "action", "log"
	Label  string
	Detail string
	Href   string
	Bad    bool
}

// BuildTimeline puts state changes, HTTP requests and user actions on one
// time axis, oldest first, each with its offset from the first.
func BuildTimeline(d *query.TransactionDetail) []TimelineEntry {
	var out []TimelineEntry
	for _, c := range d.Changes {
		e := TimelineEntry{At: c.ChangedAt, Kind: "state"}
		switch {
		case c.FromState == nil && c.ToState != nil:
			e.Label = "Created as " + c.ToState.String()
		case c.ToState == nil:
			e.Label = "Deleted"
		default:
			e.Label = c.FromState.String() + " → " + c.ToState.String()
		}
		e.Bad = c.ToState != nil && c.ToState.Broken()
		out = append(out, e)
	}
	if len(d.Changes) == 0 {
		out = append(out, TimelineEntry{At: d.Transaction.CreatedAt, Kind: "state", Label: "Created"})
	}
	for _, r := range d.Requests {
		e := TimelineEntry{At: r.CreatedAt, Kind: "request", Href: components.HTTPRequestURL(r.ID),
			Label: fmt.Sprintf("%s %s request, attempt %d", r.Direction, r.Method, r.Attempt)}
		if r.ResponseStatus != nil {
			e.Detail = fmt.Sprintf("HTTP %d", *r.ResponseStatus)
		} else {
			e.Detail = r.State.String()
		}
		if r.DurationMS != nil {
			e.Detail += fmt.Sprintf(" in %d ms", *r.DurationMS)
		}
		if r.Error != "" {
			e.Detail += " · " + r.Error
		}
		e.Bad = r.State == models.RequestError
		out = append(out, e)
	}
	for _, a := range d.Activity {
		out = append(out, TimelineEntry{At: a.CreatedAt, Kind: "action", Label: a.Action + " by " + a.UserName})
	}
	if d.Transaction.ReceiptDueAt != nil && d.Transaction.State == models.AwaitingReceipt {
		out = append(out, TimelineEntry{At: *d.Transaction.ReceiptDueAt, Kind: "due", Label: "Receipt due by"})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > 0 {
		t0 := out[0].At
		for i := range out {
			out[i].Offset = fmt.Sprintf("+%.3f s", out[i].At.Sub(t0).Seconds())
		}
	}
	return out
}

// RequestView is the HTTP Request page.
type RequestView struct {
	D         *query.HTTPRequestDetail
	CanReplay bool
}

// BulkConfirmView asks before a bulk Replay or Ignore.
type BulkConfirmView struct {
	Kind    models.BulkJobKind
	Count   int
	Capped  bool
	Max     int
	IDs     []int64 // selected mode
	Query   url.Values
	Mode    string // "selected" or "all"
	BackURL string
}

// Verb is the action's name.
func (v BulkConfirmView) Verb() string {
	if v.Kind == models.BulkIgnore {
		return "Ignore"
	}
	return "Replay"
}
