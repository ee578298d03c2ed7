package designer

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/designer"
	"unifi/models/script"
	"unifi/web/layout"
	"unifi/web/pages/scripts"
)

// The Designer's script pages (docs/scripting.md): an integration's
// scripts with its connection variables, and one message's script at one
// point with the Test button.

// scriptVersion reads the version of the script an edit was based on: 0
// when there was none yet (formVersion asks for at least 1).
func scriptVersion(c echo.Context) (int, error) {
	if c.FormValue("version") == "0" {
		return 0, nil
	}
	return formVersion(c)
}

// outboundPoints and inboundPoints are the script points a message shows by direction.
var (
	outboundPoints = []script.Point{script.TriggerCondition, script.SourceToStage, script.StageToRequest, script.Response}
	inboundPoints  = []script.Point{script.Identify, script.ReferenceLookup, script.PayloadToStage, script.StageToTarget}
)

// messagePoints are the points message m has.
func messagePoints(m models.Message) []script.Point {
	var out []script.Point
	if m.Sends() {
		out = append(out, outboundPoints...)
	}
	if m.Receives() {
		out = append(out, inboundPoints...)
	}
	return out
}

// scriptList builds the scripts page's view of integration id.
func (h *Handlers) scriptList(c echo.Context, id int64) (scripts.ListView, error) {
	set, err := h.Designer.Scripts(c.Request().Context(), id)
	if err != nil {
		return scripts.ListView{}, err
	}
	v := scripts.ListView{Integration: set.Integration, CanEdit: canConfigure(c), Errors: map[string]string{}}
	for _, m := range set.Messages {
		ms := scripts.MessageScripts{Message: m}
		for _, p := range messagePoints(m) {
			s := set.Scripts[m.ID][p]
			ms.Points = append(ms.Points, scripts.PointScript{Point: string(p), Label: p.Label(), Source: s.Source, Version: s.Version})
		}
		v.Messages = append(v.Messages, ms)
	}
	if set.Connection != nil {
		v.Connection = set.Connection.Name
		var vars, versions strings.Builder
		for _, cv := range set.Variables {
			fmt.Fprintf(&vars, "%s=%s\n", cv.Name, cv.Value)
			fmt.Fprintf(&versions, "%s=%d\n", cv.Name, cv.Version)
		}
		v.Variables, v.Versions = vars.String(), versions.String()
	}
	return v, nil
}

// ScriptsShow is an integration's message scripts page.
func (h *Handlers) ScriptsShow(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	v, err := h.scriptList(c, id)
	if err != nil {
		return err
	}
	return page.Render(c, http.StatusOK, scripts.List(page.Props(c, "Scripts of "+v.Integration.Name, "integrations"), v))
}

// variableVersions reads the variables form's base: name=version lines.
func variableVersions(raw string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(raw, "\n") {
		name, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if n, err := strconv.Atoi(v); ok && err == nil {
			out[name] = n
		}
	}
	return out
}

// VariablesSave replaces the active connection's variables from name=value
// lines; an edit of variables someone saved meanwhile is refused with 409.
func (h *Handlers) VariablesSave(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	set, err := h.Designer.Scripts(ctx, id)
	if err != nil {
		return err
	}
	if set.Connection == nil {
		return fmt.Errorf("integration %d has no active connection: %w", id, models.ErrNotFound)
	}
	raw := c.FormValue("variables")
	vars, err := designer.ParseVariables(raw)
	if err == nil {
		err = h.Designer.SetVariables(ctx, page.Actor(c), set.Connection.ID, variableVersions(c.FormValue("versions")), vars)
	}
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v, lerr := h.scriptList(c, id)
		if lerr != nil {
			return lerr
		}
		v.Variables, v.Errors = raw, ve.Fields
		return page.Render(c, http.StatusUnprocessableEntity, scripts.List(page.Props(c, "Scripts of "+v.Integration.Name, "integrations"), v))
	}
	if err != nil {
		// The form posts to an address with no page: a stale edit's
		// "open it again" goes to the scripts page that shows them.
		return page.Reopen(err, fmt.Sprintf("/integrations/%d/scripts", id))
	}
	return page.FlashRedirect(c, layout.FlashSuccess, "Saved the variables of "+set.Connection.Name+".",
		fmt.Sprintf("/integrations/%d/scripts", id))
}

