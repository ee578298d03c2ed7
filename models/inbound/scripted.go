package inbound

// Scripted is what an integration's inbound message scripts (models/webhook,
// for the raw webhook route and polled items) decided about a request besides
// the envelope they made: a Stage to Target's reject(...) and the log(...)
// lines of the scripts that ran. The envelope is the wire format and has no
// room for either, so they travel beside it, in the request's RequestMeta.
type Scripted struct {
	// Rejected, when not empty, rejects the message with this process error:
	// an update is recorded as a Rejected transaction (the ticket unchanged,
	// the bond showing the error), a create is refused ("Message rejected: ...",
	// 422): there is no ticket to hold it.
	Rejected string
	// Logs are the scripts' log(...) lines in the order they ran, at most
	// MaxScriptLogLines (each already bounded by the script engine). They are
	// written to the transaction's log when the integration attaches logs.
	Logs []string
}

// MaxScriptLogLines is how many script log lines one inbound message keeps,
// over all the scripts that ran for it.
const MaxScriptLogLines = 100

// AddLogs appends lines, keeping at most MaxScriptLogLines.
func (s *Scripted) AddLogs(lines []string) {
	if room := MaxScriptLogLines - len(s.Logs); room < len(lines) {
		lines = lines[:max(room, 0)]
	}
	s.Logs = append(s.Logs, lines...)
}

// rejected is the scripts' rejection of the message, "" when none.
func (rc *inboundCall) rejected() string {
	if rc.meta.Scripted == nil {
		return ""
	}
	return rc.meta.Scripted.Rejected
}

// scriptLogs are the scripts' log lines of the message.
func (rc *inboundCall) scriptLogs() []string {
	if rc.meta.Scripted == nil {
		return nil
	}
	return rc.meta.Scripted.Logs
}
