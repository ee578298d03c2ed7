package components

import (
	"fmt"
	"time"

	"unifi/models"
	"unifi/models/query"
)

// BulkJobView is a bulk job's progress as the dialog shows it.
type BulkJobView struct {
	Job      models.BulkJob
	Failures []query.BulkJobFailure
	Now      time.Time
	// Integration names the integration for resume and repair.
	Integration string
}

// BulkJobTitle is the progress dialog's title for a kind of job.
func BulkJobTitle(k models.BulkJobKind) string {
	switch k {
	case models.BulkResume:
		return "Resume Integration Worker"
	case models.BulkRepair:
		return "Repair Integration Worker"
	case models.BulkReplay:
		return "Replay Transactions"
	case models.BulkIgnore:
		return "Ignore Transactions"
	}
	return "Bulk job"
}

// Finished reports whether the job has stopped.
func (v BulkJobView) Finished() bool { return v.Job.State != models.BulkRunning }

// Processed is done plus failed.
func (v BulkJobView) Processed() int { return v.Job.Done + v.Job.Failed }

// Estimate says how long the rest should take at the rate so far.
func (v BulkJobView) Estimate() string {
	if v.Finished() {
		end := v.Job.UpdatedAt
		if v.Job.FinishedAt != nil {
			end = *v.Job.FinishedAt
		}
		return "took " + Duration(end.Sub(v.Job.CreatedAt))
	}
	p := v.Processed()
	elapsed := v.Now.Sub(v.Job.CreatedAt)
	if p == 0 || elapsed <= 0 {
		return "estimating…"
	}
	left := time.Duration(float64(elapsed) / float64(p) * float64(v.Job.Total-p))
	return "about " + Duration(left+time.Second-1) + " left"
}

// Summary is the closing sentence of a finished job.
func (v BulkJobView) Summary() string {
	verb := map[models.BulkJobKind]string{models.BulkResume: "sent", models.BulkRepair: "replayed",
		models.BulkReplay: "replayed", models.BulkIgnore: "ignored"}[v.Job.Kind]
	switch v.Job.State {
	case models.BulkComplete:
		if v.Job.Failed == 0 {
			return fmt.Sprintf("Finished: all %d %s.", v.Job.Done, verb)
		}
		return fmt.Sprintf("Finished: %d %s, %d failed (listed below).", v.Job.Done, verb, v.Job.Failed)
	case models.BulkCancelled:
		return fmt.Sprintf("Cancelled after %d %s, %d failed.", v.Job.Done, verb, v.Job.Failed)
	case models.BulkFailed:
		msg := fmt.Sprintf("Stopped: %d %s, %d failed.", v.Job.Done, verb, v.Job.Failed)
		if v.Job.Error != "" {
			msg += " " + v.Job.Error
		}
		return msg
	}
	return ""
}

// EventsURL is the job's Server-Sent Events stream.
func (v BulkJobView) EventsURL() string { return fmt.Sprintf("/bulk-jobs/%d/events", v.Job.ID) }
