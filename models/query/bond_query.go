package query

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"unifi/models"
	"unifi/models/converge"
	"unifi/models/pg"
	"unifi/models/queue"
)

// BondRow is a bond as the lists show it: the columns they show (read by
// bondColumnsOf, not a bond's whole row: its history grows with the bond) and
// the names beside them.
type BondRow struct {
	ID                int64
	IntegrationID     int64
	TicketID          int64
	ExternalReference string
	State             models.BondState
	ProcessError      string
	UpdatedAt         time.Time
	IntegrationName   string
	TicketNumber      string
	// Status is BondStatusOf the bond's head transaction.
	Status models.BondStatus
}

// bondColumnsOf lists BondRow's columns of bonds alias, for a SELECT list.
func bondColumnsOf(alias string) string {
	cols := []string{"id", "integration_id", "ticket_id", "external_reference", "state", "process_error", "updated_at"}
	for i, c := range cols {
		cols[i] = alias + "." + c
	}
	return strings.Join(cols, ", ")
}

// BondFilter narrows the bonds list.
type BondFilter struct {
	IntegrationID int64
	TicketID      int64
	State         models.BondState
	Reference     string // internal or external reference
	WithError     bool   // only bonds holding a process error
	Stuck         bool   // only bonds whose head blocks work queued behind it (models.BlockingStates)
	BeforeID      int64  // keyset: bonds updated before this one (by updated_at, id)
	Limit         int
}

// QueryBonds returns bonds newest-updated first, each with its status.
func (s *Reader) QueryBonds(ctx context.Context, f BondFilter) ([]BondRow, error) {
	if f.Limit <= 0 || f.Limit > maxPageSize {
		f.Limit = 50
	}
	var args []any
	var w []string
	if f.IntegrationID != 0 {
		w = append(w, "b.integration_id = "+arg(&args, f.IntegrationID))
	}
	if f.TicketID != 0 {
		w = append(w, "b.ticket_id = "+arg(&args, f.TicketID))
	}
	if f.State != "" {
		w = append(w, "b.state = "+arg(&args, string(f.State)))
	}
	if ref := strings.TrimSpace(f.Reference); ref != "" {
		r := arg(&args, ref)
		w = append(w, "(b.internal_reference = "+r+" OR b.external_reference = "+r+")")
	}
	if f.WithError {
		w = append(w, "b.process_error <> ''")
	}
	if f.Stuck {
		w = append(w, `b.id IN (SELECT h.bond_id FROM transactions h WHERE h.direction = 'Outbound'
			AND h.state IN (`+pg.StateSQL(models.BlockingStates...)+`) AND `+queuedBehind+`)`)
	}
	if f.BeforeID != 0 {
		w = append(w, "(b.updated_at, b.id) < (SELECT updated_at, id FROM bonds WHERE id = "+arg(&args, f.BeforeID)+")")
	}
	var rows []BondRow
	var rb pg.Batch
	pg.QueueRows(&rb, &rows, `SELECT `+bondColumnsOf("b")+` FROM bonds b`+whereClause(w)+
		` ORDER BY b.updated_at DESC, b.id DESC LIMIT `+arg(&args, f.Limit), args...) // LIMIT: see queueTransactionPage
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("query bonds: %w", err)
	}
	if err := s.fillNames(ctx, nil, rows, knownNames{}); err != nil {
		return nil, err
	}
	return rows, nil
}

// bondHeads returns the state of the oldest unfinished outbound transaction
// of each bond that has one.
func (s *Reader) bondHeads(ctx context.Context, bondIDs []int64) (map[int64]models.TransportState, error) {
	heads := map[int64]models.TransportState{}
	var rb pg.Batch
	queueBondHeads(&rb, bondIDs, heads)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("bond heads: %w", err)
	}
	return heads, nil
}

