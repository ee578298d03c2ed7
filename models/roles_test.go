package models

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// The rules, written out by hand from the domain (docs/domain.md), not from
// roles.go: each row is one (action, state) and says, for Admin, Manager,
// Analyst and Integration in that order, whether the role may do it there:
//
//	A  allowed
//	F  forbidden to this role (403): another role could
//	C  conflict (409): the record's state allows it to no role
//
// Admin pauses only Active, resumes only Paused, repairs anything but Off,
// replays any transaction not in flight (Sending, Sending Receipt), ignores
// anything but Complete and Ignored, replays HTTP requests already sent.
// Manager replays only Complete, Error and Ignored, ignores as Admin does,
// and never pauses, resumes or repairs. Analyst does none of these. The
// integration role only uses the inbound API: no UI at all. A role that is
// none of these (an intruder) may do nothing. Refusals over HTTP are
// handlers/matrix_test.go's; this is the pure table.
var rules = []struct {
	action Action
	state  RecordState
	roles  string // Admin, Manager, Analyst, Integration
}{
	{ActionReplay, Sending, "CCFF"},
	{ActionReplay, Received, "AFFF"},
	{ActionReplay, AwaitingReceipt, "AFFF"},
	{ActionReplay, SendingReceipt, "CCFF"},
	{ActionReplay, ReceivedReceipt, "AFFF"},
	{ActionReplay, Complete, "AAFF"},
	{ActionReplay, Queued, "AFFF"},
	{ActionReplay, TimedOut, "AFFF"},
	{ActionReplay, Error, "AAFF"},
	{ActionReplay, Ignored, "AAFF"},

	{ActionIgnore, Sending, "AAFF"},
	{ActionIgnore, Received, "AAFF"},
	{ActionIgnore, AwaitingReceipt, "AAFF"},
	{ActionIgnore, SendingReceipt, "AAFF"},
	{ActionIgnore, ReceivedReceipt, "AAFF"},
	{ActionIgnore, Complete, "CCFF"},
	{ActionIgnore, Queued, "AAFF"},
	{ActionIgnore, TimedOut, "AAFF"},
	{ActionIgnore, Error, "AAFF"},
	{ActionIgnore, Ignored, "CCFF"},

	{ActionPause, IntegrationActive, "AFFF"},
	{ActionPause, IntegrationPaused, "CFFF"},
	{ActionPause, IntegrationOff, "CFFF"},
	{ActionResume, IntegrationActive, "CFFF"},
	{ActionResume, IntegrationPaused, "AFFF"},
	{ActionResume, IntegrationOff, "CFFF"},
	{ActionRepair, IntegrationActive, "AFFF"},
	{ActionRepair, IntegrationPaused, "AFFF"},
	{ActionRepair, IntegrationOff, "CFFF"},

	{ActionReplayRequest, RequestPending, "CFFF"},
	{ActionReplayRequest, RequestReady, "CFFF"},
	{ActionReplayRequest, RequestOK, "AFFF"},
	{ActionReplayRequest, RequestError, "AFFF"},
	{ActionReplayRequest, RequestCancelled, "AFFF"},

	{ActionLoginUI, NoState, "AAAF"},
	{ActionUseAPI, NoState, "FFFA"},
	{ActionView, NoState, "AAAF"},
	{ActionViewActivity, NoState, "AAFF"},
	{ActionWorkTickets, NoState, "AFAF"},
	{ActionViewConfig, NoState, "AAFF"},
	{ActionConfigure, NoState, "AFFF"},
	{ActionManageUsers, NoState, "AFFF"},
	{ActionBulkTransactions, NoState, "AAFF"},
}

var ruleRoles = []Role{RoleAdmin, RoleManager, RoleAnalyst, RoleIntegration}

// TestCan checks Can against every row of the table for every role, and an
// unknown role against every row.
func TestCan(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range rules {
		require.Len(t, r.roles, len(ruleRoles))
		seen[string(r.action)+"/"+r.state.String()] = true
		for i, role := range append(ruleRoles, "intruder") {
			want := byte('F')
			if i < len(ruleRoles) {
				want = r.roles[i]
			}
			t.Run(fmt.Sprintf("%s/%s/%s", role, r.action, r.state), func(t *testing.T) {
				t.Parallel()
				err := Can(role, r.action, r.state)
				switch want {
				case 'A':
					require.NoError(t, err)
				case 'F':
					var fe *ForbiddenError
					require.True(t, errors.As(err, &fe), "want 403, got %v", err)
					require.True(t, errors.Is(err, ErrForbidden))
					require.NotEmpty(t, fe.Reason)
				case 'C':
					var ce *ConflictError
					require.True(t, errors.As(err, &ce), "want 409, got %v", err)
					require.True(t, errors.Is(err, ErrConflict))
					require.NotEmpty(t, ce.Reason)
				default:
					t.Fatalf("bad verdict %q", want)
				}
			})
		}
	}
	// The table covers every action in every state it can target.
	for _, a := range Actions {
		var states []RecordState
		switch a {
		case ActionReplay, ActionIgnore:
			for _, s := range TransportStates {
				states = append(states, s)
			}
		case ActionPause, ActionResume, ActionRepair:
			for _, s := range IntegrationStates {
				states = append(states, s)
			}
		case ActionReplayRequest:
			for _, s := range HTTPRequestStates {
				states = append(states, s)
			}
		default:
			states = []RecordState{NoState}
		}
		for _, s := range states {
			require.True(t, seen[string(a)+"/"+s.String()], "no rule for %s on %s", a, s)
		}
	}
}

func TestCanReasons(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		role   Role
		action Action
		state  RecordState
		want   string
	}{
		{"AnalystPause", RoleAnalyst, ActionPause, IntegrationActive, "The Analyst role may not pause; only Admins may."},
		{"ManagerReplayQueued", RoleManager, ActionReplay, Queued, "Managers may replay only Complete, Error or Ignored transactions; this one is Queued."},
		{"IgnoreIgnored", RoleAdmin, ActionIgnore, Ignored, "This transaction is already Ignored."},
		{"ReplaySending", RoleAdmin, ActionReplay, Sending, "This transaction is Sending; it cannot be replayed while it is Sending."},
		{"ResumeActive", RoleAdmin, ActionResume, IntegrationActive, "This integration is Active; only a Paused integration can be resumed."},
		{"ManagerIgnore", RoleAnalyst, ActionIgnore, Error, "The Analyst role may not ignore; only Admins and Managers may."},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Can(tc.role, tc.action, tc.state)
			require.EqualError(t, err, tc.want)
		})
	}
}
