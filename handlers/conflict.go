package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models/converge"
	"unifi/web/pages/conflict"
)

// ConflictList lists concurrent edits resolved, newest first.
func (h *Handlers) ConflictList(c echo.Context) error {
	ctx := c.Request().Context()
	var f converge.Filter
	f.IntegrationID, _ = strconv.ParseInt(c.QueryParam("integration"), 10, 64)
	f.BeforeID, _ = strconv.ParseInt(c.QueryParam("before"), 10, 64)
	rows, err := h.Query.ListConflicts(ctx, f)
	if err != nil {
		return err
	}
	v := conflict.ListView{Filter: f, Rows: rows}
	if len(rows) == converge.ListPage {
		v.NextURL = olderPageURL(c, "/conflicts", rows[len(rows)-1].ID)
	}
	if v.Integrations, err = h.Query.ListIntegrations(ctx); err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, conflict.List(page.Props(c, "Conflicts", "conflicts"), v))
}
