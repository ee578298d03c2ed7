package jira

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"unifi/internal/sim"
)

// Listing is the issues as a table, the most recently updated first.
func (s *Sim) Listing() sim.Listing {
	l := sim.Listing{Title: "Jira simulator: issues",
		Columns: []string{"Key", "Summary", "Status", "Priority", "Updated", "Comments", "Last comment"}}
	s.issues.Select(sim.Query[issue]{Order: func(a, b *issue) int { return b.Updated.Compare(a.Updated) },
		Read: func(is *issue) {
			last := ""
			if n := len(is.Comments); n > 0 {
				last = is.Comments[n-1].Author + ": " + is.Comments[n-1].Body
			}
			l.Rows = append(l.Rows, []string{is.Key, is.Summary, is.Status.Name, priorities[is.Priority],
				is.Updated.Format(TimeLayout), strconv.Itoa(len(is.Comments)), last})
		}})
	return l
}

// Records is every issue as the API shows it, in creation order.
func (s *Sim) Records() any {
	out := []map[string]any{}
	s.issues.Select(sim.Query[issue]{Read: func(is *issue) { out = append(out, is.view(place{loc: s.o.Location}, nil)) }})
	return map[string]any{"total": len(out), "issues": out}
}

// SeedOpts is the body of POST /seed: count issues in project, summaries
// "<summary> <n>", updated (and created) at updated_from + n * step_ms when
// updated_from is given, else at the time of the call.
type SeedOpts struct {
	Count       int       `json:"count"`
	Project     string    `json:"project"`
	Summary     string    `json:"summary"`
	UpdatedFrom time.Time `json:"updated_from"`
	StepMS      int       `json:"step_ms"`
}

// Seed creates issues in bulk (POST /seed); it returns the first and last keys.
func (s *Sim) Seed(body []byte) (any, error) {
	var o SeedOpts
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, fmt.Errorf("the body is not a seed request such as {\"count\": 1000}: %w", err)
	}
	return s.SeedIssues(o)
}

// SeedIssues creates o.Count issues.
func (s *Sim) SeedIssues(o SeedOpts) (map[string]any, error) {
	if o.Count <= 0 || o.Count > 1_000_000 {
		return nil, fmt.Errorf("count is a number from 1 to 1000000")
	}
	if o.Project == "" {
		o.Project = s.o.Projects[0]
	}
	if _, ok := s.projects[o.Project]; !ok {
		return nil, fmt.Errorf("project %q does not exist (the simulator has %v)", o.Project, s.o.Projects)
	}
	if o.Summary == "" {
		o.Summary = "Seeded issue"
	}
	var first, last string
	for i := range o.Count {
		err := s.issues.Create(func(_ int, at time.Time) (*issue, []string, error) {
			if !o.UpdatedFrom.IsZero() {
				at = o.UpdatedFrom.UTC().Add(time.Duration(i*o.StepMS) * time.Millisecond)
			}
			s.nextKey[o.Project]++
			s.nextCom++
			is := &issue{ID: s.nextCom, Key: fmt.Sprintf("%s-%d", o.Project, s.nextKey[o.Project]), Project: o.Project,
				Summary: fmt.Sprintf("%s %d", o.Summary, i+1), IssueType: "10001", Priority: 3, Status: StatusToDo,
				Reporter: s.o.User, Created: at, Updated: at}
			if first == "" {
				first = is.Key
			}
			last = is.Key
			return is, []string{is.Key, strconv.Itoa(is.ID)}, nil
		})
		if err != nil {
			return nil, err
		}
	}
	return map[string]any{"count": o.Count, "first": first, "last": last}, nil
}

// Reset forgets every issue (keys keep counting, so none is reused).
func (s *Sim) Reset() { s.issues.Reset() }
