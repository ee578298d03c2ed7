package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/script"
)

// ListMessageScripts returns a message's scripts by point.
func (s *Store) ListMessageScripts(ctx context.Context, actor models.Actor, messageID int64) ([]models.MessageScript, error) {
	if err := models.RoleMay(actor.Role, models.ActionViewConfig); err != nil {
		return nil, err
	}
	var out []models.MessageScript
	if err := s.db.WithContext(ctx).Where("message_id = ?", messageID).Order("point").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list scripts of message %d: %w", messageID, err)
	}
	return out, nil
}

// SaveMessageScript sets (or, with an empty source, removes) the message's
// script at point. A script that does not compile is refused with its line.
// The version goes up with every save, so every process compiles the new one.
func (s *Store) SaveMessageScript(ctx context.Context, actor models.Actor, messageID int64, point script.Point, source string) (*models.MessageScript, error) {
	if err := models.RoleMay(actor.Role, models.ActionConfigure); err != nil {
		return nil, err
	}
	if !point.Valid() {
		return nil, &models.ValidationError{Fields: map[string]string{"point": fmt.Sprintf("%q is not a script point.", point)}}
	}
	source = strings.TrimRight(source, " \t\r\n")
	if p := models.TextProblem(source); p != "" {
		return nil, &models.ValidationError{Fields: map[string]string{"source": p}}
	}
	if len(source) > 65536 {
		return nil, &models.ValidationError{Fields: map[string]string{"source": "A script may be at most 64 KiB long."}}
	}
	var msg models.Message
	var saved models.MessageScript
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&msg, messageID).Error; err != nil {
			return pg.NotFound(err, "find message")
		}
		name := msg.Name + " / " + point.Label()
		if source != "" {
			if err := script.Compile(script.Script{Name: name, Point: point, Source: source}); err != nil {
				return &models.ValidationError{Fields: map[string]string{"source": err.Error()}}
			}
		}
		var before models.MessageScript
		err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("message_id = ? AND point = ?", messageID, string(point)).
			Take(&before).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if source == "" {
				return nil
			}
			saved = models.MessageScript{MessageID: messageID, Point: string(point), Source: source, Version: 1}
			if err := tx.Create(&saved).Error; err != nil {
				return err
			}
		case err != nil:
			return err
		case source == "":
			if err := tx.Delete(&before).Error; err != nil {
				return err
			}
		default:
			saved = before
			saved.Source, saved.Version = source, before.Version+1
			if err := tx.Model(&saved).Updates(map[string]any{"source": source, "version": saved.Version,
				"updated_at": gorm.Expr("now()")}).Error; err != nil {
				return err
			}
		}
		return pg.LogActivity(tx, actor, "save message script", "message", msg.ID, name,
			map[string]any{"source": before.Source, "version": before.Version},
			map[string]any{"source": saved.Source, "version": saved.Version})
	})
	if err != nil {
		return nil, fmt.Errorf("save %s script of message %d: %w", point, messageID, err)
	}
	return &saved, nil
}

var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

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

// SetConnectionVariables replaces a connection's variables with vars.
func (s *Store) SetConnectionVariables(ctx context.Context, actor models.Actor, connectionID int64, vars map[string]string) error {
	if err := models.RoleMay(actor.Role, models.ActionConfigure); err != nil {
		return err
	}
	verr := &models.ValidationError{}
	for name, value := range vars {
		switch {
		case !variableName.MatchString(name):
			verr.Add("variables", fmt.Sprintf("%q is not a variable name: letters, digits and _, not starting with a digit.", name))
		case len(value) > 4096:
			verr.Add("variables", fmt.Sprintf("The value of %s is longer than 4096 bytes.", name))
		case models.TextProblem(value) != "":
			verr.Add("variables", fmt.Sprintf("The value of %s: %s", name, models.TextProblem(value)))
		}
	}
	if len(verr.Fields) > 0 {
		return verr
	}
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var conn models.Connection
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&conn, connectionID).Error; err != nil {
			return pg.NotFound(err, "find connection")
		}
		var rows []models.ConnectionVariable
		if err := tx.Where("connection_id = ?", connectionID).Find(&rows).Error; err != nil {
			return err
		}
		before := map[string]any{}
		for _, r := range rows {
			before[r.Name] = r.Value
		}
		if err := tx.Where("connection_id = ?", connectionID).Delete(&models.ConnectionVariable{}).Error; err != nil {
			return err
		}
		after := map[string]any{}
		for name, value := range vars {
			after[name] = value
			if err := tx.Create(&models.ConnectionVariable{ConnectionID: connectionID, Name: name, Value: value}).Error; err != nil {
				return err
			}
		}
		return pg.LogActivity(tx, actor, "set connection variables", "connection", conn.ID, conn.Name, before, after)
	})
	if err != nil {
		return fmt.Errorf("set variables of connection %d: %w", connectionID, err)
	}
	return nil
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
