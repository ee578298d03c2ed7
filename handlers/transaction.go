package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/query"
	"unifi/web/components"
	"unifi/web/layout"
	"unifi/web/pages/transaction"
)

// filterKeys are the query parameters of the transactions filter.
var filterKeys = []string{"integration", "state", "process", "direction", "message", "bond", "ticket", "ref", "from", "to", "q", "payload"}

const datetimeLocal = "2006-01-02T15:04"

// parseTransactionFilter reads the filter from query or form values. Values
// that do not parse are ignored, so a hand-edited URL still shows a list.
func parseTransactionFilter(q url.Values) (query.TransactionFilter, url.Values) {
	var f query.TransactionFilter
	clean := url.Values{}
	id := func(k string) int64 {
		n, err := strconv.ParseInt(q.Get(k), 10, 64)
		if err != nil || n <= 0 {
			return 0
		}
		clean.Set(k, q.Get(k))
		return n
	}
	f.IntegrationID = id("integration")
	f.MessageID = id("message")
	f.BondID = id("bond")
	f.TicketID = id("ticket")
	for _, raw := range q["state"] {
		if s, err := models.ParseTransportState(raw); err == nil {
			f.States = append(f.States, s)
			clean.Add("state", fmt.Sprint(int(s)))
		}
	}
	if raw := q.Get("process"); raw != "" {
		if s, err := models.ParseProcessState(raw); err == nil {
			f.ProcessState = &s
			clean.Set("process", fmt.Sprint(int(s)))
		}
	}
	if d := models.Direction(q.Get("direction")); d == models.Inbound || d == models.Outbound {
		f.Direction = d
		clean.Set("direction", string(d))
	}
	for _, k := range []string{"from", "to"} {
		raw := q.Get(k)
		if raw == "" {
			continue
		}
		t, err := time.ParseInLocation(datetimeLocal, raw, time.Local)
		if err != nil {
			if t, err = time.ParseInLocation("2006-01-02", raw, time.Local); err != nil {
				continue
			}
		}
		clean.Set(k, raw)
		if k == "from" {
			f.CreatedFrom = &t
		} else {
			f.CreatedTo = &t
		}
	}
	if ref := strings.TrimSpace(q.Get("ref")); ref != "" {
		f.Reference = ref
		clean.Set("ref", ref)
	}
	if text := strings.TrimSpace(q.Get("q")); text != "" {
		f.Text = text
		clean.Set("q", text)
	}
	if q.Get("payload") != "" {
		f.InPayload = true
		clean.Set("payload", "1")
	}
	return f, clean
}

// TransactionList is the filterable transactions list with keyset pages.
func (h *Handlers) TransactionList(c echo.Context) error {
	ctx := c.Request().Context()
	f, clean := parseTransactionFilter(c.QueryParams())
	var after *query.TransactionCursor
	if raw := c.QueryParam("after"); raw != "" {
		after, _ = query.ParseTransactionCursor(raw)
	}
	v := transaction.ListView{Filter: f, Query: clean, IsFirstPage: after == nil, FilterActive: len(clean) > 0,
		FromText: clean.Get("from"), ToText: clean.Get("to"),
		CanBulk: models.RoleMay(page.CurrentUser(c).Role, models.ActionBulkTransactions) == nil}
	l, err := h.Query.LoadTransactionList(ctx, f, after, 50)
	if err != nil {
		return err
	}
	if l.SearchStopped {
		v.SearchError = "The payload search took too long and was stopped. Narrow it with an integration or a created between range, or search identifiers only."
	}
	v.Page, v.Integrations = l.Page, l.Integrations
	if l.Page.Next != nil {
		next := url.Values{}
		for k, vals := range clean {
			next[k] = vals
		}
		next.Set("after", l.Page.Next.String())
		v.NextURL = components.TransactionsURL(next)
	}
	for _, m := range l.Messages {
		v.Messages = append(v.Messages, transaction.MessageOption{ID: m.ID, Name: m.IntegrationName + " · " + m.Name})
	}
	return page.Render(c, http.StatusOK, transaction.List(page.Props(c, "Transactions", "transactions"), v))
}

// TransactionShow is the Transaction page.
func (h *Handlers) TransactionShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Query.LoadTransactionDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	role := page.CurrentUser(c).Role
	v := transaction.DetailView{D: d, Timeline: transaction.BuildTimeline(d),
		CanReplay: models.Can(role, models.ActionReplay, d.Transaction.State) == nil,
		CanIgnore: models.Can(role, models.ActionIgnore, d.Transaction.State) == nil}
	return page.Render(c, http.StatusOK, transaction.Detail(page.Props(c, d.Transaction.Number, "transactions"), v))
}

// HTTPRequestShow is the HTTP Request page.
func (h *Handlers) HTTPRequestShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	d, err := h.Query.LoadHTTPRequestDetail(c.Request().Context(), id)
	if err != nil {
		return err
	}
	v := transaction.RequestView{D: d,
		CanReplay: models.Can(page.CurrentUser(c).Role, models.ActionReplayRequest, d.Request.State) == nil}
	return page.Render(c, http.StatusOK, transaction.Request(page.Props(c, fmt.Sprintf("HTTP Request %d", id), "transactions"), v))
}

