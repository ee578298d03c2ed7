package models

import (
	"context"
	"fmt"
)

// ListIntegrations returns every integration by name.
func (s *Store) ListIntegrations(ctx context.Context) ([]Integration, error) {
	var out []Integration
	if err := s.db.WithContext(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return out, nil
}

// GetIntegration returns the integration with id.
func (s *Store) GetIntegration(ctx context.Context, id int64) (*Integration, error) {
	var i Integration
	if err := s.db.WithContext(ctx).Take(&i, id).Error; err != nil {
		return nil, NotFound(err, fmt.Sprintf("get integration %d", id))
	}
	return &i, nil
}

// GetIntegrationByName returns the integration called name.
func (s *Store) GetIntegrationByName(ctx context.Context, name string) (*Integration, error) {
	var i Integration
	if err := s.db.WithContext(ctx).Where("name = ?", name).Take(&i).Error; err != nil {
		return nil, NotFound(err, fmt.Sprintf("get integration %q", name))
	}
	return &i, nil
}

// ActiveConnection returns the integration's active connection, its secret opened.
func (s *Store) ActiveConnection(ctx context.Context, integrationID int64) (*Connection, error) {
	var c Connection
	err := s.db.WithContext(ctx).Where("integration_id = ? AND active", integrationID).Take(&c).Error
	if err != nil {
		return nil, NotFound(err, fmt.Sprintf("active connection of integration %d", integrationID))
	}
	if err := s.OpenSecret(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

// ListMessages returns an integration's messages by name.
func (s *Store) ListMessages(ctx context.Context, integrationID int64) ([]Message, error) {
	var out []Message
	if err := s.db.WithContext(ctx).Where("integration_id = ?", integrationID).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list messages of integration %d: %w", integrationID, err)
	}
	return out, nil
}

// StateCount is how many transactions of an integration are in one state.
type StateCount struct {
	State TransportState
	Count int64
}
