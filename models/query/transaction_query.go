package query

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"unifi/models"
	"unifi/models/pg"
)

// TransactionFilter narrows the transactions list. Zero values mean "any".
type TransactionFilter struct {
	IntegrationID int64
	States        []models.TransportState
	ProcessState  *models.ProcessState
	Direction     models.Direction
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

// TransactionRow is a transaction as the lists show it: the columns they
// read (rowColumns, 12 of the table's 25) and the names beside them. Why
// not the whole row: each column read is converted to the wire by
// PostgreSQL and scanned by pgx on every row of every page view, and a
// field a list does not show should not compile in its template.
type TransactionRow struct {
	ID            int64
	Number        string
	MessageIdent  string
	IntegrationID int64
	BondID        int64
	MessageID     int64
	TicketID      int64
	Direction     models.Direction
	State         models.TransportState
	ProcessState  models.ProcessState
	CreatedAt     time.Time
	FinishedAt    *time.Time

	IntegrationName string
	MessageName     string
	TicketNumber    string
}

// rowColumns are TransactionRow's columns of transactions, in rowFields'
// order, before a qualifying alias.
var rowColumns = []string{"id", "number", "message_ident", "integration_id", "bond_id", "message_id", "ticket_id",
	"direction", "state", "process_state", "created_at", "finished_at"}

// rowFields appends the scan targets of rowColumns to dst.
func (r *TransactionRow) rowFields(dst []any) []any {
	return append(dst, &r.ID, &r.Number, &r.MessageIdent, &r.IntegrationID, &r.BondID, &r.MessageID, &r.TicketID,
		&r.Direction, &r.State, &r.ProcessState, &r.CreatedAt, &r.FinishedAt)
}

// rowColumnsOf is rowColumns qualified by alias, for a SELECT list.
func rowColumnsOf(alias string) string {
	q := make([]string, len(rowColumns))
	for i, c := range rowColumns {
		q[i] = alias + "." + c
	}
	return strings.Join(q, ", ")
}

// TransactionPage is one page of the transactions list.
type TransactionPage struct {
	Rows []TransactionRow
	Next *TransactionCursor // nil on the last page
}

const maxPageSize = 200

// statementTimeoutPayload bounds a payload search (it scans).
const statementTimeoutPayload = "3s"

// QueryTransactions returns one page of transactions matching f, newest first,
// after the cursor (nil: the first page). It walks an index in (created_at,
// id) order and stops after limit rows, so it stays fast however deep the
// table is.
func (s *Reader) QueryTransactions(ctx context.Context, f TransactionFilter, after *TransactionCursor, limit int) (*TransactionPage, error) {
	var rb pg.Batch
	page := &TransactionPage{}
	queueTransactionPage(&rb, f, after, limit, page)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, searchError("query transactions", err)
	}
	if err := s.fillNames(ctx, page.Rows, nil, knownNames{}); err != nil {
		return nil, err
	}
	return page, nil
}

