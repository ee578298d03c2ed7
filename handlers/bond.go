package handlers

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/query"
	"unifi/web/pages/bond"
)

// BondList lists bonds, most recently worked first.
func (h *Handlers) BondList(c echo.Context) error {
	ctx := c.Request().Context()
	f := query.BondFilter{State: models.BondState(c.QueryParam("state")), Reference: c.QueryParam("ref"),
		WithError: c.QueryParam("errors") != "", Stuck: c.QueryParam("stuck") != "", Limit: 50}
	if !f.State.Valid() {
		f.State = ""
	}
	f.IntegrationID, _ = strconv.ParseInt(c.QueryParam("integration"), 10, 64)
	f.BeforeID, _ = strconv.ParseInt(c.QueryParam("before"), 10, 64)
	rows, err := h.Query.QueryBonds(ctx, f)
	if err != nil {
		return err
	}
	v := bond.ListView{Filter: f, Rows: rows}
	if len(rows) == f.Limit {
		v.NextURL = olderPageURL(c, "/bonds", rows[len(rows)-1].ID)
	}
	if v.Integrations, err = h.Query.ListIntegrations(ctx); err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, bond.List(page.Props(c, "Bonds", "bonds"), v))
}

// BondShow is the Bond page.
func (h *Handlers) BondShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Query.LoadBondDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, bond.Page(page.Props(c, "Bond "+d.Bond.InternalReference, "bonds"), bond.PageView{D: d}))
}
