package models

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// TransactionFilter narrows the transactions list. Zero values mean "any".
type TransactionFilter struct {
	IntegrationID int64
	States        []TransportState
	ProcessState  *ProcessState
	Direction     Direction
	MessageID     int64
	BondID        int64
	TicketID      int64
	// Reference matches a bond's internal or external reference (a ticket number).
	Reference   string
	CreatedFrom *time.Time // inclusive
	CreatedTo   *time.Time // exclusive
	// Text matches a Message ID, Number or External message ID exactly (or a
	// replay of it: MSG0000001 also finds MSG0000001.1), or a bond reference.
	Text string
	// InPayload also looks for Text inside the staged payload. It scans, so it
	// runs under a time limit and fails with ErrSearchTooSlow when it is hit.
	InPayload bool
}

// ErrSearchTooSlow says a payload search was stopped by its time limit.
var ErrSearchTooSlow = errors.New("the payload search took too long; narrow it with an integration or a created between range")

// TransactionCursor is a keyset position: the list continues after it.
type TransactionCursor struct {
	CreatedAt time.Time
	ID        int64
}

// String encodes the cursor for a URL.
func (c TransactionCursor) String() string {
	return fmt.Sprintf("%d_%d", c.CreatedAt.UnixMicro(), c.ID)
}

// ParseTransactionCursor reads a cursor written by String.
func ParseTransactionCursor(s string) (*TransactionCursor, error) {
	var us, id int64
	if _, err := fmt.Sscanf(s, "%d_%d", &us, &id); err != nil || id <= 0 {
		return nil, fmt.Errorf("%q is not a list position", s)
	}
	return &TransactionCursor{CreatedAt: time.UnixMicro(us), ID: id}, nil
}

// TransactionRow is a transaction with the names a list shows beside it.
type TransactionRow struct {
	Transaction
	IntegrationName   string
	MessageName       string
	TicketNumber      string
	InternalReference string
	ExternalReference string
}

// TransactionPage is one page of the transactions list.
type TransactionPage struct {
	Rows []TransactionRow
	Next *TransactionCursor // nil on the last page
}

const maxPageSize = 200

