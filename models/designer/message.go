package designer

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// MessageSet is an integration's messages with their fields and response
// actions, for the message pages.
type MessageSet struct {
	Integration models.Integration
	Messages    []models.Message
	Fields      map[int64][]models.Field // by message id, in position order
	Actions     []models.ResponseAction  // the integration's own, by status
	// TicketFields are the ticket fields its messages may map: the built-in
	// ones, then its process's own as custom.<name>.
	TicketFields []string
}

// Messages reads integration id's message set.
func (d *Designer) Messages(ctx context.Context, id int64) (*MessageSet, error) {
	db := d.store.DB(ctx)
	set := &MessageSet{Fields: map[int64][]models.Field{}}
	if err := db.Take(&set.Integration, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("integration %d", id))
	}
	if err := db.Where("integration_id = ?", id).Order("name").Find(&set.Messages).Error; err != nil {
		return nil, fmt.Errorf("list messages of integration %d: %w", id, err)
	}
	var fields []models.Field
	if err := db.Where("message_id IN (SELECT id FROM messages WHERE integration_id = ?)", id).
		Order("position, id").Find(&fields).Error; err != nil {
		return nil, fmt.Errorf("list fields of integration %d: %w", id, err)
	}
	for _, f := range fields {
		set.Fields[f.MessageID] = append(set.Fields[f.MessageID], f)
	}
	if err := db.Where("integration_id = ?", id).Order("status_code, message_id NULLS FIRST").Find(&set.Actions).Error; err != nil {
		return nil, fmt.Errorf("list response actions of integration %d: %w", id, err)
	}
	var err error
	if set.TicketFields, err = ticketFields(db, id); err != nil {
		return nil, err
	}
	return set, nil
}

// ticketFields lists the ticket fields a message of integration
// integrationID may map (and its trigger may watch): the built-in ones, then
// the own fields of the integration's process as custom.<name>, in the
// order of its ticket form.
func ticketFields(tx *gorm.DB, integrationID int64) ([]string, error) {
	var names []string
	if err := tx.Model(&models.ProcessField{}).
		Joins("JOIN integrations i ON i.process_id = process_fields.process_id").
		Where("i.id = ?", integrationID).Order("process_fields.position, process_fields.id").
		Pluck("process_fields.name", &names).Error; err != nil {
		return nil, fmt.Errorf("list process fields of integration %d: %w", integrationID, err)
	}
	out := append(make([]string, 0, len(models.MappableFields)+len(names)), models.MappableFields...)
	for _, n := range names {
		out = append(out, models.CustomPrefix+n)
	}
	return out, nil
}

// TicketFields lists the ticket fields a message of integration
// integrationID may map (ticketFields).
func (d *Designer) TicketFields(ctx context.Context, integrationID int64) ([]string, error) {
	return ticketFields(d.store.DB(ctx), integrationID)
}

// messageScope reads what ValidateMessage needs, in tx.
func messageScope(tx *gorm.DB, integrationID int64) (models.MessageScope, error) {
	var sc models.MessageScope
	var err error
	if sc.TicketFields, err = ticketFields(tx, integrationID); err != nil {
		return sc, err
	}
	if err := tx.Where("integration_id = ?", integrationID).Find(&sc.Messages).Error; err != nil {
		return sc, fmt.Errorf("list messages of integration %d: %w", integrationID, err)
	}
	return sc, nil
}

// messageNameTaken turns a unique violation (two saves racing for one
// name) into the message next to the name field.
func messageNameTaken(err error, name string) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("This integration has a message named %s already.", name)}}
	}
	return err
}

// CreateMessage creates a message of integration integrationID from its form.
func (d *Designer) CreateMessage(ctx context.Context, actor models.Actor, integrationID int64, f MessageForm) (*models.Message, error) {
	m := &models.Message{IntegrationID: integrationID}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var in models.Integration
		if err := tx.Take(&in, integrationID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", integrationID))
		}
		sc, err := messageScope(tx, integrationID)
		if err != nil {
			return err
		}
		if err := ParseMessage(f, m, sc); err != nil {
			return err
		}
		return messageNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, m) }), m.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("create message: %w", err)
	}
	return m, nil
}

