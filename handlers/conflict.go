package handlers

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/labstack/echo/v4"

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
		q := url.Values{}
		for k, vals := range c.QueryParams() {
			q[k] = vals
		}
		q.Set("before", fmt.Sprint(rows[len(rows)-1].ID))
		v.NextURL = "/conflicts?" + q.Encode()
	}
	if v.Integrations, err = h.Query.ListIntegrations(ctx); err != nil {
		return err
	}
	return render(c, http.StatusOK, conflict.List(h.props(c, "Conflicts", "conflicts"), v))
}