// bulkMax is the most transactions one bulk job takes.
const bulkMax = 100000

// TransactionBulkConfirm counts what a bulk Replay or Ignore would touch and
// asks before starting it.
func (h *Handlers) TransactionBulkConfirm(c echo.Context) error {
	q := c.QueryParams()
	f, clean := parseTransactionFilter(q)
	v := transaction.BulkConfirmView{Query: clean, Max: bulkMax, BackURL: components.TransactionsURL(clean)}
	action := q.Get("all")
	v.Mode = "all"
	if action == "" {
		action = q.Get("action")
		v.Mode = "selected"
	}
	switch action {
	case "replay":
		v.Kind = models.BulkReplay
	case "ignore":
		v.Kind = models.BulkIgnore
	default:
		return echo.NewHTTPError(http.StatusBadRequest, "Choose Replay or Ignore.")
	}
	if v.Mode == "all" {
		n, capped, err := h.Query.CountMatchingTransactions(c.Request().Context(), f, bulkMax)
		if errors.Is(err, query.ErrSearchTooSlow) {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "Counting the matching transactions took too long; narrow the filter.")
		}
		if err != nil {
			return err
		}
		v.Count, v.Capped = int(n), capped
	} else {
		v.IDs = parseIDs(q["id"])
		v.Count = len(v.IDs)
	}
	return page.Render(c, http.StatusOK, transaction.BulkConfirm(page.Props(c, v.Verb()+" transactions", "transactions"), v))
}

// BulkJobShow is a page holding one bulk job's progress dialog.
func (h *Handlers) BulkJobShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	job, failures, err := h.Query.LoadBulkJobProgress(c.Request().Context(), id, 50)
	if err != nil {
		return err
	}
	v := components.BulkJobView{Job: *job, Failures: failures, Now: h.Store.Now()}
	back := "/transactions"
	if job.IntegrationID != nil && (job.Kind == models.BulkResume || job.Kind == models.BulkRepair) {
		back = components.IntegrationURL(*job.IntegrationID)
	}
	return page.Render(c, http.StatusOK, transaction.JobPage(page.Props(c, components.BulkJobTitle(job.Kind), "transactions"), v, back))
}

func parseIDs(raw []string) []int64 {
	seen := map[int64]bool{}
	var ids []int64
	for _, r := range raw {
		n, err := strconv.ParseInt(r, 10, 64)
		if err == nil && n > 0 && !seen[n] {
			seen[n] = true
			ids = append(ids, n)
		}
	}
	return ids
}

// TransactionReplay replays a transaction: the original becomes Ignored and
// the new one (.1, .2, …) takes its place; the browser goes to the new one.
func (h *Handlers) TransactionReplay(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	t, err := h.Store.ReplayTransaction(c.Request().Context(), page.Actor(c), id)
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, fmt.Sprintf("Replayed as %s; the original is now Ignored.", t.Number)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, components.TransactionURL(t.ID))
}

// TransactionIgnore ignores a transaction; its bond's queue moves on.
func (h *Handlers) TransactionIgnore(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	t, err := h.Store.IgnoreTransaction(c.Request().Context(), page.Actor(c), id)
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, fmt.Sprintf("%s is Ignored; the next transaction queued on its bond goes ahead.", t.Number)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, components.TransactionURL(t.ID))
}

// HTTPRequestReplay re-sends one HTTP request as a new record.
func (h *Handlers) HTTPRequestReplay(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	r, err := h.Store.ReplayHTTPRequest(c.Request().Context(), page.Actor(c), id)
	if err != nil {
		return err
	}
	h.notify(c.Request().Context())
	if err := page.Flash(c, layout.FlashSuccess, fmt.Sprintf("Replayed as HTTP Request %d.", r.ID)); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, components.HTTPRequestURL(r.ID))
}

// TransactionBulkStart starts a bulk Replay or Ignore (selected ids, or every
// transaction matching the filter) and shows its progress.
func (h *Handlers) TransactionBulkStart(c echo.Context) error {
	ctx := c.Request().Context()
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	kind := models.BulkJobKind(form.Get("kind"))
	if kind != models.BulkReplay && kind != models.BulkIgnore {
		return echo.NewHTTPError(http.StatusBadRequest, "Choose Replay or Ignore.")
	}
	var ids []int64
	if form.Get("mode") == "all" {
		f, _ := parseTransactionFilter(form)
		if ids, err = h.Query.MatchingTransactionIDs(ctx, f, bulkMax); err != nil {
			return err
		}
	} else {
		ids = parseIDs(form["id"])
	}
	if len(ids) == 0 {
		return &models.ValidationError{Fields: map[string]string{"id": "Select at least one transaction."}}
	}
	job, err := h.Store.StartBulk(ctx, page.Actor(c), kind, ids)
	if err != nil {
		return err
	}
	h.notify(ctx)
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/bulk-jobs/%d", job.ID))
}
