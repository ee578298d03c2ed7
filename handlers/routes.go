package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"unifi/models"
	"unifi/static"
)

// Echo builds the HTTP server with every route.
func (h *Handlers) Echo() *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = h.errorHandler
	e.Use(middleware.RequestID(), h.logRequests, middleware.Recover(), securityHeaders)

	e.GET("/healthz", h.Healthz)
	e.GET("/readyz", h.Readyz)
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(http.FS(static.FS)))),
		cacheStatic)

	// The JSON APIs: their own authentication, no session, no CSRF, one rate limit per client.
	api := e.Group("/api/v1", rateLimit(h.Config.APIRate, 500))
	tickets := api.Group("/tickets", middleware.BodyLimit("1M"), h.apiBasicAuth(models.ActionWorkTickets))
	tickets.POST("", h.APITicketCreate)
	tickets.GET("/:number", h.APITicketShow)
	tickets.PATCH("/:number", h.APITicketUpdate)
	// The inbound API authenticates with the connection's inbound account; its body limit is INBOUND_MAX_BYTES.
	api.POST("/integrations/:name/messages", h.InboundMessage)

	ui := e.Group("", middleware.BodyLimit("1M"), h.loadSession, h.checkCSRF)
	ui.GET("/login", h.LoginPage)
	ui.POST("/login", h.LoginSubmit, rateLimit(h.Config.LoginRate, 10))
	ui.POST("/logout", h.Logout)

	in := ui.Group("", h.requireLogin, requireAction(models.ActionView))
	in.GET("/", h.IntegrationList)
	in.GET("/integrations", h.IntegrationList)
	in.GET("/integrations/:id", h.IntegrationShow)
	return e
}

func cacheStatic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return next(c)
	}
}