// queueBondHeads reads into heads the state of the oldest unfinished
// outbound transaction of each bond that has one: the one in progress (at
// most one per bond, and first in its queue), else Queued when something
// waits. Two probes per bond into the small partial indexes
// transactions_bond_head and transactions_bond_queued (states are literals,
// so that one cached plan serves every call), rather than a walk through
// every transaction the bond ever had.
func queueBondHeads(rb *pg.Batch, bondIDs []int64, heads map[int64]models.TransportState) {
	pg.QueueScan(rb, func(rows pgx.Rows) error {
		var id int64
		var st *int16 // NULL: nothing unfinished on the bond
		_, err := pgx.ForEachRow(rows, []any{&id, &st}, func() error {
			if st != nil {
				heads[id] = models.TransportState(*st)
			}
			return nil
		})
		return err
	}, `SELECT b.id, h.state FROM unnest($1::bigint[]) AS b(id)
		CROSS JOIN LATERAL (SELECT `+queue.HeadStateSQL("b.id")+` AS state) h`, bondIDs)
}

// BondTransaction is a transaction in its bond's order, with its place in the
// queue when it is Queued (1 = next to go).
type BondTransaction struct {
	models.Transaction
	MessageName   string
	QueuePosition int
}

// BondDetail is the Bond page.
type BondDetail struct {
	Bond         models.Bond
	Integration  models.Integration
	Ticket       models.Ticket
	Status       models.BondStatus
	Transactions []BondTransaction
	Truncated    bool // only the last bondTransactionsShown are listed
	// LatestProcessError is the newest rejected transaction's process error
	// (or the bond's rolled-up one).
	LatestProcessError string
	LatestErrorTxn     *models.Transaction
	// Conflicts are the bond's newest overwritten changes.
	Conflicts []converge.Row
}

const bondTransactionsShown = 500

// bondTransactionsSQL reads the newest transactions of a bond (the first
// argument), at most the second, oldest first: found in
// transaction_keys_bond_order, which holds the bond's place of each.
const bondTransactionsSQL = `SELECT * FROM (
		SELECT t.*, m.name AS message_name FROM transaction_keys tk JOIN transactions t ON t.id = tk.id
		JOIN messages m ON m.id = t.message_id
		WHERE tk.bond_id = ? ORDER BY tk.seq DESC, tk.id DESC LIMIT ?) x
	ORDER BY seq, id`

// LoadBondDetail reads a bond with its transactions in order.
func (s *Reader) LoadBondDetail(ctx context.Context, id int64) (*BondDetail, error) {
	db := s.db.WithContext(ctx)
	d := &BondDetail{}
	if err := db.Take(&d.Bond, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get bond %d", id))
	}
	if err := db.Take(&d.Integration, d.Bond.IntegrationID).Error; err != nil {
		return nil, fmt.Errorf("bond %d: integration: %w", id, err)
	}
	if err := db.Take(&d.Ticket, d.Bond.TicketID).Error; err != nil {
		return nil, fmt.Errorf("bond %d: ticket: %w", id, err)
	}
	var txns []BondTransaction
	err := db.Raw(bondTransactionsSQL, id, bondTransactionsShown+1).Scan(&txns).Error
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
			AND state = ? AND (seq, id) < (?, ?)`, id, models.Queued, txns[0].Seq, txns[0].ID).Scan(&n).Error; err != nil {
			return nil, fmt.Errorf("bond %d: queue: %w", id, err)
		}
		before = int(n)
	}
	pos := before
	var head *models.TransportState
	for i := range txns {
		t := &txns[i]
		if t.Direction == models.Outbound && t.State == models.Queued {
			pos++
			t.QueuePosition = pos
		}
		if head == nil && t.Direction == models.Outbound && !t.State.Finished() {
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
	d.Status = models.BondStatusOf(head)
	d.Transactions = txns
	var rejected []models.Transaction
	if err := db.Where("id IN (SELECT id FROM transaction_keys WHERE bond_id = ?) AND process_error <> ''", id).Order("id DESC").Limit(1).Find(&rejected).Error; err != nil {
		return nil, fmt.Errorf("bond %d: process error: %w", id, err)
	}
	d.LatestProcessError = d.Bond.ProcessError
	if len(rejected) == 1 {
		d.LatestErrorTxn = &rejected[0]
		if d.LatestProcessError == "" {
			d.LatestProcessError = rejected[0].ProcessError
		}
	}
	var rb pg.Batch
	converge.QueueByBond(&rb, &d.Conflicts, id)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("bond %d: conflicts: %w", id, err)
	}
	return d, nil
}
