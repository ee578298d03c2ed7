package enginedb

import (
	"cmp"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"unifi/models"
	"unifi/models/pg"
)

// The response message on the sending side (docs/designer-messages.md,
// "Response message"): a 2xx answer to a message that names a response
// message carries the remote ticket as it is now in its data; the data is
// mapped through the response message's inbound fields onto our ticket, in
// the database transaction that records the attempt. The ticket is written
// with SQL, not through the store's ticket operations, so the change sends
// nothing back: it came from the remote.

// responseFieldsSQL reads the fields of message $1 (the response message).
const responseFieldsSQL = `SELECT id, ticket_field, property, direction, default_value, value_map, inbound_value_map,
		required, position FROM fields WHERE message_id = $1 ORDER BY position, id`

// responseTicketSQL locks ticket $1 (after its bond: the lock order) and
// reads what a response's data may change.
const responseTicketSQL = `SELECT process_id, number, short_description, description, state, priority, urgency, impact,
		assignment_group, work_notes, custom FROM tickets WHERE id = $1 FOR NO KEY UPDATE`

// responseTicketUpdateSQL writes the mapped values onto ticket $1. The
// field stamps stay as they are: the values are the remote's, whose stamps
// the answer does not carry (models.MergeInbound without stamps).
const responseTicketUpdateSQL = `UPDATE tickets SET short_description = $2, description = $3, state = $4,
		priority = $5, urgency = $6, impact = $7, assignment_group = $8, work_notes = $9, custom = $10,
		version = version + 1, updated_at = now() WHERE id = $1`

// applyResponses maps the answers' data of the delivered results whose
// message has a response message onto their tickets, tickets locked in id
// order (their bonds are locked already, lockBonds). Data that does not fit
// (a value with no mapping, a required property missing) changes nothing
// and leaves a note on the bond: the delivery stands.
func (r *recording) applyResponses() error {
	var todo []AttemptResult
	for _, res := range r.results {
		w := res.Work
		if r.ok[w.Transaction.ID] && res.Outcome == OutcomeDelivered && !w.IsReceipt() && res.ResponseData != nil &&
			w.Message.ResponseMessageID != nil {
			todo = append(todo, res)
		}
	}
	slices.SortFunc(todo, func(a, b AttemptResult) int {
		return cmp.Compare(a.Work.Transaction.TicketID, b.Work.Transaction.TicketID)
	})
	for _, res := range todo {
		if err := r.applyResponse(res); err != nil {
			return err
		}
	}
	return nil
}

// applyResponse applies one answer's data; see applyResponses.
func (r *recording) applyResponse(res AttemptResult) error {
	w := res.Work
	fields, err := r.responseFields(*w.Message.ResponseMessageID)
	if err != nil {
		return err
	}
	var k models.Ticket
	k.ID = w.Transaction.TicketID
	err = r.tx.Statement.ConnPool.QueryRowContext(r.tx.Statement.Context, responseTicketSQL, k.ID).Scan(&k.ProcessID,
		&k.Number, &k.ShortDescription, &k.Description, &k.State, &k.Priority, &k.Urgency, &k.Impact,
		&k.AssignmentGroup, &k.WorkNotes, &k.Custom)
	if err != nil {
		return fmt.Errorf("lock ticket %d: %w", k.ID, err)
	}
	var defs []models.ProcessField
	if mapsCustom(fields) {
		// Configuration, read with GORM like the inbound API's.
		if err := r.tx.Where("process_id = ?", k.ProcessID).Order("position, id").Find(&defs).Error; err != nil {
			return fmt.Errorf("read process fields of process %d: %w", k.ProcessID, err)
		}
	}
	m, err := models.MergeInbound(&k, fields, res.ResponseData, nil, false, defs)
	if err == nil {
		err = models.TicketLimits(&m.Ticket)
	}
	var number string
	if err == nil {
		number, err = models.RemoteNumber(fields, res.ResponseData)
	}
	if err != nil {
		note := fmt.Sprintf("%s: the answer's data was not applied: %s", w.Transaction.MessageIdent, err)
		if _, err := pg.Exec(r.tx, bondNoteSQL, w.Transaction.BondID, note); err != nil {
			return fmt.Errorf("note on bond %d: %w", w.Transaction.BondID, err)
		}
		return nil
	}
	if m.Changed {
		t := &m.Ticket
		if _, err := pg.Exec(r.tx, responseTicketUpdateSQL, t.ID, t.ShortDescription, t.Description, t.State,
			t.Priority, t.Urgency, t.Impact, t.AssignmentGroup, t.WorkNotes, t.Custom); err != nil {
			return fmt.Errorf("apply the answer's data to ticket %d: %w", t.ID, err)
		}
	}
	if number != "" {
		// The remote's number, as its response message maps it, is the
		// bond's reference; it wins over the answer's source_reference
		// (updateBondOnDelivery ran before): a remote that is not this
		// product may put something else there.
		if _, err := pg.Exec(r.tx, updateBondSQL, w.Transaction.BondID, number, string(models.BondPending),
			string(models.BondOpen), nil); err != nil {
			return fmt.Errorf("update bond %d: %w", w.Transaction.BondID, err)
		}
	}
	if w.Integration.AttachLogs && (m.Changed || number != "") {
		line := "The answer's data was applied to the ticket"
		if number != "" {
			line += "; their number is " + number
		}
		r.logs = append(r.logs, models.TransactionLog{TransactionID: w.Transaction.ID, Kind: models.LogTransactionRecv,
			Level: "info", Line: line})
	}
	return nil
}

// responseFields reads the fields of the response message id.
func (r *recording) responseFields(id int64) ([]models.Field, error) {
	var out []models.Field
	err := pg.Query(r.tx, responseFieldsSQL, func(rows *sql.Rows) error {
		f := models.Field{MessageID: id}
		if err := rows.Scan(&f.ID, &f.TicketField, &f.Property, &f.Direction, &f.Default, &f.ValueMap, &f.InboundMap,
			&f.Required, &f.Position); err != nil {
			return err
		}
		out = append(out, f)
		return nil
	}, id)
	if err != nil {
		return nil, fmt.Errorf("read fields of response message %d: %w", id, err)
	}
	return out, nil
}

// mapsCustom says whether fields map a process's own field.
func mapsCustom(fields []models.Field) bool {
	return slices.ContainsFunc(fields, func(f models.Field) bool { return strings.HasPrefix(f.TicketField, models.CustomPrefix) })
}
