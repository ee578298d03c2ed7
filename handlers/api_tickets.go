package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// The JSON API for tickets: scripts and other tools create and change
// tickets as a UI user (admin or analyst) with HTTP basic auth. It lives
// outside the session and CSRF middleware: every request carries its
// credentials.

// apiBasicAuth lets the request through when it carries the basic-auth
// credentials of an active user whose role may take action. It goes through
// the login throttle like the UI login, and a right password for a role that
// may not take action is answered exactly like a wrong one: authentication
// and authorisation fail alike, so the answer is no password oracle.
func (h *Handlers) apiBasicAuth(action models.Action) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			unauthorized := func(msg string) error {
				c.Response().Header().Set("WWW-Authenticate", `Basic realm="unifi"`)
				return echo.NewHTTPError(http.StatusUnauthorized, msg)
			}
			name, password, ok := c.Request().BasicAuth()
			if !ok {
				return unauthorized("Give a user name and password with HTTP basic auth.")
			}
			u, err := h.Accounts.AuthenticatePassword(c.Request().Context(), name, password, c.RealIP())
			var te *account.ThrottledError
			switch {
			case errors.As(err, &te):
				c.Response().Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
				return echo.NewHTTPError(http.StatusTooManyRequests, te.Reason)
			case errors.Is(err, models.ErrInvalidCredentials):
				return unauthorized("Wrong user name or password.")
			case err != nil:
				return err
			}
			if models.RoleMay(u.Role, action) != nil {
				return unauthorized("Wrong user name or password.")
			}
			page.SetUser(c, u)
			return next(c)
		}
	}
}

// ticketBody is a ticket as the API reads it; absent fields are left as
// they are on PATCH and take their defaults on POST.
type ticketBody struct {
	ShortDescription *string `json:"short_description"`
	Description      *string `json:"description"`
	State            *string `json:"state"`
	Priority         *int    `json:"priority"`
	Urgency          *int    `json:"urgency"`
	Impact           *int    `json:"impact"`
	AssignmentGroup  *string `json:"assignment_group"`
	WorkNotes        *string `json:"work_notes"`
	// Process names the kind of ticket on POST (absent: the first, Incident).
	Process *string `json:"process"`
	// Custom: the process's own fields by name; an absent name keeps its
	// value, null clears it.
	Custom  map[string]any `json:"custom"`
	Version *int           `json:"version"` // PATCH: the version edited; absent means the current one
}

// customText turns the custom values of a JSON body into the text the
// ticket operations validate (models.ValidateCustom).
func (b ticketBody) customText() (map[string]string, error) {
	if b.Custom == nil {
		return nil, nil
	}
	out := make(map[string]string, len(b.Custom))
	v := &models.ValidationError{}
	for name, raw := range b.Custom {
		switch raw.(type) {
		case nil, string, float64, bool:
			out[name] = models.CustomText(raw)
		default:
			v.Add(models.CustomPrefix+name, "Give text, a number or true/false, not a list or an object.")
		}
	}
	return out, v.Err()
}

func (b ticketBody) apply(in *store.TicketInput) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	seti := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&in.ShortDescription, b.ShortDescription)
	set(&in.Description, b.Description)
	set(&in.State, b.State)
	seti(&in.Priority, b.Priority)
	seti(&in.Urgency, b.Urgency)
	seti(&in.Impact, b.Impact)
	set(&in.AssignmentGroup, b.AssignmentGroup)
	set(&in.WorkNotes, b.WorkNotes)
}

// ticketJSON is a ticket as the API writes it.
type ticketJSON struct {
	Number           string         `json:"number"`
	ProcessID        int64          `json:"process_id"`
	ShortDescription string         `json:"short_description"`
	Description      string         `json:"description"`
	State            string         `json:"state"`
	Priority         int            `json:"priority"`
	Urgency          int            `json:"urgency"`
	Impact           int            `json:"impact"`
	AssignmentGroup  string         `json:"assignment_group"`
	WorkNotes        string         `json:"work_notes"`
	Custom           map[string]any `json:"custom"`
	Version          int            `json:"version"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
}

func ticketOut(t *models.Ticket) ticketJSON {
	custom := t.Custom.V
	if custom == nil {
		custom = map[string]any{}
	}
	return ticketJSON{Number: t.Number, ProcessID: t.ProcessID, ShortDescription: t.ShortDescription, Description: t.Description,
		State: t.State, Priority: t.Priority, Urgency: t.Urgency, Impact: t.Impact,
		AssignmentGroup: t.AssignmentGroup, WorkNotes: t.WorkNotes, Custom: custom, Version: t.Version,
		CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
}

func readTicketBody(c echo.Context) (ticketBody, error) {
	var b ticketBody
	dec := json.NewDecoder(c.Request().Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return b, echo.NewHTTPError(http.StatusBadRequest, "The body is not a JSON ticket: "+err.Error())
	}
	return b, nil
}

func apiActor(c echo.Context) models.Actor { return models.ActorOf(page.CurrentUser(c), c.RealIP()) }

// APITicketCreate creates a ticket: POST /api/v1/tickets.
func (h *Handlers) APITicketCreate(c echo.Context) error {
	b, err := readTicketBody(c)
	if err != nil {
		return err
	}
	var in store.TicketInput
	b.apply(&in)
	if in.Custom, err = b.customText(); err != nil {
		return err
	}
	if b.Process != nil {
		procs, err := h.Designer.Processes(c.Request().Context())
		if err != nil {
			return err
		}
		for _, p := range procs {
			if p.Name == *b.Process {
				in.ProcessID = p.ID
			}
		}
		if in.ProcessID == 0 {
			return &models.ValidationError{Fields: map[string]string{"process": fmt.Sprintf("There is no process named %q.", *b.Process)}}
		}
	}
	t, err := h.Store.CreateTicket(c.Request().Context(), apiActor(c), in)
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tickets/"+t.Number)
	return c.JSON(http.StatusCreated, ticketOut(t))
}

// APITicketUpdate changes the given fields of a ticket: PATCH /api/v1/tickets/:number.
func (h *Handlers) APITicketUpdate(c echo.Context) error {
	ctx := c.Request().Context()
	b, err := readTicketBody(c)
	if err != nil {
		return err
	}
	cur, err := h.Store.GetTicketByNumber(ctx, c.Param("number"))
	if err != nil {
		return err
	}
	in := store.TicketInputOf(cur)
	b.apply(&in)
	if in.Custom, err = b.customText(); err != nil {
		return err
	}
	version := cur.Version
	if b.Version != nil {
		version = *b.Version
	}
	t, err := h.Store.UpdateTicket(ctx, apiActor(c), cur.ID, version, in)
	if err != nil {
		return err
	}
	h.notify(ctx)
	return c.JSON(http.StatusOK, ticketOut(t))
}

// APITicketShow returns a ticket: GET /api/v1/tickets/:number.
func (h *Handlers) APITicketShow(c echo.Context) error {
	t, err := h.Store.GetTicketByNumber(c.Request().Context(), c.Param("number"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ticketOut(t))
}
