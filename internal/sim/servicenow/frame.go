package servicenow

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"unifi/internal/sim"
)

var stateNames = map[string]string{StateNew: "New", StateInProgress: "In Progress", StateOnHold: "On Hold",
	StateResolved: "Resolved", StateClosed: "Closed", StateCanceled: "Canceled"}

// Listing is the incidents as a table, the most recently updated first,
// with the webhook's last deliveries under it.
func (s *Sim) Listing() sim.Listing {
	l := sim.Listing{Title: "ServiceNow simulator: incidents",
		Columns: []string{"Number", "Short description", "State", "Priority", "Correlation ID", "Updated", "By", "Mod count", "Last work note", "Last comment"}}
	s.incs.Select(sim.Query[incident]{
		Order: func(a, b *incident) int {
			return compareValues(b.f["sys_updated_on"]+fmt.Sprintf("%09s", b.f["sys_mod_count"]), a.f["sys_updated_on"]+fmt.Sprintf("%09s", a.f["sys_mod_count"]))
		},
		Read: func(in *incident) {
			last := map[string]string{}
			for _, e := range in.journal {
				last[e.Element] = e.CreatedBy + ": " + e.Value
			}
			l.Rows = append(l.Rows, []string{in.f["number"], in.f["short_description"],
				in.f["state"] + " " + stateNames[in.f["state"]], in.f["priority"], in.f["correlation_id"],
				in.f["sys_updated_on"], in.f["sys_updated_by"], in.f["sys_mod_count"], last["work_notes"], last["comments"]})
		}})
	st := s.hook.stats()
	h := s.hook.deliveries()
	note := fmt.Sprintf("Webhook: %d sent, %d retries, %d given up, %d waiting.", st.Sent, st.Retries, st.Failed, st.Pending)
	l.Notes = append(l.Notes, note)
	for i := len(h) - 1; i >= 0 && i >= len(h)-10; i-- {
		d := h[i]
		l.Notes = append(l.Notes, strings.TrimSpace(fmt.Sprintf("%s %s (mod %s) attempt %d: %d %s",
			d.At.Format(TimeLayout), d.Number, d.ModCnt, d.Attempt, d.Status, d.Error)))
	}
	return l
}

// Records is every incident as the Table API shows it with display values
// for the journal, in creation order, plus the webhook's counters.
func (s *Sim) Records() any {
	out := []map[string]string{}
	s.incs.Select(sim.Query[incident]{Read: func(in *incident) { out = append(out, in.view(nil, true)) }})
	return map[string]any{"total": len(out), "result": out, "webhook": s.hook.stats()}
}

// SeedOpts is the body of POST /seed: count incidents, short descriptions
// "<short_description> <n>", made by the integration user (no webhook).
type SeedOpts struct {
	Count            int    `json:"count"`
	ShortDescription string `json:"short_description"`
}

// Seed creates incidents in bulk (POST /seed); it returns the first and last numbers.
func (s *Sim) Seed(body []byte) (any, error) {
	var o SeedOpts
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, fmt.Errorf("the body is not a seed request such as {\"count\": 1000}: %w", err)
	}
	return s.SeedIncidents(o)
}

// SeedIncidents creates o.Count incidents.
func (s *Sim) SeedIncidents(o SeedOpts) (map[string]any, error) {
	if o.Count <= 0 || o.Count > 1_000_000 {
		return nil, fmt.Errorf("count is a number from 1 to 1000000")
	}
	if o.ShortDescription == "" {
		o.ShortDescription = "Seeded incident"
	}
	var first, last string
	for i := range o.Count {
		err := s.incs.Create(func(_ int, at time.Time) (*incident, []string, error) {
			in := s.newIncident(s.o.User, at)
			s.apply(in, map[string]string{"short_description": fmt.Sprintf("%s %d", o.ShortDescription, i+1)}, s.o.User, at, "insert")
			if first == "" {
				first = in.f["number"]
			}
			last = in.f["number"]
			return in, []string{in.f["sys_id"]}, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{"count": o.Count, "first": first, "last": last}, nil
}

// Reset forgets every incident and journal entry (numbers keep counting).
func (s *Sim) Reset() {
	s.incs.Reset()
	s.journal.Reset()
}
