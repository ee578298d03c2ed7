package handlers

import (
	"io/fs"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"unifi/handlers/designer"
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

	// Page views wait their turn (page_turns.go); the progress stream, open
	// for minutes, does not take one.
	turns := newPageTurns(h.Config.PageConcurrency, pageWait)
	e.GET("/bulk-jobs/:id/events", h.BulkJobEvents, middleware.BodyLimit("1M"), h.loadSession, h.checkCSRF,
		h.requireLogin, requireAction(models.ActionView))
	ui := e.Group("", turns.middleware, middleware.BodyLimit("1M"), h.loadSession, h.checkCSRF)
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
	d := &designer.Handlers{Store: h.Store, Designer: h.Designer, Packages: h.Packages, BaseURL: h.Config.BaseURL,
		NotifyFunc: h.notify}
	view := in.Group("", requireAction(models.ActionViewConfig))
	view.GET("/integrations/:id/edit", d.IntegrationEdit)
	view.GET("/integrations/:id/connections", d.ConnectionList)
	view.GET("/connections/:id/edit", d.ConnectionEdit)
	view.GET("/integrations/:id/messages", d.MessageList)
	view.GET("/messages/:id/edit", d.MessageEdit)
	view.GET("/fields/:id/edit", d.FieldEdit)
	view.GET("/response-actions/:id/edit", d.ResponseActionEdit)
	view.GET("/integrations/:id/pollers", d.PollerList)
	view.GET("/pollers/:id/edit", d.PollerEdit)
	view.GET("/poll-processors/:id/edit", d.ProcessorEdit)
	view.GET("/pollers/:id/requests", d.PollRequestList)
	view.GET("/poll-requests/:id", d.PollRequestDetail)
	view.GET("/processes", d.ProcessList)
	view.GET("/processes/:id/edit", d.ProcessEdit)
	view.GET("/process-fields/:id/edit", d.ProcessFieldEdit)
	view.GET("/integrations/:id/scripts", d.ScriptsShow)
	view.GET("/messages/:id/scripts/:point", d.ScriptShow)
	conf := in.Group("", requireAction(models.ActionConfigure))
	conf.GET("/integrations/new", d.IntegrationNew)
	conf.POST("/integrations", d.IntegrationCreate)
	conf.POST("/integrations/:id", d.IntegrationUpdate)
	conf.POST("/integrations/:id/state", d.IntegrationState)
	conf.POST("/integrations/:id/delete", d.IntegrationDelete)
	conf.GET("/integrations/:id/connections/new", d.ConnectionNew)
	conf.POST("/integrations/:id/connections", d.ConnectionCreate)
	conf.POST("/connections/:id", d.ConnectionUpdate)
	conf.POST("/connections/:id/activate", d.ConnectionActivate)
	conf.POST("/connections/:id/delete", d.ConnectionDelete)
	conf.POST("/connections/:id/token", d.ConnectionToken)
	conf.POST("/connections/:id/test", d.ConnectionTest)
	conf.GET("/integrations/:id/pollers/new", d.PollerNew)
	conf.POST("/integrations/:id/pollers", d.PollerCreate)
	conf.POST("/pollers/:id", d.PollerUpdate)
	conf.POST("/pollers/:id/delete", d.PollerDelete)
	conf.GET("/integrations/:id/poll-processors/new", d.ProcessorNew)
	conf.POST("/integrations/:id/poll-processors", d.ProcessorCreate)
	conf.POST("/poll-processors/:id", d.ProcessorUpdate)
	conf.POST("/poll-processors/:id/delete", d.ProcessorDelete)
	conf.GET("/integrations/:id/messages/new", d.MessageNew)
	conf.POST("/integrations/:id/messages", d.MessageCreate)
	conf.POST("/messages/:id", d.MessageUpdate)
	conf.POST("/messages/:id/delete", d.MessageDelete)
	conf.GET("/messages/:id/fields/new", d.FieldNew)
	conf.POST("/messages/:id/fields", d.FieldCreate)
	conf.POST("/fields/:id", d.FieldUpdate)
	conf.POST("/fields/:id/delete", d.FieldDelete)
	conf.GET("/integrations/:id/response-actions/new", d.ResponseActionNew)
	conf.POST("/integrations/:id/response-actions", d.ResponseActionCreate)
	conf.POST("/response-actions/:id", d.ResponseActionUpdate)
	conf.POST("/response-actions/:id/delete", d.ResponseActionDelete)
	conf.POST("/integrations/:id/variables", d.VariablesSave)
	conf.POST("/messages/:id/scripts/:point", d.ScriptSave)
	conf.POST("/messages/:id/scripts/:point/test", d.ScriptTest)
	view.GET("/integrations/:id/export", d.IntegrationExport)
	view.GET("/integrations/:id/documentation", d.IntegrationDocumentation)
	view.GET("/integrations/:id/credentials", d.IntegrationCredentials)
	conf.GET("/integrations/import", d.PackageImportForm)
	conf.GET("/integrations/new/template", d.IntegrationNewFromTemplate)
	conf.POST("/integrations/new/template", d.IntegrationCreateFromTemplate)
	conf.POST("/connections/:id/credentials", d.ConnectionCredentials)
	conf.GET("/processes/new", d.ProcessNew)
	conf.POST("/processes", d.ProcessCreate)
	conf.POST("/processes/:id", d.ProcessUpdate)
	conf.GET("/processes/:id/fields/new", d.ProcessFieldNew)
	conf.POST("/processes/:id/fields", d.ProcessFieldCreate)
	conf.POST("/process-fields/:id", d.ProcessFieldUpdate)
	conf.POST("/process-fields/:id/delete", d.ProcessFieldDelete)
	in.GET("/transactions", h.TransactionList)
	in.GET("/transactions/:id", h.TransactionShow)
	in.GET("/http-requests/:id", h.HTTPRequestShow)
	in.GET("/bulk-jobs/:id", h.BulkJobShow)
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
	imports.POST("", d.PackageImportPlan)
	imports.POST("/apply", d.PackageImportApply)

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