// UpdateMessage saves an edited message, provided it is still at version base.
func (d *Designer) UpdateMessage(ctx context.Context, actor models.Actor, id int64, base int, f MessageForm) (*models.Message, error) {
	var m models.Message
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&m, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("message %d", id))
		}
		sc, err := messageScope(tx, m.IntegrationID)
		if err != nil {
			return err
		}
		if err := ParseMessage(f, &m, sc); err != nil {
			return err
		}
		return messageNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &m) }), m.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("update message %d: %w", id, err)
	}
	return &m, nil
}

// GetMessage returns message id.
func (d *Designer) GetMessage(ctx context.Context, id int64) (*models.Message, error) {
	var m models.Message
	if err := d.store.DB(ctx).Take(&m, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("message %d", id))
	}
	return &m, nil
}

// fieldScope reads the other fields of message messageID, in tx.
func fieldScope(tx *gorm.DB, messageID int64) ([]models.Field, error) {
	var others []models.Field
	if err := tx.Where("message_id = ?", messageID).Find(&others).Error; err != nil {
		return nil, fmt.Errorf("list fields of message %d: %w", messageID, err)
	}
	return others, nil
}

// fieldTaken turns a unique violation (a race for a ticket field or a
// property) into a message next to the ticket field.
func fieldTaken(err error) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"ticket_field": "This message maps that ticket field or property already."}}
	}
	return err
}

// CreateField adds a field to message messageID.
func (d *Designer) CreateField(ctx context.Context, actor models.Actor, messageID int64, ff FieldForm) (*models.Field, error) {
	f := &models.Field{MessageID: messageID}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var m models.Message
		if err := tx.Take(&m, messageID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("message %d", messageID))
		}
		others, err := fieldScope(tx, messageID)
		if err != nil {
			return err
		}
		tf, err := ticketFields(tx, m.IntegrationID)
		if err != nil {
			return err
		}
		if err := ParseField(ff, f, others, tf); err != nil {
			return err
		}
		return fieldTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, f) }))
	})
	if err != nil {
		return nil, fmt.Errorf("create field: %w", err)
	}
	return f, nil
}

// UpdateField saves an edited field, provided it is still at version base.
func (d *Designer) UpdateField(ctx context.Context, actor models.Actor, id int64, base int, ff FieldForm) (*models.Field, error) {
	var f models.Field
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&f, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("field %d", id))
		}
		others, err := fieldScope(tx, f.MessageID)
		if err != nil {
			return err
		}
		var m models.Message
		if err := tx.Take(&m, f.MessageID).Error; err != nil {
			return fmt.Errorf("message of field %d: %w", id, err)
		}
		tf, err := ticketFields(tx, m.IntegrationID)
		if err != nil {
			return err
		}
		if err := ParseField(ff, &f, others, tf); err != nil {
			return err
		}
		return fieldTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &f) }))
	})
	if err != nil {
		return nil, fmt.Errorf("update field %d: %w", id, err)
	}
	return &f, nil
}

// GetField returns field id.
func (d *Designer) GetField(ctx context.Context, id int64) (*models.Field, error) {
	var f models.Field
	if err := d.store.DB(ctx).Take(&f, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("field %d", id))
	}
	return &f, nil
}

// DeleteField removes a field, provided it is still at version base.
func (d *Designer) DeleteField(ctx context.Context, actor models.Actor, id int64, base int) (*models.Field, error) {
	var f models.Field
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&f, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("field %d", id))
		}
		return Delete(tx, actor, base, &f)
	})
	if err != nil {
		return nil, fmt.Errorf("delete field %d: %w", id, err)
	}
	return &f, nil
}

// actionTaken turns the unique scope (one action per integration, message
// and status) into a message next to the status.
func actionTaken(err error) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"status_code": "There is a response action for this status and message already; edit that one."}}
	}
	return err
}

