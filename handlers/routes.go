package handlers

import (
	"io/fs"

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
	// The client's address (rate limits, the login throttle, the records) is
	// the connection's peer, or, when that peer is a proxy on a loopback or
	// private address, the nearest address before it in X-Forwarded-For that
	// is not: a client cannot pick its own address with a header.
	e.IPExtractor = echo.ExtractIPFromXFFHeader()
	e.Use(middleware.RequestID(), h.logRequests, middleware.Recover(), securityHeaders, refuseUnstorableText)

	e.GET("/healthz", h.Healthz)
	e.GET("/readyz", h.Readyz)
	e.GET("/metrics", h.Metrics())
	e.GET("/static/*", echo.StaticDirectoryHandler(filesOnly{static.FS}, false), cacheStatic)

	// The JSON APIs: their own authentication, no session, no CSRF, one rate limit per client.
	api := e.Group("/api/v1", rateLimit(h.Config.APIRate, 500))
	tickets := api.Group("/tickets", middleware.BodyLimit("1M"), h.apiBasicAuth(models.ActionWorkTickets))
	tickets.POST("", h.APITicketCreate)
	tickets.GET("/:number", h.APITicketShow)
	tickets.PATCH("/:number", h.APITicketUpdate)
	// The inbound API authenticates with the connection's inbound account; its body limit is INBOUND_MAX_BYTES.
	api.POST("/integrations/:name/messages", h.InboundMessage)
	api.POST("/integrations/:name/raw", h.InboundRaw)

	ui := e.Group("", middleware.BodyLimit("1M"), h.loadSession, h.checkCSRF)
	ui.GET("/login", h.LoginPage)
	ui.POST("/login", h.LoginSubmit, rateLimit(h.Config.LoginRate, 10))
	ui.POST("/logout", h.Logout)

	in := ui.Group("", h.requireLogin, requireAction(models.ActionView))
	in.GET("/", h.OperationsShow)
	in.GET("/operations/live", h.OperationsLive)
	in.GET("/integrations", h.IntegrationList)
	in.GET("/integrations/:id", h.IntegrationShow)

	// The Designer (docs/designer.md): admins and managers read the
	// configuration pages; only admins change configuration.
	view := in.Group("", requireAction(models.ActionViewConfig))
	view.GET("/integrations/:id/edit", h.DesignerIntegrationEdit)
	view.GET("/integrations/:id/connections", h.DesignerConnectionList)
	view.GET("/connections/:id/edit", h.DesignerConnectionEdit)
	view.GET("/integrations/:id/messages", h.DesignerMessageList)
	view.GET("/messages/:id/edit", h.DesignerMessageEdit)
	view.GET("/fields/:id/edit", h.DesignerFieldEdit)
	view.GET("/response-actions/:id/edit", h.DesignerResponseActionEdit)
	view.GET("/integrations/:id/pollers", h.DesignerPollerList)
	view.GET("/pollers/:id/edit", h.DesignerPollerEdit)
	view.GET("/poll-processors/:id/edit", h.DesignerProcessorEdit)
	view.GET("/pollers/:id/requests", h.PollRequestList)
	view.GET("/poll-requests/:id", h.PollRequestDetail)
	view.GET("/processes", h.DesignerProcessList)
	view.GET("/processes/:id/edit", h.DesignerProcessEdit)
	view.GET("/process-fields/:id/edit", h.DesignerProcessFieldEdit)
	view.GET("/integrations/:id/scripts", h.ScriptsShow)
	view.GET("/messages/:id/scripts/:point", h.ScriptShow)
	conf := in.Group("", requireAction(models.ActionConfigure))
	conf.GET("/integrations/new", h.DesignerIntegrationNew)
	conf.POST("/integrations", h.DesignerIntegrationCreate)
	conf.POST("/integrations/:id", h.DesignerIntegrationUpdate)
	conf.POST("/integrations/:id/state", h.DesignerIntegrationState)
	conf.POST("/integrations/:id/delete", h.DesignerIntegrationDelete)
	conf.GET("/integrations/:id/connections/new", h.DesignerConnectionNew)
	conf.POST("/integrations/:id/connections", h.DesignerConnectionCreate)
	conf.POST("/connections/:id", h.DesignerConnectionUpdate)
	conf.POST("/connections/:id/activate", h.DesignerConnectionActivate)
	conf.POST("/connections/:id/delete", h.DesignerConnectionDelete)
	conf.POST("/connections/:id/token", h.DesignerConnectionToken)
	conf.POST("/connections/:id/test", h.DesignerConnectionTest)
	conf.GET("/integrations/:id/pollers/new", h.DesignerPollerNew)
	conf.POST("/integrations/:id/pollers", h.DesignerPollerCreate)
	conf.POST("/pollers/:id", h.DesignerPollerUpdate)
	conf.POST("/pollers/:id/delete", h.DesignerPollerDelete)
	conf.GET("/integrations/:id/poll-processors/new", h.DesignerProcessorNew)
	conf.POST("/integrations/:id/poll-processors", h.DesignerProcessorCreate)
	conf.POST("/poll-processors/:id", h.DesignerProcessorUpdate)
	conf.POST("/poll-processors/:id/delete", h.DesignerProcessorDelete)
	conf.GET("/integrations/:id/messages/new", h.DesignerMessageNew)
	conf.POST("/integrations/:id/messages", h.DesignerMessageCreate)
	conf.POST("/messages/:id", h.DesignerMessageUpdate)
	conf.POST("/messages/:id/delete", h.DesignerMessageDelete)
	conf.GET("/messages/:id/fields/new", h.DesignerFieldNew)
	conf.POST("/messages/:id/fields", h.DesignerFieldCreate)
	conf.POST("/fields/:id", h.DesignerFieldUpdate)
	conf.POST("/fields/:id/delete", h.DesignerFieldDelete)
	conf.GET("/integrations/:id/response-actions/new", h.DesignerResponseActionNew)
	conf.POST("/integrations/:id/response-actions", h.DesignerResponseActionCreate)
	conf.POST("/response-actions/:id", h.DesignerResponseActionUpdate)
	conf.POST("/integrations/:id/variables", h.VariablesSave)
	conf.POST("/messages/:id/scripts/:point", h.ScriptSave)
	conf.POST("/messages/:id/scripts/:point/test", h.ScriptTest)
	view.GET("/integrations/:id/export", h.IntegrationExport)
	view.GET("/integrations/:id/documentation", h.IntegrationDocumentation)
	view.GET("/integrations/:id/credentials", h.IntegrationCredentials)
	conf.GET("/integrations/import", h.PackageImportForm)
	conf.GET("/integrations/new/template", h.IntegrationNewFromTemplate)
	conf.POST("/integrations/new/template", h.IntegrationCreateFromTemplate)
	conf.POST("/connections/:id/credentials", h.ConnectionCredentials)
	conf.GET("/processes/new", h.DesignerProcessNew)
	conf.POST("/processes", h.DesignerProcessCreate)
	conf.POST("/processes/:id", h.DesignerProcessUpdate)
	conf.GET("/processes/:id/fields/new", h.DesignerProcessFieldNew)
	conf.POST("/processes/:id/fields", h.DesignerProcessFieldCreate)
	conf.POST("/process-fields/:id", h.DesignerProcessFieldUpdate)
	conf.POST("/process-fields/:id/delete", h.DesignerProcessFieldDelete)
	in.GET("/transactions", h.TransactionList)
	in.GET("/transactions/:id", h.TransactionShow)
	in.GET("/http-requests/:id", h.HTTPRequestShow)
	in.GET("/bulk-jobs/:id", h.BulkJobShow)
	in.GET("/bulk-jobs/:id/events", h.BulkJobEvents)
	in.GET("/bonds", h.BondList)
	in.GET("/bonds/:id", h.BondShow)
	in.GET("/tickets", h.TicketList)
	in.GET("/tickets/process-errors", h.TicketList)
	in.GET("/tickets/:id", h.TicketShow)
	in.GET("/conflicts", h.ConflictList)

	work := in.Group("", requireAction(models.ActionWorkTickets))
	work.GET("/tickets/new", h.TicketNew)
	work.GET("/tickets/:id/edit", h.TicketEdit)
	work.POST("/tickets", h.TicketCreate)
	work.POST("/tickets/:id", h.TicketUpdate)

	in.POST("/integrations/:id/pause", h.IntegrationPause, requireAction(models.ActionPause))
	in.POST("/integrations/:id/resume", h.IntegrationResume, requireAction(models.ActionResume))
	in.POST("/integrations/:id/repair", h.IntegrationRepair, requireAction(models.ActionRepair))
	in.POST("/transactions/:id/replay", h.TransactionReplay, requireAction(models.ActionReplay))
	in.POST("/transactions/:id/ignore", h.TransactionIgnore, requireAction(models.ActionIgnore))
	in.POST("/http-requests/:id/replay", h.HTTPRequestReplay, requireAction(models.ActionReplayRequest))

	bulk := in.Group("", requireAction(models.ActionBulkTransactions))
	bulk.GET("/transactions/bulk", h.TransactionBulkConfirm)
	bulk.POST("/transactions/bulk", h.TransactionBulkStart)

	// Package import: its own body limit, above configpkg.MaxBytes, so that a
	// document too large is refused by the decoder in words, next to the field.
	imports := e.Group("/integrations/import", middleware.BodyLimit("12M"), h.loadSession, h.checkCSRF, h.requireLogin,
		requireAction(models.ActionConfigure))
	imports.POST("", h.PackageImportPlan)
	imports.POST("/apply", h.PackageImportApply)

	ui.GET("/activity", h.ActivityList, h.requireLogin, requireAction(models.ActionViewActivity))

	admin := ui.Group("", h.requireLogin, requireAction(models.ActionManageUsers))
	admin.GET("/users", h.UserList)
	admin.POST("/users", h.UserCreate)
	admin.POST("/users/:id/role", h.UserSetRole)
	admin.POST("/users/:id/password", h.UserResetPassword)
	admin.POST("/users/:id/active", h.UserSetActive)

	e.Use(methodNotAllowed(e)) // after every route: it reads them
	return e
}

// filesOnly is a file system whose directories do not exist: /static/ serves
// files and answers 404 for a directory, never a listing.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := file.Stat(); err != nil || fi.IsDir() {
		_ = file.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return file, nil
}

func cacheStatic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=3600")
		return next(c)
	}
}
