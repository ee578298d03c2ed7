package designer

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"unifi/models"
)

// IntegrationForm is an integration as typed into its form: every value as
// text, so that each can be refused in plain words next to its field.
type IntegrationForm struct {
	Name          string
	Description   string
	ProcessID     string
	SyncTimeoutS  string
	AsyncTimeoutS string
	RetryLimit    string
	RetryDelayS   string
	AttachLogs    bool
	HeartbeatS    string
}

// FormOf is the form of a stored integration (for the edit page).
func FormOf(in *models.Integration) IntegrationForm {
	return IntegrationForm{Name: in.Name, Description: in.Description, ProcessID: strconv.FormatInt(in.ProcessID, 10),
		SyncTimeoutS: strconv.Itoa(in.SyncTimeoutS), AsyncTimeoutS: strconv.Itoa(in.AsyncTimeoutS),
		RetryLimit: strconv.Itoa(in.RetryLimit), RetryDelayS: strconv.Itoa(in.RetryDelayS), AttachLogs: in.AttachLogs,
		HeartbeatS: strconv.Itoa(in.HeartbeatS)}
}

// NewIntegrationForm is the form of a new integration: the defaults of
// docs/domain.md.
func NewIntegrationForm() IntegrationForm {
	return IntegrationForm{SyncTimeoutS: "30", AsyncTimeoutS: "300", RetryLimit: "3", RetryDelayS: "5", AttachLogs: true,
		HeartbeatS: "0"}
}

var integrationName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// The limits of an integration's numbers (the CHECKs of migration 00001).
const (
	maxSyncTimeoutS  = 600
	maxAsyncTimeoutS = 7 * 24 * 3600
	maxRetryLimit    = 100
	maxRetryDelayS   = 24 * 3600
	maxHeartbeatS    = 24 * 3600
	maxDescription   = 2000
)

// ParseIntegration checks every value of f and applies it to in (a new
// integration or a copy of the stored one). It returns a
// *models.ValidationError with a message in plain words per refused field.
// Pure: whether the process exists and the name is free is the database's
// to say (CreateIntegration, UpdateIntegration).
func ParseIntegration(f IntegrationForm, in *models.Integration) error {
	var ve models.ValidationError
	name := strings.TrimSpace(f.Name)
	switch {
	case name == "":
		ve.Add("name", "Give the integration a name.")
	case !integrationName.MatchString(name):
		ve.Add("name", "Use up to 64 letters, digits, - and _ (no spaces): it is part of the inbound API's address.")
	}
	if p := models.TextProblem(f.Description); p != "" {
		ve.Add("description", p)
	} else if utf8.RuneCountInString(f.Description) > maxDescription {
		ve.Add("description", fmt.Sprintf("Use at most %d characters.", maxDescription))
	}
	pid, err := strconv.ParseInt(strings.TrimSpace(f.ProcessID), 10, 64)
	if err != nil || pid <= 0 {
		ve.Add("process_id", "Choose the process (the kind of ticket) this integration carries.")
	}
	num := func(field, raw, what string, lo, hi int) int {
		n, err := strconv.Atoi(strings.TrimSpace(raw))
		switch {
		case strings.TrimSpace(raw) == "":
			ve.Add(field, fmt.Sprintf("Enter %s.", what))
		case err != nil:
			ve.Add(field, fmt.Sprintf("Enter %s as a whole number, such as %d.", what, max(lo, 1)))
		case n < lo || n > hi:
			ve.Add(field, fmt.Sprintf("Enter %s from %d to %d.", what, lo, hi))
		}
		return n
	}
	sync := num("sync_timeout_s", f.SyncTimeoutS, "the sync timeout in seconds", 1, maxSyncTimeoutS)
	async := num("async_timeout_s", f.AsyncTimeoutS, "the async timeout in seconds", 1, maxAsyncTimeoutS)
	limit := num("retry_limit", f.RetryLimit, "the retry limit", 0, maxRetryLimit)
	delay := num("retry_delay_s", f.RetryDelayS, "the retry delay in seconds", 0, maxRetryDelayS)
	beat := num("heartbeat_s", f.HeartbeatS, "the heartbeat frequency in seconds (0 = off)", 0, maxHeartbeatS)
	if err := ve.Err(); err != nil {
		return err
	}
	in.Name, in.Description, in.ProcessID = name, f.Description, pid
	in.SyncTimeoutS, in.AsyncTimeoutS, in.RetryLimit, in.RetryDelayS, in.HeartbeatS = sync, async, limit, delay, beat
	in.AttachLogs = f.AttachLogs
	return nil
}