// scriptEdit builds the view of message id's script at the path's point.
func (h *Handlers) scriptEdit(c echo.Context) (scripts.EditView, error) {
	id, err := page.PathID(c, "id")
	if err != nil {
		return scripts.EditView{}, err
	}
	ctx := c.Request().Context()
	m, err := h.Designer.GetMessage(ctx, id)
	if err != nil {
		return scripts.EditView{}, err
	}
	point := script.Point(c.Param("point"))
	if !slices.Contains(messagePoints(*m), point) {
		return scripts.EditView{}, fmt.Errorf("message %s has no script point %q: %w", m.Name, point, models.ErrNotFound)
	}
	set, err := h.Designer.Scripts(ctx, m.IntegrationID)
	if err != nil {
		return scripts.EditView{}, err
	}
	s := set.Scripts[m.ID][point]
	return scripts.EditView{Integration: set.Integration, Message: *m, CanEdit: canConfigure(c), Errors: map[string]string{},
		Script: scripts.PointScript{Point: string(point), Label: point.Label(), Source: s.Source, Version: s.Version}}, nil
}

func (h *Handlers) renderScript(c echo.Context, status int, v scripts.EditView) error {
	return page.Render(c, status, scripts.Edit(page.Props(c, v.Message.Name+" / "+v.Script.Label, "integrations"), v))
}

// ScriptShow is one message's script at one point (read-only for a manager).
func (h *Handlers) ScriptShow(c echo.Context) error {
	v, err := h.scriptEdit(c)
	if err != nil {
		return err
	}
	return h.renderScript(c, http.StatusOK, v)
}

// ScriptSave saves (or, empty, removes) the script; one that does not
// compile re-renders with its line next to the source, and an edit of an
// older version is refused with 409.
func (h *Handlers) ScriptSave(c echo.Context) error {
	v, err := h.scriptEdit(c)
	if err != nil {
		return err
	}
	base, err := scriptVersion(c)
	if err != nil {
		return err
	}
	source := c.FormValue("source")
	_, err = h.Designer.SaveScript(c.Request().Context(), page.Actor(c), v.Message.ID, script.Point(v.Script.Point), base, source)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v.Script.Source, v.Script.Version, v.Errors = source, int64(base), ve.Fields
		v.Transaction = c.FormValue("transaction")
		return h.renderScript(c, http.StatusUnprocessableEntity, v)
	}
	if err != nil {
		return err
	}
	return page.FlashRedirect(c, layout.FlashSuccess, "Saved the "+v.Script.Label+" script of "+v.Message.Name+".",
		scripts.ScriptURL(v.Message.ID, v.Script.Point))
}

// ScriptTest runs the typed (unsaved) source on a transaction's data: a dry
// run whose result, log lines and time are shown under the script.
func (h *Handlers) ScriptTest(c echo.Context) error {
	v, err := h.scriptEdit(c)
	if err != nil {
		return err
	}
	base, err := scriptVersion(c)
	if err != nil {
		return err
	}
	v.Script.Source, v.Script.Version = c.FormValue("source"), int64(base)
	v.Transaction = strings.TrimSpace(c.FormValue("transaction"))
	res, err := h.Store.TestMessageScript(c.Request().Context(), page.Actor(c), v.Message.ID, script.Point(v.Script.Point),
		v.Script.Source, v.Transaction)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v.Errors = ve.Fields
		return h.renderScript(c, http.StatusUnprocessableEntity, v)
	}
	if err != nil {
		return err
	}
	v.Test = &scripts.TestResult{Transaction: res.Transaction, Result: res.Result, Logs: res.Logs, Rejected: res.Rejected,
		Error: res.Error, DurationMS: fmt.Sprintf("%.2f", float64(res.Duration.Microseconds())/1000)}
	return h.renderScript(c, http.StatusOK, v)
}
