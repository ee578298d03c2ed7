package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/internal/fixture"
	"unifi/models"
	"unifi/models/account"
)

// Two servers on one database, each keeping the users it has read: a change
// made through one must reach the other's session checks promptly.
func TestUserChangesReachEveryServer(t *testing.T) {
	t.Parallel()
	a := handlerstest.New(t, nil)
	b := handlerstest.New(t, &handlerstest.Opts{DatabaseURL: a.DatabaseURL})
	ctx := context.Background()
	admin := fixture.User(t, a.Store.DB(ctx), models.RoleAdmin)
	// user creates a user of its own for a subtest (the subtests run at once).
	user := func(t *testing.T, name string, role models.Role) *models.User {
		t.Helper()
		u, err := a.Accounts.CreateUser(ctx, models.ActorOf(admin, "127.0.0.1"),
			account.NewUserOpts{Name: name, Role: role, Password: "password-" + name})
		require.NoError(t, err)
		return u
	}

	// eventually waits, at most 10 s, until the client's GET of /integrations
	// on server a answers status, looking again whenever a's user cache
	// handles a change.
	eventually := func(t *testing.T, c *handlerstest.Client, status int, msg string) {
		t.Helper()
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		for {
			changed := a.Users.Changed()
			if c.Get("/integrations").StatusCode == status {
				return
			}
			select {
			case <-changed:
			case <-deadline.C:
				require.FailNow(t, "timed out", msg)
			}
		}
	}

	t.Run("Deactivated", func(t *testing.T) {
		t.Parallel()
		u := user(t, "deactivated", models.RoleAnalyst)
		analyst := a.Login(t, u.Name, "password-"+u.Name)
		require.Equal(t, http.StatusOK, analyst.Get("/integrations").StatusCode, "read once: server a keeps the user")
		admin := b.Login(t, "admin", "admin-demo-1")
		res := admin.PostForm(fmt.Sprintf("/users/%d/active", u.ID), url.Values{"active": {"false"}})
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		eventually(t, analyst, http.StatusSeeOther, "server a refuses the disabled user")
		require.Contains(t, analyst.Get("/integrations").Header.Get("Location"), "/login")
	})

	t.Run("LoggedOutElsewhere", func(t *testing.T) {
		t.Parallel()
		u := user(t, "two-devices", models.RoleManager)
		laptop := a.Login(t, u.Name, "password-"+u.Name)
		phone := a.Login(t, u.Name, "password-"+u.Name)
		require.Equal(t, http.StatusOK, phone.Get("/integrations").StatusCode, "read once: server a keeps the user")
		// The laptop's logout reaches server b; it ends every session of the user.
		require.Equal(t, http.StatusSeeOther, laptop.On(b).PostForm("/logout", nil).StatusCode)
		eventually(t, phone, http.StatusSeeOther, "server a ends the phone's session")
	})

	t.Run("SameServer", func(t *testing.T) {
		t.Parallel()
		u := user(t, "same-server", models.RoleAnalyst)
		first := a.Login(t, u.Name, "password-"+u.Name)
		other := a.Login(t, u.Name, "password-"+u.Name)
		require.Equal(t, http.StatusOK, other.Get("/integrations").StatusCode)
		require.Equal(t, http.StatusSeeOther, first.PostForm("/logout", nil).StatusCode)
		// The server that made the change forgets the user at once.
		require.Equal(t, http.StatusSeeOther, other.Get("/integrations").StatusCode)
	})
}
