package converge

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"gorm.io/gorm"

	"unifi/models/pg"
)

// Row is a recorded conflict as the pages show it: values cut to
// ShownValue characters.
type Row struct {
	ID                int64
	TicketID          int64
	BondID            int64
	IntegrationID     int64
	TransactionID     *int64
	TicketNumber      string
	ExternalReference string // the bond's remote ticket
	IntegrationName   string
	TransactionNumber *string
	Field             string
	KeptValue         string
	LostValue         string
	KeptAt            time.Time
	KeptBy            string
	LostAt            *time.Time
	LostBy            string
	Kept              string // Ours or Theirs
	CreatedAt         time.Time
}

// KeptOurs reports whether our change was kept (theirs was dropped).
func (r Row) KeptOurs() bool { return r.Kept == Ours }

// ShownValue is how many characters of a value a page shows.
const ShownValue = 200

// Shown is how many conflicts a ticket or bond page lists, newest first.
const Shown = 50

// selectRows reads conflicts with their names; a WHERE, ORDER and LIMIT follow.
var selectRows = `SELECT c.id, c.ticket_id, c.bond_id, c.integration_id, c.transaction_id, k.number AS ticket_number,
		b.external_reference, i.name AS integration_name, t.number AS transaction_number, c.field,
		left(c.kept_value, ` + strconv.Itoa(ShownValue) + `) AS kept_value,
		left(c.lost_value, ` + strconv.Itoa(ShownValue) + `) AS lost_value,
		c.kept_at, c.kept_by, c.lost_at, c.lost_by, c.kept, c.created_at
	FROM field_conflicts c
	JOIN tickets k ON k.id = c.ticket_id
	JOIN bonds b ON b.id = c.bond_id
	JOIN integrations i ON i.id = c.integration_id
	LEFT JOIN transactions t ON t.id = c.transaction_id `

// The limits are constants in the SQL (pg.Batch says why).
var (
	sqlByTicket = selectRows + `WHERE c.ticket_id = $1 ORDER BY c.id DESC LIMIT ` + strconv.Itoa(Shown)
	sqlByBond   = selectRows + `WHERE c.bond_id = $1 ORDER BY c.id DESC LIMIT ` + strconv.Itoa(Shown)
)

// CountSQL is the SQL expression for how many conflicts integration (an SQL
// expression) has resolved; the Integration page reads it beside its
// integration's row.
func CountSQL(integration string) string {
	return `(SELECT count(*) FROM field_conflicts WHERE integration_id = ` + integration + `)`
}

// QueueByTicket queues the read of a ticket's newest conflicts into dst.
func QueueByTicket(rb *pg.Batch, dst *[]Row, ticketID int64) {
	pg.QueueRows(rb, dst, sqlByTicket, ticketID)
}

// QueueByBond queues the read of a bond's newest conflicts into dst.
func QueueByBond(rb *pg.Batch, dst *[]Row, bondID int64) {
	pg.QueueRows(rb, dst, sqlByBond, bondID)
}

// Filter narrows the conflicts list.
type Filter struct {
	IntegrationID int64 // 0: every integration
	BeforeID      int64 // keyset: conflicts older than this one
}

// ListPage is how many conflicts the list shows at a time.
const ListPage = 50

// sqlList is the conflicts list: $1 the integration (0: any), $2 before id (0: none).
var sqlList = selectRows + `WHERE ($1 = 0 OR c.integration_id = $1) AND ($2 = 0 OR c.id < $2)
	ORDER BY c.id DESC LIMIT ` + strconv.Itoa(ListPage)

// List returns conflicts, newest first, ListPage at a time.
func List(ctx context.Context, db *gorm.DB, f Filter) ([]Row, error) {
	var rows []Row
	var rb pg.Batch
	pg.QueueRows(&rb, &rows, sqlList, f.IntegrationID, f.BeforeID)
	if err := rb.Run(ctx, db); err != nil {
		return nil, fmt.Errorf("list conflicts: %w", err)
	}
	return rows, nil
}
