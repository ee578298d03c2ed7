package models

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

type verdict int

const (
	allow verdict = iota
	forbid
	conflict
)

// expectTransaction restates SPEC §3-4 for Replay and Ignore: Admin replays
// anything not in flight (Sending, Sending Receipt); Manager replays only
// Complete, Error and Ignored; Ignore (Admin, Manager) is refused on Complete
// and Ignored; Analyst and Integration may do neither.
func expectTransaction(role Role, action Action, s TransportState) verdict {
	if role != RoleAdmin && role != RoleManager {
		return forbid
	}
	switch action {
	case ActionReplay:
		if s == Sending || s == SendingReceipt {
			return conflict
		}
		if role == RoleManager && s != Complete && s != Error && s != Ignored {
			return forbid
		}
	case ActionIgnore:
		if s == Complete || s == Ignored {
			return conflict
		}
	}
	return allow
}

// expectIntegration restates SPEC §3: Admin only; Pause only Active, Resume
// only Paused, Repair anything but Off.
func expectIntegration(role Role, action Action, s IntegrationState) verdict {
	if role != RoleAdmin {
		return forbid
	}
	switch {
	case action == ActionPause && s != IntegrationActive,
		action == ActionResume && s != IntegrationPaused,
		action == ActionRepair && s == IntegrationOff:
		return conflict
	}
	return allow
}

func expectPlain(role Role, action Action) verdict {
	want := map[Action][]Role{
		ActionLoginUI:          {RoleAdmin, RoleManager, RoleAnalyst},
		ActionUseAPI:           {RoleIntegration},
		ActionView:             {RoleAdmin, RoleManager, RoleAnalyst},
		ActionViewActivity:     {RoleAdmin, RoleManager},
		ActionWorkTickets:      {RoleAdmin, RoleAnalyst},
		ActionConfigure:        {RoleAdmin},
		ActionManageUsers:      {RoleAdmin},
		ActionBulkTransactions: {RoleAdmin, RoleManager},
	}[action]
	for _, r := range want {
		if r == role {
			return allow
		}
	}
	return forbid
}

func checkVerdict(t *testing.T, want verdict, err error) {
	t.Helper()
	switch want {
	case allow:
		require.NoError(t, err)
	case forbid:
		var fe *ForbiddenError
		require.True(t, errors.As(err, &fe), "want 403, got %v", err)
		require.True(t, errors.Is(err, ErrForbidden))
		require.NotEmpty(t, fe.Reason)
	case conflict:
		var ce *ConflictError
		require.True(t, errors.As(err, &ce), "want 409, got %v", err)
		require.True(t, errors.Is(err, ErrConflict))
		require.NotEmpty(t, ce.Reason)
	}
}

// TestCan tries every (role, action, state) triple.
func TestCan(t *testing.T) {
	t.Parallel()
	roles := append([]Role{"intruder"}, Roles...)
	triples := 0
	for _, role := range roles {
		for _, action := range []Action{ActionReplay, ActionIgnore} {
			for _, s := range TransportStates {
				triples++
				t.Run(fmt.Sprintf("%s/%s/%s", role, action, s), func(t *testing.T) {
					t.Parallel()
					checkVerdict(t, expectTransaction(role, action, s), Can(role, action, s))
				})
			}
		}
		for _, action := range []Action{ActionPause, ActionResume, ActionRepair} {
			for _, s := range IntegrationStates {
				triples++
				t.Run(fmt.Sprintf("%s/%s/%s", role, action, s), func(t *testing.T) {
					t.Parallel()
					checkVerdict(t, expectIntegration(role, action, s), Can(role, action, s))
				})
			}
		}
		for _, s := range HTTPRequestStates {
			triples++
			t.Run(fmt.Sprintf("%s/replay request/%s", role, s), func(t *testing.T) {
				t.Parallel()
				want := allow
				switch {
				case role != RoleAdmin:
					want = forbid
				case s == RequestPending || s == RequestReady:
					want = conflict
				}
				checkVerdict(t, want, Can(role, ActionReplayRequest, s))
			})
		}
		for _, action := range []Action{ActionLoginUI, ActionUseAPI, ActionView, ActionViewActivity,
			ActionWorkTickets, ActionConfigure, ActionManageUsers, ActionBulkTransactions} {
			triples++
			t.Run(fmt.Sprintf("%s/%s", role, action), func(t *testing.T) {
				t.Parallel()
				checkVerdict(t, expectPlain(role, action), Can(role, action, NoState))
			})
		}
	}
	require.Equal(t, len(roles)*(2*10+3*3+5+8), triples)
	require.Len(t, Actions, 2+3+1+8, "every action is covered above")
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