// CreateResponseAction adds a response action to integration integrationID.
func (d *Designer) CreateResponseAction(ctx context.Context, actor models.Actor, integrationID int64, f ResponseActionForm) (*models.ResponseAction, error) {
	a := &models.ResponseAction{IntegrationID: &integrationID}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		sc, err := messageScope(tx, integrationID)
		if err != nil {
			return err
		}
		var in models.Integration
		if err := tx.Take(&in, integrationID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", integrationID))
		}
		if err := ParseResponseAction(f, a, sc.Messages); err != nil {
			return err
		}
		return actionTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, a) }))
	})
	if err != nil {
		return nil, fmt.Errorf("create response action: %w", err)
	}
	return a, nil
}

// UpdateResponseAction saves an edited response action of an integration
// (the global default is not the Designer's to edit), provided it is still
// at version base.
func (d *Designer) UpdateResponseAction(ctx context.Context, actor models.Actor, id int64, base int, f ResponseActionForm) (*models.ResponseAction, error) {
	var a models.ResponseAction
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("integration_id IS NOT NULL").Take(&a, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("response action %d", id))
		}
		sc, err := messageScope(tx, *a.IntegrationID)
		if err != nil {
			return err
		}
		if err := ParseResponseAction(f, &a, sc.Messages); err != nil {
			return err
		}
		return actionTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &a) }))
	})
	if err != nil {
		return nil, fmt.Errorf("update response action %d: %w", id, err)
	}
	return &a, nil
}

// GetResponseAction returns an integration's response action id.
func (d *Designer) GetResponseAction(ctx context.Context, id int64) (*models.ResponseAction, error) {
	var a models.ResponseAction
	if err := d.store.DB(ctx).Where("integration_id IS NOT NULL").Take(&a, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("response action %d", id))
	}
	return &a, nil
}

// DeleteResponseAction removes an integration's response action (the
// global default is not the Designer's to delete), provided it is still at
// version base. Nothing refers to a response action, so it can always go:
// the HTTP Requests that named it keep its description as text.
func (d *Designer) DeleteResponseAction(ctx context.Context, actor models.Actor, id int64, base int) (*models.ResponseAction, error) {
	var a models.ResponseAction
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("integration_id IS NOT NULL").Take(&a, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("response action %d", id))
		}
		return Delete(tx, actor, base, &a)
	})
	if err != nil {
		return nil, fmt.Errorf("delete response action %d: %w", id, err)
	}
	return &a, nil
}

// DeleteMessage deletes a message with its fields and response actions,
// provided it is still at version base, no transaction used it (those are
// history), and no other message names it as its receipt or response.
func (d *Designer) DeleteMessage(ctx context.Context, actor models.Actor, id int64, base int) (*models.Message, error) {
	var m models.Message
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&m, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("message %d", id))
		}
		var used struct{ Transactions, Referrers int64 }
		if err := tx.Raw(`SELECT (SELECT count(*) FROM transactions WHERE message_id = ?) AS transactions,
				(SELECT count(*) FROM messages WHERE receipt_message_id = ? OR response_message_id = ?) AS referrers`,
			id, id, id).Scan(&used).Error; err != nil {
			return fmt.Errorf("count uses of message %d: %w", id, err)
		}
		switch {
		case used.Transactions > 0:
			return &models.ConflictError{Reason: fmt.Sprintf("Message %s cannot be deleted: %d transactions used it, and they are the history of what was sent and received. Set its trigger to never instead.", m.Name, used.Transactions)}
		case used.Referrers > 0:
			return &models.ConflictError{Reason: fmt.Sprintf("Message %s cannot be deleted: another message names it as its receipt or response message; choose another there first.", m.Name)}
		}
		return Delete(tx, actor, base, &m)
	})
	if err != nil {
		return nil, fmt.Errorf("delete message %d: %w", id, err)
	}
	return &m, nil
}
