// Package query holds the page read models: the lists and details of bonds,
// tickets, transactions and integrations, the operations view and the
// transaction counts by state.
package query

import (
	"context"
	"time"

	"unifi/models/converge"

	"gorm.io/gorm"
)

// Reader reads what the pages show.
type Reader struct {
	db  *gorm.DB
	now func() time.Time
}

// NewReader returns a Reader on db; now is its clock (nil: time.Now).
func NewReader(db *gorm.DB, now func() time.Time) *Reader {
	if now == nil {
		now = time.Now
	}
	return &Reader{db: db, now: now}
}

// ListConflicts is the conflicts list: concurrent edits resolved, newest
// first (models/converge).
func (s *Reader) ListConflicts(ctx context.Context, f converge.Filter) ([]converge.Row, error) {
	return converge.List(ctx, s.db.WithContext(ctx), f)
}
