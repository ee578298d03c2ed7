package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/web/pages/operations"
)

// OperationsShow is the home page: recent transactions, bonds worked today
// and a card per integration.
func (h *Handlers) OperationsShow(c echo.Context) error {
	ov, err := h.Query.LoadOperationsView(c.Request().Context())
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, operations.Page(page.Props(c, "Operations", "operations"), operations.View{Ops: ov}))
}

// OperationsLive is the fragment the home page polls.
func (h *Handlers) OperationsLive(c echo.Context) error {
	ov, err := h.Query.LoadOperationsView(c.Request().Context())
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, operations.Live(operations.View{Ops: ov}))
}