// QueryTransactions returns one page of transactions matching f, newest first,
// after the cursor (nil: the first page). It walks an index in (created_at,
// id) order and stops after limit rows, so it stays fast however deep the
// table is.
func (s *Store) QueryTransactions(ctx context.Context, f TransactionFilter, after *TransactionCursor, limit int) (*TransactionPage, error) {
	if limit <= 0 || limit > maxPageSize {
		limit = 50
	}
	var txns []Transaction
	err := s.withSearchLimit(ctx, f, func(db *gorm.DB) error {
		q := applyTransactionFilter(db.Table("transactions t").Select("t.*"), f)
		if after != nil {
			q = q.Where("(t.created_at, t.id) < (?, ?)", after.CreatedAt, after.ID)
		}
		return q.Order("t.created_at DESC, t.id DESC").Limit(limit + 1).Find(&txns).Error
	})
	if err != nil {
		return nil, fmt.Errorf("query transactions: %w", err)
	}
	rows, err := s.transactionRows(ctx, txns)
	if err != nil {
		return nil, err
	}
	page := &TransactionPage{Rows: rows}
	if len(rows) > limit {
		last := rows[limit-1]
		page.Rows = rows[:limit]
		page.Next = &TransactionCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	return page, nil
}

// transactionRows adds the names a list shows. Small lookups by primary key
// plan and run faster than one five-table join.
func (s *Store) transactionRows(ctx context.Context, txns []Transaction) ([]TransactionRow, error) {
	rows := make([]TransactionRow, len(txns))
	if len(txns) == 0 {
		return rows, nil
	}
	ids := func(get func(t *Transaction) int64) []int64 {
		seen := map[int64]bool{}
		var out []int64
		for i := range txns {
			if id := get(&txns[i]); !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
		return out
	}
	db := s.db.WithContext(ctx)
	type named struct {
		ID   int64
		Name string
	}
	lookup := func(query string, args []int64) (map[int64]string, error) {
		var rs []named
		if err := db.Raw(query, args).Scan(&rs).Error; err != nil {
			return nil, err
		}
		m := make(map[int64]string, len(rs))
		for _, r := range rs {
			m[r.ID] = r.Name
		}
		return m, nil
	}
	integ, err := lookup("SELECT id, name FROM integrations WHERE id IN ?", ids(func(t *Transaction) int64 { return t.IntegrationID }))
	if err != nil {
		return nil, fmt.Errorf("transaction rows: %w", err)
	}
	msgs, err := lookup("SELECT id, name FROM messages WHERE id IN ?", ids(func(t *Transaction) int64 { return t.MessageID }))
	if err != nil {
		return nil, fmt.Errorf("transaction rows: %w", err)
	}
	tickets, err := lookup("SELECT id, number AS name FROM tickets WHERE id IN ?", ids(func(t *Transaction) int64 { return t.TicketID }))
	if err != nil {
		return nil, fmt.Errorf("transaction rows: %w", err)
	}
	var bonds []struct {
		ID                                   int64
		InternalReference, ExternalReference string
	}
	if err := db.Raw("SELECT id, internal_reference, external_reference FROM bonds WHERE id IN ?",
		ids(func(t *Transaction) int64 { return t.BondID })).Scan(&bonds).Error; err != nil {
		return nil, fmt.Errorf("transaction rows: %w", err)
	}
	bondRefs := make(map[int64][2]string, len(bonds))
	for _, b := range bonds {
		bondRefs[b.ID] = [2]string{b.InternalReference, b.ExternalReference}
	}
	for i, t := range txns {
		refs := bondRefs[t.BondID]
		rows[i] = TransactionRow{Transaction: t, IntegrationName: integ[t.IntegrationID], MessageName: msgs[t.MessageID],
			TicketNumber: tickets[t.TicketID], InternalReference: refs[0], ExternalReference: refs[1]}
	}
	return rows, nil
}

// CountMatchingTransactions counts every transaction matching f (for "all N
// matching this filter"). It stops counting at max and reports whether it did.
func (s *Store) CountMatchingTransactions(ctx context.Context, f TransactionFilter, max int) (int64, bool, error) {
	var n int64
	err := s.withSearchLimit(ctx, f, func(db *gorm.DB) error {
		sub := applyTransactionFilter(db.Table("transactions t").Select("1"), f).Limit(max + 1)
		return db.Raw("SELECT count(*) FROM (?) x", sub).Scan(&n).Error
	})
	if err != nil {
		return 0, false, fmt.Errorf("count transactions: %w", err)
	}
	if n > int64(max) {
		return int64(max), true, nil
	}
	return n, false, nil
}

// MatchingTransactionIDs returns the ids of at most max transactions matching
// f, oldest first (the order a bulk job works in).
func (s *Store) MatchingTransactionIDs(ctx context.Context, f TransactionFilter, max int) ([]int64, error) {
	var ids []int64
	err := s.withSearchLimit(ctx, f, func(db *gorm.DB) error {
		q := applyTransactionFilter(db.Table("transactions t").Select("t.id"), f)
		return q.Order("t.created_at, t.id").Limit(max).Scan(&ids).Error
	})
	if err != nil {
		return nil, fmt.Errorf("list matching transactions: %w", err)
	}
	return ids, nil
}

// withSearchLimit runs fn; a payload search runs in a read-only database
// transaction with a statement time limit.
func (s *Store) withSearchLimit(ctx context.Context, f TransactionFilter, fn func(db *gorm.DB) error) error {
	db := s.db.WithContext(ctx)
	if !(f.InPayload && strings.TrimSpace(f.Text) != "") {
		return fn(db)
	}
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Exec("SET LOCAL statement_timeout = '3s'").Error; err != nil {
			return err
		}
		return fn(tx)
	})
	if err != nil && strings.Contains(err.Error(), "SQLSTATE 57014") {
		return ErrSearchTooSlow
	}
	return err
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func applyTransactionFilter(q *gorm.DB, f TransactionFilter) *gorm.DB {
	if f.IntegrationID != 0 {
		q = q.Where("t.integration_id = ?", f.IntegrationID)
	}
	if len(f.States) > 0 {
		q = q.Where("t.state IN (" + stateSQL(f.States...) + ")")
	}
	if f.ProcessState != nil {
		q = q.Where("t.process_state = ?", *f.ProcessState)
	}
	if f.Direction != "" {
		q = q.Where("t.direction = ?", f.Direction)
	}
	if f.MessageID != 0 {
		q = q.Where("t.message_id = ?", f.MessageID)
	}
	if f.BondID != 0 {
		q = q.Where("t.bond_id = ?", f.BondID)
	}
	if f.TicketID != 0 {
		q = q.Where("t.bond_id IN (SELECT id FROM bonds WHERE ticket_id = ?)", f.TicketID)
	}
	if ref := strings.TrimSpace(f.Reference); ref != "" {
		q = q.Where("t.bond_id IN (SELECT id FROM bonds WHERE internal_reference = ? OR external_reference = ?)", ref, ref)
	}
	if f.CreatedFrom != nil {
		q = q.Where("t.created_at >= ?", *f.CreatedFrom)
	}
	if f.CreatedTo != nil {
		q = q.Where("t.created_at < ?", *f.CreatedTo)
	}
	if text := strings.TrimSpace(f.Text); text != "" {
		prefix := escapeLike(text) + ".%"
		cond := `(t.number = @q OR t.number LIKE @p OR t.message_ident = @q OR t.message_ident LIKE @p
			OR t.external_message_id = @q
			OR t.bond_id IN (SELECT id FROM bonds WHERE internal_reference = @q OR external_reference = @q)`
		args := map[string]any{"q": text, "p": prefix}
		if f.InPayload {
			cond += ` OR EXISTS (SELECT 1 FROM stages s WHERE s.transaction_id = t.id AND s.data::text ILIKE @like)`
			args["like"] = "%" + escapeLike(text) + "%"
		}
		q = q.Where(cond+")", args)
	}
	return q
}

// StateChange is one recorded move of a transaction between states.
type StateChange struct {
	ID            int64
	TransactionID int64
	FromState     *TransportState
	ToState       *TransportState
	ChangedAt     time.Time
}

// TransactionDetail is everything the Transaction page shows.
type TransactionDetail struct {
	Transaction Transaction
	Integration Integration
	Message     Message
	Bond        Bond
	Ticket      Ticket
	Stage       *Stage
	Requests    []HTTPRequest
	Logs        []TransactionLog
	ReplayOf    *Transaction  // the transaction this one replays
	ReplayedAs  []Transaction // the transactions that replay this one
	Changes     []StateChange
	Activity    []ActivityLog
}

// LoadTransactionDetail reads a transaction and everything around it.
func (s *Store) LoadTransactionDetail(ctx context.Context, id int64) (*TransactionDetail, error) {
	db := s.db.WithContext(ctx)
	d := &TransactionDetail{}
	if err := db.Take(&d.Transaction, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get transaction %d", id))
	}
	t := d.Transaction
	if err := db.Take(&d.Integration, t.IntegrationID).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: integration: %w", id, err)
	}
	if err := db.Take(&d.Message, t.MessageID).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: message: %w", id, err)
	}
	if err := db.Take(&d.Bond, t.BondID).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: bond: %w", id, err)
	}
	if err := db.Take(&d.Ticket, t.TicketID).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: ticket: %w", id, err)
	}
	var stages []Stage
	if err := db.Where("transaction_id = ?", id).Limit(1).Find(&stages).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: stage: %w", id, err)
	}
	if len(stages) == 1 {
		d.Stage = &stages[0]
	}
	if err := db.Where("transaction_id = ?", id).Order("id").Limit(500).Find(&d.Requests).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: requests: %w", id, err)
	}
	if err := db.Where("transaction_id = ?", id).Order("id").Limit(2000).Find(&d.Logs).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: logs: %w", id, err)
	}
	if t.ReplayOfID != nil {
		var orig Transaction
		if err := db.Take(&orig, *t.ReplayOfID).Error; err == nil {
			d.ReplayOf = &orig
		} else if !errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, fmt.Errorf("transaction %d: replay of: %w", id, err)
		}
	}
	if err := db.Where("replay_of_id = ?", id).Order("id").Find(&d.ReplayedAs).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: replays: %w", id, err)
	}
	if err := db.Raw(`SELECT id, transaction_id, from_state, to_state, changed_at FROM (
			SELECT id, transaction_id, from_state, to_state, changed_at FROM transaction_state_changes WHERE transaction_id = ?
			UNION ALL
			SELECT id, transaction_id, from_state, to_state, changed_at FROM transaction_state_changes_recent WHERE transaction_id = ?
		) x ORDER BY changed_at, id LIMIT 1000`, id, id).Scan(&d.Changes).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: state changes: %w", id, err)
	}
	if err := db.Where("record_type = ? AND record_id = ?", "transaction", id).Order("id DESC").Limit(100).
		Find(&d.Activity).Error; err != nil {
		return nil, fmt.Errorf("transaction %d: activity: %w", id, err)
	}
	return d, nil
}

