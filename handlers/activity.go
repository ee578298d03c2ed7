package handlers

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models/store"
	"unifi/web/pages/activity"
)

// ActivityList is the activity log (admins and managers), newest first.
func (h *Handlers) ActivityList(c echo.Context) error {
	f := store.ActivityFilter{UserName: strings.TrimSpace(c.QueryParam("user")),
		Action: strings.TrimSpace(c.QueryParam("action")), RecordType: c.QueryParam("type"), Limit: 100}
	f.BeforeID, _ = strconv.ParseInt(c.QueryParam("before"), 10, 64)
	f.RecordID, _ = strconv.ParseInt(c.QueryParam("record"), 10, 64)
	rows, err := h.Store.ListActivity(c.Request().Context(), f)
	if err != nil {
		return err
	}
	v := activity.View{Filter: f, Rows: rows}
	if len(rows) == f.Limit {
		v.NextURL = olderPageURL(c, "/activity", rows[len(rows)-1].ID)
	}
	return page.Render(c, http.StatusOK, activity.Page(page.Props(c, "Activity log", "activity"), v))
}
