package designer

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// Processes lists the processes an integration may carry, by name.
func (d *Designer) Processes(ctx context.Context) ([]models.Process, error) {
	var out []models.Process
	if err := d.store.DB(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	return out, nil
}

// checkProcess refuses a process id that names no process.
func checkProcess(tx *gorm.DB, id int64) error {
	var n int64
	if err := tx.Model(&models.Process{}).Where("id = ?", id).Count(&n).Error; err != nil {
		return fmt.Errorf("check process %d: %w", id, err)
	}
	if n == 0 {
		return &models.ValidationError{Fields: map[string]string{"process_id": "That process does not exist (any more); choose another."}}
	}
	return nil
}

// nameTaken turns a unique violation on an integration's name into the
// message next to the name field.
func nameTaken(err error, name string) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("An integration named %q already exists; choose another name.", name)}}
	}
	return err
}

// CreateIntegration creates an integration from its form. It starts Active
// with status Awaiting; nothing is sent until it has an active connection
// and messages.
func (d *Designer) CreateIntegration(ctx context.Context, actor models.Actor, f IntegrationForm) (*models.Integration, error) {
	in := &models.Integration{State: models.IntegrationActive, Status: models.StatusAwaiting}
	if err := ParseIntegration(f, in); err != nil {
		return nil, err
	}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := checkProcess(tx, in.ProcessID); err != nil {
			return err
		}
		// A savepoint, so that a taken name leaves the transaction usable for the answer.
		return nameTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, in) }), in.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("create integration: %w", err)
	}
	return in, nil
}

// UpdateIntegration saves an edited integration, provided it is still at
// version base.
func (d *Designer) UpdateIntegration(ctx context.Context, actor models.Actor, id int64, base int, f IntegrationForm) (*models.Integration, error) {
	var in models.Integration
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&in, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", id))
		}
		if err := ParseIntegration(f, &in); err != nil {
			return err
		}
		if err := checkProcess(tx, in.ProcessID); err != nil {
			return err
		}
		return nameTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &in) }), in.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("update integration %d: %w", id, err)
	}
	return &in, nil
}

// SetIntegrationOn switches an integration Off (nothing is sent or
// received; transactions wait) or back On (Active). A paused integration
// switched Off comes back Active: switching Off ends the pause too.
func (d *Designer) SetIntegrationOn(ctx context.Context, actor models.Actor, id int64, base int, on bool) (*models.Integration, error) {
	var in models.Integration
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&in, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", id))
		}
		switch {
		case on && in.State != models.IntegrationOff:
			return &models.ConflictError{Reason: fmt.Sprintf("Integration %s is already on (%s).", in.Name, in.State)}
		case !on && in.State == models.IntegrationOff:
			return &models.ConflictError{Reason: fmt.Sprintf("Integration %s is already off.", in.Name)}
		case on:
			in.State = models.IntegrationActive
		default:
			in.State, in.PausedAt = models.IntegrationOff, nil
		}
		return Update(tx, actor, base, &in)
	})
	if err != nil {
		return nil, fmt.Errorf("switch integration %d: %w", id, err)
	}
	return &in, nil
}

// DeleteIntegration deletes an integration with its connections, messages,
// fields and response actions, provided it has no transactions (those are
// history: switch it Off instead) and is still at version base.
func (d *Designer) DeleteIntegration(ctx context.Context, actor models.Actor, id int64, base int) error {
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var in models.Integration
		if err := tx.Take(&in, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", id))
		}
		var n int64
		if err := tx.Raw(countHistory, id, id).Scan(&n).Error; err != nil {
			return fmt.Errorf("count transactions: %w", err)
		}
		if n > 0 {
			return &models.ConflictError{Reason: fmt.Sprintf("Integration %s cannot be deleted: it has transactions and bonds, which are the history of what it sent and received. Switch it Off instead.", in.Name)}
		}
		// Refused inbound requests and finished bulk jobs name it without a transaction.
		if err := tx.Exec(`DELETE FROM http_requests WHERE integration_id = ? AND transaction_id IS NULL`, id).Error; err != nil {
			return fmt.Errorf("delete refused requests: %w", err)
		}
		if err := tx.Exec(`DELETE FROM bulk_jobs WHERE integration_id = ?`, id).Error; err != nil {
			return fmt.Errorf("delete bulk jobs: %w", err)
		}
		return Delete(tx, actor, base, &in)
	})
	if err != nil && !errors.Is(err, models.ErrConflict) && !errors.Is(err, models.ErrNotFound) {
		return fmt.Errorf("delete integration %d: %w", id, err)
	}
	return err
}

// TransactionCount is how many transactions and bonds an integration has
// (an integration with any cannot be deleted).
func (d *Designer) TransactionCount(ctx context.Context, id int64) (int64, error) {
	var n int64
	if err := d.store.DB(ctx).Raw(countHistory, id, id).Scan(&n).Error; err != nil {
		return 0, fmt.Errorf("count transactions of integration %d: %w", id, err)
	}
	return n, nil
}

const countHistory = `SELECT (SELECT count(*) FROM transaction_keys WHERE integration_id = ?)
	+ (SELECT count(*) FROM bonds WHERE integration_id = ?)`
