package models

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// LogActivity records a user action in the same database transaction as the change.
func LogActivity(tx *gorm.DB, actor Actor, action, recordType string, recordID int64, label string,
	before, after map[string]any) error {
	a := ActivityLog{UserName: actor.Name, Action: action, RecordType: recordType, RecordLabel: label,
		RemoteAddr: actor.RemoteAddr, Before: JSON[map[string]any]{V: before}, After: JSON[map[string]any]{V: after}}
	if actor.UserID != 0 {
		a.UserID = &actor.UserID
	}
	if recordID != 0 {
		a.RecordID = &recordID
	}
	if err := tx.Create(&a).Error; err != nil {
		return fmt.Errorf("log activity %q: %w", action, err)
	}
	return nil
}

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
func (s *Store) ListActivity(ctx context.Context, f ActivityFilter) ([]ActivityLog, error) {
	q := s.db.WithContext(ctx).Model(&ActivityLog{})
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
	var out []ActivityLog
	if err := q.Order("id DESC").Limit(f.Limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list activity: %w", err)
	}
	return out, nil
}