// queueTransactionPage reads one page of the list into page; the names
// beside each row are left for fillNames, but for the ticket numbers when
// the plan is kept (below): then a join to tickets reads them in the same
// statement, and a page whose other names are known needs no second round
// trip. A payload search makes the batch run under a time limit.
//
// The LIMIT is a parameter when the filter has values of its own: PostgreSQL
// then cannot price a plan made without them (a generic plan) and plans each
// execution for the values it gets. A generic plan, reused for every value,
// walked transactions_state_created filtering on the integration for
// "integration + Error": fast for the benchmark's one big integration, a walk
// through everyone else's rows for a small one. When the integration is the
// only value (its states are literals) the plan cannot use it anyway (the
// LATERAL of ofIntegration hides it), the generic plan is the same one, and
// a literal LIMIT lets the connection keep it: planning each execution cost
// 0.76 ms of PostgreSQL CPU for the Integration page's latest transactions
// and 0.32 ms for "integration + Error", more than running them.
func queueTransactionPage(rb *pg.Batch, f TransactionFilter, after *TransactionCursor, limit int, page *TransactionPage) {
	if limit <= 0 || limit > maxPageSize {
		limit = 50
	}
	var args []any
	src := f.source()
	inner := f
	inner.IntegrationID = 0 // joined from the integration below, when set
	where := transactionWhere(inner, src, &args)
	if f.IntegrationID != 0 {
		where = append([]string{src.keys + ".integration_id = i.id"}, where...)
	}
	if after != nil {
		where = append(where, fmt.Sprintf("(%s.created_at, %s.id) < (%s, %s)", src.keys, src.keys,
			arg(&args, after.CreatedAt), arg(&args, after.ID)))
	}
	if f.searchesPayload() {
		rb.Timeout = statementTimeoutPayload
	}
	kept := len(args) == 0 && f.IntegrationID != 0 // the integration is the only value
	limitSQL := strconv.Itoa(limit + 1)
	if !kept {
		limitSQL = arg(&args, limit+1)
	}
	sql := `SELECT ` + transactionColumnsT + ` FROM ` + src.from + whereClause(where) +
		` ORDER BY ` + src.keys + `.created_at DESC, ` + src.keys + `.id DESC LIMIT ` + limitSQL
	var with beside
	if kept {
		// Planned once per connection, the join costs its 11 to 51 probes of
		// tickets' key, as the lookup would; planned each time, it would add
		// to the planning (see fillNames).
		with = beside{columns: `, k.number`, joins: ` JOIN tickets k ON k.id = t.ticket_id`}
	}
	if f.IntegrationID != 0 {
		sql = ofIntegration("t", sql, arg(&args, f.IntegrationID), with) + ` ORDER BY t.created_at DESC, t.id DESC`
	}
	pg.QueueScan(rb, func(rows pgx.Rows) error {
		out, err := collectTransactionRows(rows, limit+1, kept)
		if err != nil {
			return err
		}
		page.Rows = out
		if len(out) > limit {
			last := out[limit-1]
			page.Rows = out[:limit]
			page.Next = &TransactionCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		}
		return nil
	}, sql, args...)
}

// transactionColumnsT are the list's columns of transactions t, qualified:
// a list may join transaction_keys, which has some of the same names.
var transactionColumnsT = rowColumnsOf("t")

// rowSource is where a query over the list's filter finds its rows. The
// columns a transaction never changes (integration, bond, time, identifiers)
// are in transactions and in transaction_keys, whose indexes walk them in
// created order (migration 00300: kept off transactions, whose rows the
// engine updates). The partial indexes for unfinished states and rejected
// transactions stay on transactions and walk the same order there.
type rowSource struct {
	from string // the FROM clause; transactions is always t
	keys string // the alias whose created_at, integration_id and bond_id the conditions and the order name
}

var (
	byKeys = rowSource{from: `transaction_keys tk JOIN transactions t ON t.id = tk.id`, keys: "tk"}
	byRows = rowSource{from: `transactions t`, keys: "t"}
)

// source picks the rows' way in: a bond, ticket or reference names a few
// rows in transaction_keys_bond_order; a text search names a few ids (see
// transactionWhere), each a probe of transactions' key; a state filter
// without Complete, or Rejected, walks a partial index of transactions in
// created order (transactions_state_created, _integration_state,
// _rejected_created); anything else walks transaction_keys in created order
// (every integration's, or one's) with the other conditions as filters.
func (f TransactionFilter) source() rowSource {
	switch {
	case f.BondID != 0 || f.TicketID != 0 || strings.TrimSpace(f.Reference) != "":
		return byKeys
	case strings.TrimSpace(f.Text) != "":
		return byRows
	case f.ProcessState != nil && *f.ProcessState == models.ProcessRejected:
		return byRows
	case len(f.States) > 0 && !slices.Contains(f.States, models.Complete):
		return byRows
	}
	return byKeys
}

// ofIntegration wraps query, a SELECT of one table whose conditions name
// the integration as i.id, in a LATERAL join (named alias) from the
// integration whose id is the parameter integration. Why: given an
// integration's id as a value, PostgreSQL plans the newest rows of a big
// integration with the index in created (or updated) order, filtered on the
// integration, which is fast only while the newest rows are that
// integration's. On the 10 million bench's database, after 30,000
// transactions of another integration, the Integration page's latest
// transactions read 14,667 buffers (27.7 ms) and its latest bonds 1,019 (8.5
// ms). Inside a LATERAL the id is a run-time value, and the integration's own
// index is planned whatever its size: 15 and 4 buffers, whoever wrote last.
// Each row may carry columns from other tables (with) beside its own.
func ofIntegration(alias, query, integration string, with beside) string {
	return `SELECT ` + alias + `.*` + with.columns + ` FROM integrations i CROSS JOIN LATERAL (` + query + `) ` + alias +
		with.joins + ` WHERE i.id = ` + integration
}