// HTTPRequestDetail is the HTTP Request page's record and its context.
type HTTPRequestDetail struct {
	Request     HTTPRequest
	Transaction *Transaction
	Integration *Integration
	ReplayOf    *HTTPRequest
	ReplayedAs  []HTTPRequest
}

// LoadHTTPRequestDetail reads one HTTP request with its transaction.
func (s *Store) LoadHTTPRequestDetail(ctx context.Context, id int64) (*HTTPRequestDetail, error) {
	db := s.db.WithContext(ctx)
	d := &HTTPRequestDetail{}
	if err := db.Take(&d.Request, id).Error; err != nil {
		return nil, notFound(err, fmt.Sprintf("get HTTP request %d", id))
	}
	if d.Request.TransactionID != nil {
		var t Transaction
		if err := db.Take(&t, *d.Request.TransactionID).Error; err != nil {
			return nil, fmt.Errorf("HTTP request %d: transaction: %w", id, err)
		}
		d.Transaction = &t
	}
	if d.Request.IntegrationID != nil {
		var in Integration
		if err := db.Take(&in, *d.Request.IntegrationID).Error; err != nil {
			return nil, fmt.Errorf("HTTP request %d: integration: %w", id, err)
		}
		d.Integration = &in
	}
	if d.Request.ReplayOfID != nil {
		var r HTTPRequest
		if err := db.Take(&r, *d.Request.ReplayOfID).Error; err == nil {
			d.ReplayOf = &r
		}
	}
	if err := db.Where("replay_of_id = ?", id).Order("id").Find(&d.ReplayedAs).Error; err != nil {
		return nil, fmt.Errorf("HTTP request %d: replays: %w", id, err)
	}
	return d, nil
}
