package query

import (
	"context"
	"fmt"
	"strings"

	"unifi/models"
	"unifi/models/converge"
	"unifi/models/pg"
)

// TicketFilter narrows the tickets list.
type TicketFilter struct {
	Text string // number, or words in the short description
	// WithProcessErrors lists only tickets with a bond holding a process error.
	WithProcessErrors bool
	BeforeID          int64 // keyset: tickets updated before this one
	Limit             int
}

// TicketRow is a ticket in a list, with how many of its bonds hold a process error.
type TicketRow struct {
	models.Ticket
	BondCount         int
	ProcessErrorCount int
	LatestError       string
}

// QueryTickets returns tickets, most recently updated first.
func (s *Reader) QueryTickets(ctx context.Context, f TicketFilter) ([]TicketRow, error) {
	if f.Limit <= 0 || f.Limit > maxPageSize {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Table("tickets tk").Select(`tk.*,
		(SELECT count(*) FROM bonds b WHERE b.ticket_id = tk.id) AS bond_count,
		(SELECT count(*) FROM bonds b WHERE b.ticket_id = tk.id AND b.process_error <> '') AS process_error_count,
		coalesce((SELECT b.process_error FROM bonds b WHERE b.ticket_id = tk.id AND b.process_error <> ''
		          ORDER BY b.updated_at DESC LIMIT 1), '') AS latest_error`)
	if text := strings.TrimSpace(f.Text); text != "" {
		q = q.Where("(tk.number = ? OR tk.short_description ILIKE ?)", strings.ToUpper(text), "%"+escapeLike(text)+"%")
	}
	if f.WithProcessErrors {
		q = q.Where("tk.id IN (SELECT ticket_id FROM bonds WHERE process_error <> '')")
	}
	if f.BeforeID != 0 {
		q = q.Where("(tk.updated_at, tk.id) < (SELECT updated_at, id FROM tickets WHERE id = ?)", f.BeforeID)
	}
	var rows []TicketRow
	if err := q.Order("tk.updated_at DESC, tk.id DESC").Limit(f.Limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("query tickets: %w", err)
	}
	return rows, nil
}

// TicketDetail is the ticket page: the ticket and its "Integrations" related
// list (its bonds with state, status and the latest process error).
type TicketDetail struct {
	Ticket models.Ticket
	Bonds  []BondRow
	// Conflicts are the ticket's newest overwritten changes (concurrent
	// edits that lost: docs/domain.md, "Concurrent edits converge").
	Conflicts []converge.Row
}

// LoadTicketDetail reads a ticket and its bonds.
func (s *Reader) LoadTicketDetail(ctx context.Context, id int64) (*TicketDetail, error) {
	d := &TicketDetail{}
	if err := s.db.WithContext(ctx).Take(&d.Ticket, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get ticket %d", id))
	}
	bonds, err := s.QueryBonds(ctx, BondFilter{TicketID: id, Limit: maxPageSize})
	if err != nil {
		return nil, err
	}
	d.Bonds = bonds
	var rb pg.Batch
	converge.QueueByTicket(&rb, &d.Conflicts, id)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("ticket %d: conflicts: %w", id, err)
	}
	return d, nil
}
