package models

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// PollProcessor is one kind of poll of an integration (docs/pollers.md): its
// Setup script makes the run's starting state from the high-water mark, its
// Request script makes each HTTP request, its Response script reads each
// answer into items (inbound messages), the next page, the mark after each
// item and further polls to start (parent/child polls).
type PollProcessor struct {
	ID             int64
	IntegrationID  int64
	Name           string
	SetupScript    string
	RequestScript  string
	ResponseScript string
	Version        int `gorm:"default:1"` // the Designer's edit version (models/designer)
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// AuditRecord names a processor in the activity log.
func (p PollProcessor) AuditRecord() (string, string) { return "poll processor", p.Name }

// Poller runs a poll processor of an integration on a schedule: every EveryS
// seconds, or at the times of a cron expression. Its running state (mark,
// lease, next run, back-off) is in the same row but is not configuration:
// PollerState reads it.
type Poller struct {
	ID            int64
	IntegrationID int64
	ProcessorID   int64
	Name          string
	EveryS        *int `gorm:"column:every_s"`
	Cron          string
	Active        bool
	RunAsUserID   *int64 // nil: the active connection's inbound account
	Version       int    `gorm:"default:1"` // the Designer's edit version (models/designer)
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// TableName: the GORM model covers only the configuration columns.
func (Poller) TableName() string { return "pollers" }

// AuditRecord names a poller in the activity log.
func (p Poller) AuditRecord() (string, string) { return "poller", p.Name }

// Schedule is the poller's schedule, parsed.
func (p *Poller) Schedule() (Schedule, error) { return ParseSchedule(p.EveryS, p.Cron) }

// PollerState is a poller's running state, kept by the poll runner.
type PollerState struct {
	PollerID   int64
	Mark       JSON[map[string]any]
	NextRunAt  time.Time
	LeaseOwner *string
	LeaseUntil *time.Time
	Failures   int
	LastError  string
	LastRunAt  *time.Time
}

// Schedule says when a poller runs next.
type Schedule struct {
	Every time.Duration // > 0: every so long
	Cron  cron.Schedule // otherwise: a cron expression
}

// cronParser reads the standard five fields (minute hour day month weekday)
// and the descriptors (@hourly, @every 30s).
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule reads a poller's schedule: exactly one of every (seconds) and
// a cron expression.
func ParseSchedule(everyS *int, expr string) (Schedule, error) {
	switch {
	case everyS != nil && expr != "":
		return Schedule{}, fmt.Errorf("give either an interval or a cron expression, not both")
	case everyS != nil:
		if *everyS < 1 || *everyS > 86400 {
			return Schedule{}, fmt.Errorf("the interval is from 1 second to 86400 (a day)")
		}
		return Schedule{Every: time.Duration(*everyS) * time.Second}, nil
	case expr != "":
		s, err := cronParser.Parse(expr)
		if err != nil {
			return Schedule{}, fmt.Errorf("not a cron expression (minute hour day month weekday, or @hourly, @every 30s): %w", err)
		}
		return Schedule{Cron: s}, nil
	}
	return Schedule{}, fmt.Errorf("give an interval in seconds or a cron expression")
}

// Next is the time of the next run after a run that ended at now (the
// database's clock).
func (s Schedule) Next(now time.Time) time.Time {
	if s.Every > 0 {
		return now.Add(s.Every)
	}
	return s.Cron.Next(now)
}

// PollBackoff is how long a poller that failed failures times in a row waits
// before its next run: 10 s doubled per failure, at most an hour, and never
// sooner than its schedule would run it.
func PollBackoff(failures int, scheduled time.Duration) time.Duration {
	d := 10 * time.Second
	for i := 1; i < failures && d < time.Hour; i++ {
		d *= 2
	}
	return max(min(d, time.Hour), scheduled)
}

// PollState is where a poll request is.
type PollState string

// Poll request states.
const (
	PollRunning PollState = "Running"
	PollDone    PollState = "Done"
	PollError   PollState = "Error"
)

// PollRequest is one run of a poller, or a child poll a Response started.
type PollRequest struct {
	ID             int64
	PollerID       int64
	IntegrationID  int64
	ProcessorID    *int64
	ParentID       *int64
	State          PollState
	Owner          string
	StartedAt      time.Time
	FinishedAt     *time.Time
	DurationMS     *int `gorm:"column:duration_ms"`
	HTTPRequests   int  `gorm:"column:http_requests"`
	ItemsFound     int
	ItemsProcessed int
	ItemsRefused   int
	ItemsDuplicate int
	MarkBefore     json.RawMessage `gorm:"type:jsonb"`
	MarkAfter      json.RawMessage `gorm:"type:jsonb"`
	Error          string
}
