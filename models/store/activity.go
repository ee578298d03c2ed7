package store

import (
	"context"
	"fmt"

	"unifi/models"
)

// ActivityFilter narrows the activity log.
type ActivityFilter struct {
	UserName   string
	RecordType string
	RecordID   int64
	Action     string
	BeforeID   int64 // keyset: entries older than this id
	Limit      int
}

// ListActivity returns activity entries, newest first.
func (s *Store) ListActivity(ctx context.Context, f ActivityFilter) ([]models.ActivityLog, error) {
	q := s.db.WithContext(ctx).Model(&models.ActivityLog{})
	if f.UserName != "" {
		q = q.Where("user_name = ?", f.UserName)
	}
	if f.RecordType != "" {
		q = q.Where("record_type = ?", f.RecordType)
	}
	if f.RecordID != 0 {
		q = q.Where("record_id = ?", f.RecordID)
	}
	if f.Action != "" {
		q = q.Where("action = ?", f.Action)
	}
	if f.BeforeID != 0 {
		q = q.Where("id < ?", f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	var out []models.ActivityLog
	if err := q.Order("id DESC").Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list activity: %w", err)
	}
	return out, nil
}
