package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/script"
)

// ConnectionVariables returns a connection's variables by name.
func (s *Store) ConnectionVariables(ctx context.Context, connectionID int64) (map[string]string, error) {
	var rows []models.ConnectionVariable
	if err := s.db.WithContext(ctx).Where("connection_id = ?", connectionID).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("variables of connection %d: %w", connectionID, err)
	}
	out := make(map[string]string, len(rows))
	for _, r := range rows {
		out[r.Name] = r.Value
	}
	return out, nil
}

// ScriptTest is the outcome of a dry run.
type ScriptTest struct {
	Transaction string   // the transaction whose data it ran on
	Result      string   // the returned value as indented JSON ("" for nothing)
	Logs        []string // its log(...) lines
	Rejected    string   // Stage to Target: the text given to reject(...)
	Error       string   // the script error, in the words a transaction would show
	Duration    time.Duration
}

// TestMessageScript runs source (unsaved; the message's point) on the data of
// transaction number (its Stage, ticket, bond, latest answer, the active
// connection's variables): a dry run, nothing is sent or stored. A script
// error is part of the result, not an error of the call.
func (s *Store) TestMessageScript(ctx context.Context, actor models.Actor, messageID int64, point script.Point, source, number string) (*ScriptTest, error) {
	if err := models.RoleMay(actor.Role, models.ActionConfigure); err != nil {
		return nil, err
	}
	if !point.Valid() {
		return nil, &models.ValidationError{Fields: map[string]string{"point": fmt.Sprintf("%q is not a script point.", point)}}
	}
	db := s.db.WithContext(ctx)
	var msg models.Message
	if err := db.Take(&msg, messageID).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("test script of message %d", messageID))
	}
	var tr models.Transaction
	if err := db.Where("number = ? AND integration_id = ?", strings.TrimSpace(number), msg.IntegrationID).Take(&tr).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, &models.ValidationError{Fields: map[string]string{"transaction": fmt.Sprintf("No transaction %q on this integration.", number)}}
		}
		return nil, fmt.Errorf("test script: %w", err)
	}
	var stage models.Stage
	if err := db.Where("transaction_id = ?", tr.ID).Take(&stage).Error; err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, fmt.Errorf("test script: %w", err)
	}
	var t models.Ticket
	if err := db.Take(&t, tr.TicketID).Error; err != nil {
		return nil, pg.NotFound(err, "test script: the transaction's ticket")
	}
	var bond models.Bond
	if err := db.Take(&bond, tr.BondID).Error; err != nil {
		return nil, pg.NotFound(err, "test script: the transaction's bond")
	}
	vars := map[string]string{}
	if conn, err := s.ActiveConnection(ctx, msg.IntegrationID); err == nil {
		if vars, err = s.ConnectionVariables(ctx, conn.ID); err != nil {
			return nil, err
		}
	}
	ticket := scriptTicket(&t)
	in := script.Input{Stage: stage.Data.V, Ticket: ticket, Previous: ticket, Vars: vars,
		Bond:        script.BondData(bond.InternalReference, bond.ExternalReference),
		Transaction: script.TransactionData(tr.Number, tr.MessageIdent, msg.Name, t.Number, tr.Attempts+1)}
	var req models.HTTPRequest
	if err := db.Where("transaction_id = ? AND response_status IS NOT NULL", tr.ID).Order("id DESC").Take(&req).Error; err == nil {
		var body any
		if json.Unmarshal([]byte(req.ResponseBody), &body) != nil {
			body = nil
		}
		in.Response = map[string]any{"status": *req.ResponseStatus, "headers": map[string]any{}, "body": body,
			"text": req.ResponseBody}
	}
	out, err := s.scripts.Run(script.Script{Name: msg.Name + " / " + point.Label(), Point: point, Source: source}, in)
	res := &ScriptTest{Transaction: tr.Number, Logs: out.Logs, Rejected: out.Rejected, Duration: out.Duration}
	if err != nil {
		if script.AsError(err) == nil {
			return nil, fmt.Errorf("test script: %w", err)
		}
		res.Error = err.Error()
		return res, nil
	}
	if out.Value != nil {
		b, err := json.MarshalIndent(out.Value, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("test script: %w", err)
		}
		res.Result = string(b)
	}
	return res, nil
}
