package store

import (
	"context"
	"fmt"

	"unifi/models"
	"unifi/models/pg"
)

// GetIntegration returns the integration with id.
func (s *Store) GetIntegration(ctx context.Context, id int64) (*models.Integration, error) {
	var i models.Integration
	if err := s.db.WithContext(ctx).Take(&i, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get integration %d", id))
	}
	return &i, nil
}

// GetIntegrationByName returns the integration called name.
func (s *Store) GetIntegrationByName(ctx context.Context, name string) (*models.Integration, error) {
	var i models.Integration
	if err := s.db.WithContext(ctx).Where("name = ?", name).Take(&i).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get integration %q", name))
	}
	return &i, nil
}

// ActiveConnection returns the integration's active connection, its secret opened.
func (s *Store) ActiveConnection(ctx context.Context, integrationID int64) (*models.Connection, error) {
	var c models.Connection
	err := s.db.WithContext(ctx).Where("integration_id = ? AND active", integrationID).Take(&c).Error
	if err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("active connection of integration %d", integrationID))
	}
	if err := s.OpenSecret(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ListMessages returns an integration's messages by name.
func (s *Store) ListMessages(ctx context.Context, integrationID int64) ([]models.Message, error) {
	var out []models.Message
	if err := s.db.WithContext(ctx).Where("integration_id = ?", integrationID).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list messages of integration %d: %w", integrationID, err)
	}
	return out, nil
}