// beside is what ofIntegration adds to each row: columns after the row's
// own, from the tables joins joins.
type beside struct{ columns, joins string }

// TransactionList is the transactions list page: one page of rows and what
// the filter form offers.
type TransactionList struct {
	Page         *TransactionPage
	Integrations []IntegrationChoice // by name
	// Messages are the filtered integration's messages (every integration's
	// when the filter names none), by integration and message name.
	Messages []MessageChoice
	// SearchStopped says a payload search hit its time limit: Page is empty.
	SearchStopped bool
}

// IntegrationChoice is an integration the filter offers.
type IntegrationChoice struct {
	ID   int64
	Name string
}

// MessageChoice is a message with its integration's name.
type MessageChoice struct {
	ID              int64
	IntegrationName string
	Name            string
}

// LoadTransactionList reads one page of the list and the filter's choices in
// one round trip; the names beside the rows come from the choices and, when
// the rows' plan is kept, the rows' own join (queueTransactionPage), else
// from a second round trip (fillNames) for the ticket numbers.
func (s *Reader) LoadTransactionList(ctx context.Context, f TransactionFilter, after *TransactionCursor, limit int) (*TransactionList, error) {
	l := &TransactionList{Page: &TransactionPage{}}
	var rb pg.Batch
	queueListChoices(&rb, f, l)
	queueTransactionPage(&rb, f, after, limit, l.Page)
	err := rb.Run(ctx, s.db)
	if errors.Is(searchError("", err), ErrSearchTooSlow) {
		// A batch stops at its first error, which may have come before the
		// choices were read (a statement waiting on a lock while it is parsed).
		l = &TransactionList{Page: &TransactionPage{}, SearchStopped: true}
		rb = pg.Batch{}
		queueListChoices(&rb, f, l)
		err = rb.Run(ctx, s.db)
	}
	if err != nil {
		return nil, fmt.Errorf("load transactions list: %w", err)
	}
	if err := s.fillNames(ctx, l.Page.Rows, nil, l.knownNames()); err != nil {
		return nil, err
	}
	return l, nil
}

// knownNames are the names the filter's choices hold: every integration's,
// and the listed messages'.
func (l *TransactionList) knownNames() knownNames {
	k := knownNames{integrations: make(map[int64]string, len(l.Integrations)), messages: make(map[int64]string, len(l.Messages))}
	for _, in := range l.Integrations {
		k.integrations[in.ID] = in.Name
	}
	for _, m := range l.Messages {
		k.messages[m.ID] = m.Name
	}
	return k
}

// queueListChoices reads what the list's filter form offers.
func queueListChoices(rb *pg.Batch, f TransactionFilter, l *TransactionList) {
	pg.QueueRows(rb, &l.Integrations, `SELECT id, name FROM integrations ORDER BY name`)
	msgs := `SELECT m.id, i.name AS integration_name, m.name FROM messages m JOIN integrations i ON i.id = m.integration_id`
	if f.IntegrationID != 0 {
		pg.QueueRows(rb, &l.Messages, msgs+` WHERE m.integration_id = $1 ORDER BY i.name, m.name`, f.IntegrationID)
	} else {
		pg.QueueRows(rb, &l.Messages, msgs+` ORDER BY i.name, m.name`)
	}
}

// CountMatchingTransactions counts every transaction matching f (for "all N
// matching this filter"). It stops counting at max and reports whether it did.
func (s *Reader) CountMatchingTransactions(ctx context.Context, f TransactionFilter, max int) (int64, bool, error) {
	var args []any
	src := f.source()
	var rb pg.Batch
	if f.searchesPayload() {
		rb.Timeout = statementTimeoutPayload
	}
	var n int64
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		var err error
		n, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
		return err
	}, `SELECT count(*) FROM (SELECT 1 FROM `+src.from+whereClause(transactionWhere(f, src, &args))+
		` LIMIT `+strconv.Itoa(max+1)+`) x`, args...)
	if err := rb.Run(ctx, s.db); err != nil {
		return 0, false, searchError("count transactions", err)
	}
	if n > int64(max) {
		return int64(max), true, nil
	}
	return n, false, nil
}

