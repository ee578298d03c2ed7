package models

import (
	"context"
	"fmt"
	"strings"
)

// BondRow is a bond with what lists show beside it.
type BondRow struct {
	Bond
	IntegrationName string
	TicketNumber    string
	// Status is BondStatusOf the bond's head transaction.
	Status BondStatus
}

// BondFilter narrows the bonds list.
type BondFilter struct {
	IntegrationID int64
	TicketID      int64
	State         BondState
	Reference     string // internal or external reference
	WithError     bool   // only bonds holding a process error
	BeforeID      int64  // keyset: bonds updated before this one (by updated_at, id)
	Limit         int
}

// QueryBonds returns bonds newest-updated first, each with its status.
func (s *Store) QueryBonds(ctx context.Context, f BondFilter) ([]BondRow, error) {
	if f.Limit <= 0 || f.Limit > maxPageSize {
		f.Limit = 50
	}
	q := s.db.WithContext(ctx).Table("bonds b").
		Select("b.*, i.name AS integration_name, tk.number AS ticket_number").
		Joins("JOIN integrations i ON i.id = b.integration_id").
		Joins("JOIN tickets tk ON tk.id = b.ticket_id")
	if f.IntegrationID != 0 {
		q = q.Where("b.integration_id = ?", f.IntegrationID)
	}
	if f.TicketID != 0 {
		q = q.Where("b.ticket_id = ?", f.TicketID)
	}
	if f.State != "" {
		q = q.Where("b.state = ?", f.State)
	}
	if ref := strings.TrimSpace(f.Reference); ref != "" {
		q = q.Where("(b.internal_reference = ? OR b.external_reference = ?)", ref, ref)
	}
	if f.WithError {
		q = q.Where("b.process_error <> ''")
	}
	if f.BeforeID != 0 {
		q = q.Where("(b.updated_at, b.id) < (SELECT updated_at, id FROM bonds WHERE id = ?)", f.BeforeID)
	}
	var rows []BondRow
	if err := q.Order("b.updated_at DESC, b.id DESC").Limit(f.Limit).Scan(&rows).Error; err != nil {
		return nil, fmt.Errorf("query bonds: %w", err)
	}
	if err := s.fillBondStatus(ctx, rows); err != nil {
		return nil, err
	}
	return rows, nil
}

// fillBondStatus sets each row's Status from its head transaction.
func (s *Store) fillBondStatus(ctx context.Context, rows []BondRow) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]int64, len(rows))
	for i, r := range rows {
		ids[i] = r.ID
	}
	heads, err := s.bondHeads(ctx, ids)
	if err != nil {
		return err
	}
	for i := range rows {
		if st, ok := heads[rows[i].ID]; ok {
			rows[i].Status = BondStatusOf(&st)
		} else {
			rows[i].Status = BondStatusOf(nil)
		}
	}
	return nil
}

// bondHeads returns the state of the oldest unfinished outbound transaction
// of each bond that has one.
func (s *Store) bondHeads(ctx context.Context, bondIDs []int64) (map[int64]TransportState, error) {
	var heads []struct {
		BondID int64
		State  TransportState
	}
	err := s.db.WithContext(ctx).Raw(`SELECT DISTINCT ON (bond_id) bond_id, state FROM transactions
		WHERE bond_id IN ? AND direction = 'Outbound' AND state NOT IN (?, ?)
		ORDER BY bond_id, seq, id`, bondIDs, Complete, Ignored).Scan(&heads).Error
	if err != nil {
		return nil, fmt.Errorf("bond heads: %w", err)
	}
	out := make(map[int64]TransportState, len(heads))
	for _, h := range heads {
		out[h.BondID] = h.State
	}
	return out, nil
}

// BondTransaction is a transaction in its bond's order, with its place in the
// queue when it is Queued (1 = next to go).
type BondTransaction struct {
	Transaction
	MessageName   string
	QueuePosition int
}

// BondDetail is the Bond page.
type BondDetail struct {
	Bond         Bond
	Integration  Integration
	Ticket       Ticket
	Status       BondStatus
	Transactions []BondTransaction
	Truncated    bool // only the last bondTransactionsShown are listed
	// LatestProcessError is the newest rejected transaction's process error
	// (or the bond's rolled-up one).
	LatestProcessError string
	LatestErrorTxn     *Transaction
}

const bondTransactionsShown = 500

// LoadBondDetail reads a bond with its transactions in order.
func (s *Store) LoadBondDetail(ctx context.Context, id int64) (*BondDetail, error) {
	db := s.db.WithContext(ctx)
	d := &BondDetail{}
	if err := db.Take(&d.Bond, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get bond %d", id))
	}
	if err := db.Take(&d.Integration, d.Bond.IntegrationID).Error; err != nil {
		return nil, fmt.Errorf("bond %d: integration: %w", id, err)
	}
	if err := db.Take(&d.Ticket, d.Bond.TicketID).Error; err != nil {
		return nil, fmt.Errorf("bond %d: ticket: %w", id, err)
	}
	var txns []BondTransaction
	err := db.Raw(`SELECT * FROM (
			SELECT t.*, m.name AS message_name FROM transactions t JOIN messages m ON m.id = t.message_id
			WHERE t.bond_id = ? ORDER BY t.seq DESC, t.id DESC LIMIT ?) x
		ORDER BY seq, id`, id, bondTransactionsShown+1).Scan(&txns).Error
	if err != nil {
		return nil, fmt.Errorf("bond %d: transactions: %w", id, err)
	}
	if len(txns) > bondTransactionsShown {
		d.Truncated = true
		txns = txns[1:]
	}
	// Queue positions count every queued outbound transaction, listed or not.
	var before int
	if d.Truncated && len(txns) > 0 {
		var n int64
		if err := db.Raw(`SELECT count(*) FROM transactions WHERE bond_id = ? AND direction = 'Outbound'
			AND state = ? AND (seq, id) < (?, ?)`, id, Queued, txns[0].Seq, txns[0].ID).Scan(&n).Error; err != nil {
			return nil, fmt.Errorf("bond %d: queue: %w", id, err)
		}
		before = int(n)
	}
	pos := before
	var head *TransportState
	for i := range txns {
		t := &txns[i]
		if t.Direction == Outbound && t.State == Queued {
			pos++
			t.QueuePosition = pos
		}
		if head == nil && t.Direction == Outbound && !t.State.Finished() {
			st := t.State
			head = &st
		}
	}
	if d.Truncated {
		heads, err := s.bondHeads(ctx, []int64{id})
		if err != nil {
			return nil, err
		}
		if st, ok := heads[id]; ok {
			head = &st
		} else {
			head = nil
		}
	}
	d.Status = BondStatusOf(head)
	d.Transactions = txns
	var rejected []Transaction
	if err := db.Where("bond_id = ? AND process_error <> ''", id).Order("id DESC").Limit(1).Find(&rejected).Error; err != nil {
		return nil, fmt.Errorf("bond %d: process error: %w", id, err)
	}
	d.LatestProcessError = d.Bond.ProcessError
	if len(rejected) == 1 {
		d.LatestErrorTxn = &rejected[0]
		if d.LatestProcessError == "" {
			d.LatestProcessError = rejected[0].ProcessError
		}
	}
	return d, nil
}
