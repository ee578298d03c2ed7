package models

import (
	"fmt"
	"strings"
)

// Role is what a user may do (docs/domain.md, "Roles").
type Role string

// Roles.
const (
	RoleAdmin       Role = "admin"
	RoleManager     Role = "manager"
	RoleAnalyst     Role = "analyst"
	RoleIntegration Role = "integration"
)

// Roles lists every role.
var Roles = []Role{RoleAdmin, RoleManager, RoleAnalyst, RoleIntegration}

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

// Title is the role's name for people ("Admin").
func (r Role) Title() string {
	if r == "" {
		return ""
	}
	return strings.ToUpper(string(r[:1])) + string(r[1:])
}

// Action is something a user asks to do.
type Action string

// Actions. Pause, Resume and Repair act on an integration; Replay and Ignore
// on a transaction; ReplayRequest on an HTTP request; the rest on no record state.
const (
	ActionLoginUI          Action = "log in to the UI"
	ActionUseAPI           Action = "use the inbound API"
	ActionView             Action = "view transactions, bonds and requests"
	ActionViewActivity     Action = "view the activity log"
	ActionWorkTickets      Action = "create and edit tickets"
	ActionViewConfig       Action = "view integration configuration"
	ActionConfigure        Action = "change integration configuration"
	ActionManageUsers      Action = "manage users"
	ActionPause            Action = "pause"
	ActionResume           Action = "resume"
	ActionRepair           Action = "repair"
	ActionReplay           Action = "replay"
	ActionIgnore           Action = "ignore"
	ActionReplayRequest    Action = "replay request"
	ActionBulkTransactions Action = "replay or ignore transactions in bulk"
)

// Actions lists every action.
var Actions = []Action{ActionLoginUI, ActionUseAPI, ActionView, ActionViewActivity, ActionWorkTickets,
	ActionViewConfig, ActionConfigure, ActionManageUsers, ActionPause, ActionResume, ActionRepair, ActionReplay, ActionIgnore,
	ActionReplayRequest, ActionBulkTransactions}

// RecordState is the state of the record an action targets: a
// TransportState, an IntegrationState, an HTTPRequestState, or NoState.
type RecordState interface{ String() string }

// NoState is the record state for actions that do not depend on one.
type noState struct{}

func (noState) String() string { return "" }

// NoState targets actions that depend on no record state.
var NoState RecordState = noState{}

// managerReplayable are the only states a Manager may replay (docs/domain.md, "The queue per bond").
var managerReplayable = map[TransportState]bool{Complete: true, Error: true, Ignored: true}

// roleActions says which roles may take each action at all.
var roleActions = map[Action][]Role{
	ActionLoginUI:          {RoleAdmin, RoleManager, RoleAnalyst},
	ActionUseAPI:           {RoleIntegration},
	ActionView:             {RoleAdmin, RoleManager, RoleAnalyst},
	ActionViewActivity:     {RoleAdmin, RoleManager},
	ActionWorkTickets:      {RoleAdmin, RoleAnalyst},
	ActionViewConfig:       {RoleAdmin, RoleManager},
	ActionConfigure:        {RoleAdmin},
	ActionManageUsers:      {RoleAdmin},
	ActionPause:            {RoleAdmin},
	ActionResume:           {RoleAdmin},
	ActionRepair:           {RoleAdmin},
	ActionReplay:           {RoleAdmin, RoleManager},
	ActionIgnore:           {RoleAdmin, RoleManager},
	ActionReplayRequest:    {RoleAdmin},
	ActionBulkTransactions: {RoleAdmin, RoleManager},
}

// Can says whether role may take action on a record in state. It returns nil,
// a *ForbiddenError when the role may not do this here (HTTP 403), or a
// *ConflictError when no role could do it in this state (HTTP 409). The
// reason is written for the person who asked.
func Can(role Role, action Action, state RecordState) error {
	if err := RoleMay(role, action); err != nil {
		return err
	}
	switch action {
	case ActionPause, ActionResume, ActionRepair:
		s, ok := state.(IntegrationState)
		if !ok {
			return &ConflictError{Reason: fmt.Sprintf("Cannot %s: no integration given.", action)}
		}
		return integrationStateAllows(action, s)
	case ActionReplay, ActionIgnore:
		s, ok := state.(TransportState)
		if !ok {
			return &ConflictError{Reason: fmt.Sprintf("Cannot %s: no transaction given.", action)}
		}
		return transactionStateAllows(role, action, s)
	case ActionReplayRequest:
		s, ok := state.(HTTPRequestState)
		if !ok {
			return &ConflictError{Reason: "Cannot replay: no HTTP request given."}
		}
		if s == RequestPending || s == RequestReady {
			return &ConflictError{Reason: fmt.Sprintf("This HTTP request is %s; it has not been sent yet, so there is nothing to replay.", s)}
		}
	}
	return nil
}

// RoleMay says whether role may ever take action, whatever the record's
// state: nil or a *ForbiddenError. Routes are gated with it.
func RoleMay(role Role, action Action) error {
	allowed, known := roleActions[action]
	if !known {
		return &ForbiddenError{Reason: fmt.Sprintf("Unknown action %q.", action)}
	}
	if !hasRole(allowed, role) {
		return &ForbiddenError{Reason: fmt.Sprintf("%s may not %s; only %s may.", roleName(role), action,
			roleList(allowed))}
	}
	return nil
}

func integrationStateAllows(action Action, s IntegrationState) error {
	switch action {
	case ActionPause:
		if s != IntegrationActive {
			return &ConflictError{Reason: fmt.Sprintf("This integration is %s; only an Active integration can be paused.", s)}
		}
	case ActionResume:
		if s != IntegrationPaused {
			return &ConflictError{Reason: fmt.Sprintf("This integration is %s; only a Paused integration can be resumed.", s)}
		}
	case ActionRepair:
		if s == IntegrationOff {
			return &ConflictError{Reason: "This integration is Off; turn it on before repairing it."}
		}
	}
	return nil
}

func transactionStateAllows(role Role, action Action, s TransportState) error {
	event := EventIgnore
	if action == ActionReplay {
		event = EventReplay
	}
	if _, err := Next(s, event); err != nil {
		if s == Complete || s == Ignored {
			return &ConflictError{Reason: fmt.Sprintf("This transaction is already %s.", s)}
		}
		return &ConflictError{Reason: fmt.Sprintf("This transaction is %s; it cannot be %s while it is %s.",
			s, pastTense(action), s)}
	}
	if action == ActionReplay && role == RoleManager && !managerReplayable[s] {
		return &ForbiddenError{Reason: fmt.Sprintf("Managers may replay only Complete, Error or Ignored transactions; this one is %s.", s)}
	}
	return nil
}

func pastTense(a Action) string {
	if a == ActionReplay {
		return "replayed"
	}
	return "ignored"
}

func hasRole(roles []Role, r Role) bool {
	for _, x := range roles {
		if x == r {
			return true
		}
	}
	return false
}

func roleName(r Role) string {
	if !r.Valid() {
		return "An unknown role"
	}
	return "The " + r.Title() + " role"
}

func roleList(roles []Role) string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = r.Title() + "s"
	}
	if len(names) == 1 {
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}