// MatchingTransactionIDs returns the ids of at most max transactions matching
// f, oldest first (the order a bulk job works in).
func (s *Reader) MatchingTransactionIDs(ctx context.Context, f TransactionFilter, max int) ([]int64, error) {
	var args []any
	src := f.source()
	var rb pg.Batch
	if f.searchesPayload() {
		rb.Timeout = statementTimeoutPayload
	}
	var ids []int64
	pg.QueueScan(&rb, func(rows pgx.Rows) error {
		var err error
		ids, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		return err
	}, `SELECT t.id FROM `+src.from+whereClause(transactionWhere(f, src, &args))+
		` ORDER BY `+src.keys+`.created_at, `+src.keys+`.id LIMIT `+strconv.Itoa(max), args...)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, searchError("list matching transactions", err)
	}
	return ids, nil
}

// searchesPayload reports whether the filter looks inside payloads.
func (f TransactionFilter) searchesPayload() bool {
	return f.InPayload && strings.TrimSpace(f.Text) != ""
}

// searchError wraps err, or returns ErrSearchTooSlow when a statement timeout
// stopped it.
func searchError(what string, err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "57014": // query_canceled: the statement timeout
		return ErrSearchTooSlow
	}
	return fmt.Errorf("%s: %w", what, err)
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// arg appends v to args and returns its placeholder.
func arg(args *[]any, v any) string {
	*args = append(*args, v)
	return "$" + strconv.Itoa(len(*args))
}

// whereClause joins conditions into a WHERE clause ("" when there are none).
func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// transactionWhere is f as SQL conditions on transactions t and the columns
// that never change on src.keys, their values appended to args.
func transactionWhere(f TransactionFilter, src rowSource, args *[]any) []string {
	var w []string
	k := src.keys
	if f.IntegrationID != 0 {
		w = append(w, k+".integration_id = "+arg(args, f.IntegrationID))
	}
	if len(f.States) > 0 {
		// Literals, not parameters: the state indexes are partial (00050).
		w = append(w, "t.state IN ("+pg.StateSQL(f.States...)+")")
	}
	if f.ProcessState != nil {
		w = append(w, "t.process_state = "+arg(args, int16(*f.ProcessState)))
	}
	if f.Direction != "" {
		w = append(w, "t.direction = "+arg(args, string(f.Direction)))
	}
	if f.MessageID != 0 {
		w = append(w, "t.message_id = "+arg(args, f.MessageID))
	}
	if f.BondID != 0 {
		w = append(w, k+".bond_id = "+arg(args, f.BondID))
	}
	if f.TicketID != 0 {
		w = append(w, k+".bond_id IN (SELECT id FROM bonds WHERE ticket_id = "+arg(args, f.TicketID)+")")
	}
	if ref := strings.TrimSpace(f.Reference); ref != "" {
		r := arg(args, ref)
		w = append(w, k+".bond_id IN (SELECT id FROM bonds WHERE internal_reference = "+r+" OR external_reference = "+r+")")
	}
	if f.CreatedFrom != nil {
		w = append(w, k+".created_at >= "+arg(args, *f.CreatedFrom))
	}
	if f.CreatedTo != nil {
		w = append(w, k+".created_at < "+arg(args, *f.CreatedTo))
	}
	if text := strings.TrimSpace(f.Text); text != "" {
		// One set of ids, each branch an index's: the number, the message
		// id and the bonds in transaction_keys', the remote's message id in
		// transactions_external_ident (whose predicate its branch repeats).
		// As one OR of them all, PostgreSQL scanned the table: an IN
		// (subquery) inside an OR is a filter, not an index condition.
		q, p := arg(args, text), arg(args, escapeLike(text)+".%")
		cond := "(t.id IN (SELECT id FROM transaction_keys WHERE number = " + q + " OR number LIKE " + p +
			" UNION ALL SELECT id FROM transaction_keys WHERE message_ident = " + q + " OR message_ident LIKE " + p +
			" UNION ALL SELECT id FROM transaction_keys WHERE bond_id IN (SELECT id FROM bonds WHERE internal_reference = " +
			q + " OR external_reference = " + q + ")" +
			" UNION ALL SELECT id FROM transactions WHERE external_message_id = " + q + " AND external_message_id <> '')"
		if f.InPayload {
			cond += " OR EXISTS (SELECT 1 FROM stages s WHERE s.transaction_id = t.id AND s.data::text ILIKE " +
				arg(args, "%"+escapeLike(text)+"%") + ")"
		}
		w = append(w, cond+")")
	}
	return w
}

