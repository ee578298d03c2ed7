package handlers_test

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// TestProgressStreamTakesNoTurn: with one page turn (PAGE_CONCURRENCY=1), a
// Resume's progress stream stays open and pages still answer at once; were
// the stream holding the turn, the page would wait 10 s and answer 503.
func TestProgressStreamTakesNoTurn(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, &handlerstest.Opts{Env: map[string]string{"PAGE_CONCURRENCY": "1"}})
	require.Equal(t, 1, app.Config.PageConcurrency)
	ctx := t.Context()
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)
	admin := app.Login(t, "admin", "admin-demo-1")
	require.Equal(t, http.StatusSeeOther, admin.PostForm(fmt.Sprintf("/integrations/%d/pause", in.ID), nil).StatusCode)
	res := admin.PostForm(fmt.Sprintf("/integrations/%d/resume", in.ID), nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	_, job, ok := strings.Cut(res.Header.Get("Location"), "job=")
	require.True(t, ok, "the resume names its job: %s", res.Header.Get("Location"))

	// No engine runs in this app: the job stays queued and its stream open.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, app.Server.URL+"/bulk-jobs/"+job+"/events", nil)
	require.NoError(t, err)
	stream, err := admin.HTTP.Do(req)
	require.NoError(t, err)
	defer stream.Body.Close()
	require.Equal(t, http.StatusOK, stream.StatusCode)
	line, err := bufio.NewReader(stream.Body).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "event: progress\n", line, "the stream has started")

	for _, path := range []string{"/", fmt.Sprintf("/integrations/%d", in.ID), "/transactions"} {
		require.Equal(t, http.StatusOK, admin.Get(path).StatusCode, path)
	}
}
