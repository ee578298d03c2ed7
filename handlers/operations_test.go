package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
)

// TestOperationsRefusedOnServer: a button a user may not use is not shown,
// and a direct POST is refused with the reason (403 for the role, 409 when
// the state does not allow it).
func TestOperationsRefusedOnServer(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	admin := bt.app.Login(t, "admin", "admin-demo-1")
	manager := bt.app.Login(t, "manager", "manager-demo-1")
	analyst := bt.app.Login(t, "analyst", "analyst-demo-1")

	t.Run("Forbidden", func(t *testing.T) {
		res := manager.PostForm(fmt.Sprintf("/integrations/%d/pause", bt.in.ID), nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-message").Text(), "only Admins may")
		res = analyst.PostForm(fmt.Sprintf("/transactions/%d/ignore", bt.broken.ID), nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		res = manager.PostForm(fmt.Sprintf("/transactions/%d/replay", bt.queued.ID), nil)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, res.TestID(t, "error-message").Text(), "Managers may replay only Complete, Error or Ignored")
		res = analyst.PostForm("/transactions/bulk", url.Values{"kind": {"ignore"}, "id": {fmt.Sprint(bt.broken.ID)}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
	})

	t.Run("ConflictWhenStateChanged", func(t *testing.T) {
		res := manager.PostForm(fmt.Sprintf("/transactions/%d/ignore", bt.queued.ID), nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		res = admin.PostForm(fmt.Sprintf("/transactions/%d/ignore", bt.queued.ID), nil)
		require.Equal(t, http.StatusConflict, res.StatusCode)
		require.Equal(t, "This transaction is already Ignored.", strings.TrimSpace(res.TestID(t, "error-message").Text()))
		res = admin.PostForm(fmt.Sprintf("/integrations/%d/resume", bt.in.ID), nil)
		require.Equal(t, http.StatusConflict, res.StatusCode, "an Active integration cannot be resumed")
	})

	t.Run("PauseShowsInfo", func(t *testing.T) {
		res := admin.PostForm(fmt.Sprintf("/integrations/%d/pause", bt.in.ID), nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		page := admin.Get(res.Header.Get("Location"))
		require.Contains(t, page.TestID(t, "flash-info").Text(), "is paused")
		require.Equal(t, 1, page.TestID(t, "paused-info").Length())
		require.Equal(t, 1, page.TestID(t, "resume").Length())
		require.Equal(t, 0, page.TestID(t, "pause").Length())
	})

	t.Run("ReplayMakesDotOne", func(t *testing.T) {
		res := admin.PostForm(fmt.Sprintf("/transactions/%d/replay", bt.broken.ID), nil)
		require.Equal(t, http.StatusSeeOther, res.StatusCode)
		page := admin.Get(res.Header.Get("Location"))
		require.Equal(t, bt.broken.Number+".1", page.TestID(t, "txn-number").Text())
		require.Equal(t, bt.broken.Number, strings.TrimSpace(page.TestID(t, "replayed-from").Text()))
		orig := admin.Get(fmt.Sprintf("/transactions/%d", bt.broken.ID))
		require.Equal(t, "Ignored", orig.TestID(t, "txn-state").Text())
		require.Equal(t, bt.broken.Number+".1", orig.TestID(t, "replayed-as-link").Text())
	})
}

func TestTicketForm(t *testing.T) {
	t.Parallel()
	bt := setupPages(t)
	analyst := bt.app.Login(t, "analyst", "analyst-demo-1")

	res := analyst.PostForm("/tickets", url.Values{"short_description": {""}, "priority": {"9"}, "urgency": {"1"}, "impact": {"1"}, "state": {"New"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.NotEmpty(t, res.TestID(t, "error-priority").Text())

	res = analyst.PostForm("/tickets", url.Values{"short_description": {"<script>alert(1)</script>"}, "priority": {"2"},
		"urgency": {"1"}, "impact": {"1"}, "state": {"New"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	page := analyst.Get(res.Header.Get("Location"))
	require.Contains(t, page.TestID(t, "flash-success").Text(), "Created")
	require.Equal(t, "<script>alert(1)</script>", page.TestID(t, "ticket-field-short").Text())
	require.NotContains(t, page.Body, "<script>alert(1)")

	var tk models.Ticket
	require.NoError(t, bt.app.Store.DB(context.Background()).Where("short_description = ?", "<script>alert(1)</script>").Take(&tk).Error)
	edit := url.Values{"short_description": {"Fixed"}, "priority": {"2"}, "urgency": {"1"}, "impact": {"1"}, "state": {"New"},
		"version": {fmt.Sprint(tk.Version)}}
	res = analyst.PostForm(fmt.Sprintf("/tickets/%d", tk.ID), edit)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res = analyst.PostForm(fmt.Sprintf("/tickets/%d", tk.ID), edit)
	require.Equal(t, http.StatusConflict, res.StatusCode, "an edit of an old version is refused")
}