// StateChange is one recorded move of a transaction between states.
type StateChange struct {
	ID            int64
	TransactionID int64
	FromState     *models.TransportState
	ToState       *models.TransportState
	ChangedAt     time.Time
}

// TransactionDetail is everything the Transaction page shows.
type TransactionDetail struct {
	Transaction models.Transaction
	Integration IntegrationRef
	Message     MessageRef
	Bond        BondRef
	Ticket      TicketRef
	Stage       *models.Stage
	Requests    []models.HTTPRequest
	Logs        []models.TransactionLog
	ReplayOf    *TransactionRef  // the transaction this one replays
	ReplayedAs  []TransactionRef // the transactions that replay this one
	Changes     []StateChange
	Activity    []models.ActivityLog
}

// IntegrationRef is what the Transaction page shows of its integration.
type IntegrationRef struct {
	ID         int64
	Name       string
	AttachLogs bool
}

// MessageRef names a transaction's message.
type MessageRef struct {
	ID   int64
	Name string
}

// BondRef is what the Transaction page shows of its bond.
type BondRef struct {
	ID                int64
	InternalReference string
	ExternalReference string
}

// TicketRef is what the Transaction page shows of its ticket.
type TicketRef struct {
	ID               int64
	Number           string
	ShortDescription string
}

// TransactionRef links to another transaction.
type TransactionRef struct {
	ID     int64
	Number string
}

// transactionHead is a transaction with the names of what it points to
// beside it: one statement where there were six (docs/engine.md, "Tenth
// round": a statement costs PostgreSQL about as much to start as these
// lookups take to run).
type transactionHead struct {
	models.Transaction
	IntegrationName        string
	IntegrationAttachLogs  bool
	MessageName            string
	BondInternalReference  string
	BondExternalReference  string
	TicketNumber           string
	TicketShortDescription string
	ReplayOfNumber         *string
}

// transactionHeadSQL reads a transactionHead.
const transactionHeadSQL = `SELECT t.*, i.name AS integration_name, i.attach_logs AS integration_attach_logs,
	m.name AS message_name, b.internal_reference AS bond_internal_reference,
	b.external_reference AS bond_external_reference, k.number AS ticket_number,
	k.short_description AS ticket_short_description, r.number AS replay_of_number
	FROM transactions t
	JOIN integrations i ON i.id = t.integration_id
	JOIN messages m ON m.id = t.message_id
	JOIN bonds b ON b.id = t.bond_id
	JOIN tickets k ON k.id = t.ticket_id
	LEFT JOIN transactions r ON r.id = t.replay_of_id
	WHERE t.id = $1`

