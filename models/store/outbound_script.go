package store

import (
	"unifi/models"
	"unifi/models/script"
)

// The outbound scripts that run when a ticket change creates transactions
// (docs/scripting.md): the Advanced trigger condition and Source to Stage.
// They run in the ticket change's database transaction, before the bond is
// touched; a script cannot reach the database.

// outboundScript is a script as the outbound messages query returns it.
type outboundScript struct {
	ID      int64  `json:"id"`
	Point   string `json:"point"`
	Source  string `json:"source"`
	Version int64  `json:"version"`
}

// scriptTicket is what scripts see of a ticket.
func scriptTicket(t *models.Ticket) map[string]any {
	return map[string]any{"number": t.Number, "short_description": t.ShortDescription, "description": t.Description,
		"state": t.State, "priority": t.Priority, "urgency": t.Urgency, "impact": t.Impact,
		"assignment_group": t.AssignmentGroup, "work_notes": t.WorkNotes, "version": t.Version}
}

// outboundScripts runs tg's trigger condition (send reports its answer) and
// Source to Stage script on data, the mapped Stage. A failing script does not
// refuse the analyst's change: the transaction is created with the error in
// its Stage (models.StageScriptError) and the engine puts it in Error without
// sending, where an admin sees the script's name, line and message. A failing
// trigger condition sends, for the same reason: a change is never dropped
// silently.
func (s *Store) outboundScripts(tg *outboundTarget, t *models.Ticket, previous, data map[string]any) (stage map[string]any, logs []string, send bool) {
	in := script.Input{Ticket: scriptTicket(t), Previous: previous, Stage: data, Vars: tg.Vars.V}
	for _, sc := range tg.Scripts.V {
		if sc.Point != string(script.TriggerCondition) {
			continue
		}
		ok, out, err := s.scripts.Bool(tg.script(sc), in)
		logs = append(logs, out.Logs...)
		if err != nil {
			data[models.StageScriptError] = err.Error()
			return data, logs, true
		}
		if !ok {
			return nil, nil, false
		}
	}
	for _, sc := range tg.Scripts.V {
		if sc.Point != string(script.SourceToStage) {
			continue
		}
		m, out, err := s.scripts.Object(tg.script(sc), in, true)
		logs = append(logs, out.Logs...)
		switch {
		case err != nil:
			data[models.StageScriptError] = err.Error()
		case m != nil:
			data = m // returned a new Stage
		}
	}
	return data, logs, true
}

func (tg *outboundTarget) script(sc outboundScript) script.Script {
	p := script.Point(sc.Point)
	return script.Script{ID: sc.ID, Version: sc.Version, Point: p, Source: sc.Source, Name: tg.MessageName + " / " + p.Label()}
}
