package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"unifi/models"
	"unifi/models/script"
	"unifi/web/layout"
	"unifi/web/pages/scripts"
)

// outboundPoints and inboundPoints are the script points a message shows by direction.
var (
	outboundPoints = []script.Point{script.TriggerCondition, script.SourceToStage, script.StageToRequest, script.Response}
	inboundPoints  = []script.Point{script.Identify, script.ReferenceLookup, script.PayloadToStage, script.StageToTarget}
)

// scriptsView loads an integration's messages with their scripts and its
// active connection's variables.
func (h *Handlers) scriptsView(c echo.Context, id int64) (scripts.PageView, error) {
	ctx := c.Request().Context()
	in, err := h.Store.GetIntegration(ctx, id)
	if err != nil {
		return scripts.PageView{}, err
	}
	actor := h.actor(c)
	v := scripts.PageView{Integration: *in, CanEdit: models.RoleMay(actor.Role, models.ActionConfigure) == nil,
		Errors: map[string]string{}}
	msgs, err := h.Store.ListMessages(ctx, id)
	if err != nil {
		return v, err
	}
	for _, m := range msgs {
		saved, err := h.Store.ListMessageScripts(ctx, actor, m.ID)
		if err != nil {
			return v, err
		}
		byPoint := map[string]models.MessageScript{}
		for _, s := range saved {
			byPoint[s.Point] = s
		}
		var points []script.Point
		if m.Sends() {
			points = append(points, outboundPoints...)
		}
		if m.Receives() {
			points = append(points, inboundPoints...)
		}
		ms := scripts.MessageScripts{Message: m}
		for _, p := range points {
			s := byPoint[string(p)]
			ms.Points = append(ms.Points, scripts.PointScript{Point: string(p), Label: p.Label(), Source: s.Source, Version: s.Version})
		}
		v.Messages = append(v.Messages, ms)
	}
	conn, err := h.Store.ActiveConnection(ctx, id)
	switch {
	case errors.Is(err, models.ErrNotFound):
	case err != nil:
		return v, err
	default:
		v.Connection = conn.Name
		vars, err := h.Store.ConnectionVariables(ctx, conn.ID)
		if err != nil {
			return v, err
		}
		names := make([]string, 0, len(vars))
		for n := range vars {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			v.Variables += n + "=" + vars[n] + "\n"
		}
	}
	return v, nil
}

// ScriptsShow is an integration's message scripts page.
func (h *Handlers) ScriptsShow(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	v, err := h.scriptsView(c, id)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, scripts.Page(h.props(c, "Scripts of "+v.Integration.Name, "integrations"), v))
}

// scriptForm reads the message and point of a script form and checks that
// the message belongs to integration id.
func (h *Handlers) scriptForm(ctx context.Context, c echo.Context, id int64) (int64, script.Point, error) {
	msgID, err := strconv.ParseInt(c.FormValue("message_id"), 10, 64)
	if err != nil {
		return 0, "", models.ErrNotFound
	}
	msgs, err := h.Store.ListMessages(ctx, id)
	if err != nil {
		return 0, "", err
	}
	for _, m := range msgs {
		if m.ID == msgID {
			return msgID, script.Point(c.FormValue("point")), nil
		}
	}
	return 0, "", fmt.Errorf("message %d of integration %d: %w", msgID, id, models.ErrNotFound)
}

// ScriptSave saves (or, empty, removes) one script; a script that does not
// compile re-renders the page with its line next to the source.
func (h *Handlers) ScriptSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	msgID, point, err := h.scriptForm(ctx, c, id)
	if err != nil {
		return err
	}
	source := c.FormValue("source")
	_, err = h.Store.SaveMessageScript(ctx, h.actor(c), msgID, point, source)
	var ve *models.ValidationError
	if errors.As(err, &ve) {
		v, lerr := h.scriptsView(c, id)
		if lerr != nil {
			return lerr
		}
		keepSource(&v, msgID, string(point), source)
		for f, msg := range ve.Fields {
			v.Errors[fmt.Sprintf("%d/%s/%s", msgID, point, f)] = msg
		}
		return render(c, http.StatusUnprocessableEntity, scripts.Page(h.props(c, "Scripts of "+v.Integration.Name, "integrations"), v))
	}
	if err != nil {
		return err
	}
	if err := h.flash(c, layout.FlashSuccess, "Saved the "+point.Label()+" script."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/integrations/%d/scripts", id))
}

// keepSource shows the source the user typed, not the saved one.
func keepSource(v *scripts.PageView, msgID int64, point, source string) {
	for i := range v.Messages {
		if v.Messages[i].Message.ID != msgID {
			continue
		}
		for j := range v.Messages[i].Points {
			if v.Messages[i].Points[j].Point == point {
				v.Messages[i].Points[j].Source = source
			}
		}
	}
}

// ScriptTest runs the typed (unsaved) source on a transaction's data: a dry
// run whose result, log lines and time are shown under the script.
func (h *Handlers) ScriptTest(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	msgID, point, err := h.scriptForm(ctx, c, id)
	if err != nil {
		return err
	}
	source := c.FormValue("source")
	res, err := h.Store.TestMessageScript(ctx, h.actor(c), msgID, point, source, c.FormValue("transaction"))
	var ve *models.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return err
	}
	v, lerr := h.scriptsView(c, id)
	if lerr != nil {
		return lerr
	}
	keepSource(&v, msgID, string(point), source)
	status := http.StatusOK
	if ve != nil {
		status = http.StatusUnprocessableEntity
		for f, msg := range ve.Fields {
			v.Errors[fmt.Sprintf("%d/%s/%s", msgID, point, f)] = msg
		}
	} else {
		v.Test = &scripts.TestResult{MessageID: msgID, Point: string(point), Transaction: res.Transaction,
			Result: res.Result, Logs: res.Logs, Rejected: res.Rejected, Error: res.Error,
			DurationMS: fmt.Sprintf("%.2f", float64(res.Duration.Microseconds())/1000)}
	}
	return render(c, status, scripts.Page(h.props(c, "Scripts of "+v.Integration.Name, "integrations"), v))
}

// VariablesSave replaces the active connection's variables from name=value lines.
func (h *Handlers) VariablesSave(c echo.Context) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	conn, err := h.Store.ActiveConnection(ctx, id)
	if err != nil {
		return err
	}
	raw := c.FormValue("variables")
	vars := map[string]string{}
	problem := ""
	for n, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok {
			problem = fmt.Sprintf("Line %d has no '=': write name=value.", n+1)
			break
		}
		vars[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	if problem == "" {
		err = h.Store.SetConnectionVariables(ctx, h.actor(c), conn.ID, vars)
		var ve *models.ValidationError
		if errors.As(err, &ve) {
			problem = ve.Fields["variables"]
		} else if err != nil {
			return err
		}
	}
	if problem != "" {
		v, lerr := h.scriptsView(c, id)
		if lerr != nil {
			return lerr
		}
		v.Variables, v.Errors["variables"] = raw, problem
		return render(c, http.StatusUnprocessableEntity, scripts.Page(h.props(c, "Scripts of "+v.Integration.Name, "integrations"), v))
	}
	if err := h.flash(c, layout.FlashSuccess, "Saved the variables of "+conn.Name+"."); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, fmt.Sprintf("/integrations/%d/scripts", id))
}