// LoadTransactionDetail reads a transaction and everything around it, in
// one round trip: every read names the transaction by id.
func (s *Reader) LoadTransactionDetail(ctx context.Context, id int64) (*TransactionDetail, error) {
	d := &TransactionDetail{}
	var rb pg.Batch
	var found, foundStage bool
	var head transactionHead
	var stage models.Stage
	pg.QueueRow(&rb, &head, &found, transactionHeadSQL, id)
	pg.QueueRow(&rb, &stage, &foundStage, `SELECT * FROM stages WHERE transaction_id = $1 LIMIT 1`, id)
	pg.QueueRows(&rb, &d.Requests, `SELECT * FROM http_requests WHERE transaction_id = $1 ORDER BY id LIMIT 500`, id)
	pg.QueueRows(&rb, &d.Logs, `SELECT * FROM transaction_logs WHERE transaction_id = $1 ORDER BY id LIMIT 2000`, id)
	pg.QueueRows(&rb, &d.ReplayedAs, `SELECT id, number FROM transactions WHERE replay_of_id = $1 ORDER BY id`, id)
	pg.QueueRows(&rb, &d.Changes, `SELECT id, transaction_id, from_state, to_state, changed_at FROM transaction_state_changes
		WHERE transaction_id = $1 ORDER BY changed_at, id LIMIT 1000`, id)
	pg.QueueRows(&rb, &d.Activity, `SELECT * FROM activity_logs WHERE record_type = 'transaction' AND record_id = $1
		ORDER BY id DESC LIMIT 100`, id)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("load transaction %d: %w", id, err)
	}
	if !found {
		// The joins need the integration, message, bond and ticket, which
		// the foreign keys keep while the transaction exists.
		return nil, fmt.Errorf("get transaction %d: %w", id, models.ErrNotFound)
	}
	t := head.Transaction
	d.Transaction = t
	d.Integration = IntegrationRef{ID: t.IntegrationID, Name: head.IntegrationName, AttachLogs: head.IntegrationAttachLogs}
	d.Message = MessageRef{ID: t.MessageID, Name: head.MessageName}
	d.Bond = BondRef{ID: t.BondID, InternalReference: head.BondInternalReference, ExternalReference: head.BondExternalReference}
	d.Ticket = TicketRef{ID: t.TicketID, Number: head.TicketNumber, ShortDescription: head.TicketShortDescription}
	if t.ReplayOfID != nil && head.ReplayOfNumber != nil {
		d.ReplayOf = &TransactionRef{ID: *t.ReplayOfID, Number: *head.ReplayOfNumber}
	}
	if foundStage {
		d.Stage = &stage
	}
	return d, nil
}

// HTTPRequestDetail is the HTTP Request page's record and its context.
type HTTPRequestDetail struct {
	Request     models.HTTPRequest
	Transaction *models.Transaction
	Integration *models.Integration
	ReplayOf    *models.HTTPRequest
	ReplayedAs  []models.HTTPRequest
}

// LoadHTTPRequestDetail reads one HTTP request with its transaction.
func (s *Reader) LoadHTTPRequestDetail(ctx context.Context, id int64) (*HTTPRequestDetail, error) {
	db := s.db.WithContext(ctx)
	d := &HTTPRequestDetail{}
	if err := db.Take(&d.Request, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("get HTTP request %d", id))
	}
	if d.Request.TransactionID != nil {
		var t models.Transaction
		if err := db.Take(&t, *d.Request.TransactionID).Error; err != nil {
			return nil, fmt.Errorf("HTTP request %d: transaction: %w", id, err)
		}
		d.Transaction = &t
	}
	if d.Request.IntegrationID != nil {
		var in models.Integration
		if err := db.Take(&in, *d.Request.IntegrationID).Error; err != nil {
			return nil, fmt.Errorf("HTTP request %d: integration: %w", id, err)
		}
		d.Integration = &in
	}
	if d.Request.ReplayOfID != nil {
		var r models.HTTPRequest
		if err := db.Take(&r, *d.Request.ReplayOfID).Error; err == nil {
			d.ReplayOf = &r
		}
	}
	if err := db.Where("replay_of_id = ?", id).Order("id").Find(&d.ReplayedAs).Error; err != nil {
		return nil, fmt.Errorf("HTTP request %d: replays: %w", id, err)
	}
	return d, nil
}

// collectTransactionRows reads rows of rowColumns, each followed by its
// ticket's number withTicket; sizeHint is how many rows the query may
// return at most.
func collectTransactionRows(rows pgx.Rows, sizeHint int, withTicket bool) ([]TransactionRow, error) {
	out := make([]TransactionRow, 0, sizeHint)
	targets := make([]any, 0, len(rowColumns)+1)
	defer rows.Close()
	for rows.Next() {
		out = append(out, TransactionRow{})
		r := &out[len(out)-1]
		targets = r.rowFields(targets[:0])
		if withTicket {
			targets = append(targets, &r.TicketNumber)
		}
		if err := rows.Scan(targets...); err != nil {
			return nil, err
		}
	}
	return out, rows.Err()
}
