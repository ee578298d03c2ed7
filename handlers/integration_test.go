package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
)

func TestIntegrationPage(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)

	t.Run("AdminSeesPauseAndRepair", func(t *testing.T) {
		t.Parallel()
		page := app.Login(t, "admin", "admin-demo-1").Get("/integrations/1")
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Equal(t, "demo", page.TestID(t, "integration-name").Text())
		require.Equal(t, "Active", page.TestID(t, "integration-state").Text())
		require.Equal(t, 1, page.TestID(t, "pause").Length())
		require.Equal(t, 1, page.TestID(t, "repair").Length())
		require.Equal(t, 0, page.TestID(t, "resume").Length(), "Resume only on a Paused integration")
		require.Equal(t, 10, page.TestID(t, "state-counts").Find("li").Length(), "a count for every state")
		require.Equal(t, "0", strings.TrimSpace(page.TestID(t, "count-5").Find(".n").Text()))
		require.Contains(t, page.TestID(t, "messages").Text(), "CreateIncident")
	})

	t.Run("AnalystSeesNoActions", func(t *testing.T) {
		t.Parallel()
		page := app.Login(t, "analyst", "analyst-demo-1").Get("/integrations/1")
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.Equal(t, 0, page.TestID(t, "header-actions").Find("button").Length())
		require.Equal(t, 0, page.TestID(t, "nav-users").Length(), "the Users page is for admins")
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		c := app.Login(t, "manager", "manager-demo-1")
		for _, path := range []string{"/integrations/999", "/integrations/abc", "/integrations/-1"} {
			res := c.Get(path)
			require.Equal(t, http.StatusNotFound, res.StatusCode, path)
			require.NotEmpty(t, res.TestID(t, "error-message").Text())
		}
	})
}
