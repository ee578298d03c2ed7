package query

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"unifi/models"
	"unifi/models/pg"
)

// fillNames sets the names lists show beside transactions (integration,
// message, ticket number) and bonds (integration, ticket number, and the
// status from the bond's head transaction), in one round trip of lookups by
// key. A page that has read some names already (its integration, its
// messages) passes them in known, and rows that came with their ticket
// number or bond status keep them; only the rest is looked up, and nothing
// at all (no second round trip) on the Integration page and the filtered
// transactions list.
//
// A page's rows come first, on their own, from a query planned for its
// filter's values; these lookups follow rather than being joined into it,
// because PostgreSQL would then plan the joins again for every page view
// (0.3 ms for the transactions list, more than the lookups cost to run),
// while lookups by key reuse the connection's cached plans. Rows whose plan
// the connection keeps (an integration's latest transactions and bonds,
// queueTransactionPage) come with their tickets joined instead.
func (s *Reader) fillNames(ctx context.Context, txns []TransactionRow, bonds []BondRow, known knownNames) error {
	if len(txns) == 0 && len(bonds) == 0 {
		return nil
	}
	integrations, messages, tickets := known.integrations, known.messages, map[int64]string{}
	if integrations == nil {
		integrations = map[int64]string{}
	}
	if messages == nil {
		messages = map[int64]string{}
	}
	messageIDs, ticketIDs, bondIDs := newIDSet(), newIDSet(), newIDSet()
	integrationsKnown := true
	for i := range txns {
		if _, ok := messages[txns[i].MessageID]; !ok {
			messageIDs.add(txns[i].MessageID)
		}
		_, ok := integrations[txns[i].IntegrationID]
		integrationsKnown = integrationsKnown && ok
		if txns[i].TicketNumber == "" { // not joined in by the row's own statement
			ticketIDs.add(txns[i].TicketID)
		}
	}
	for i := range bonds {
		_, ok := integrations[bonds[i].IntegrationID]
		integrationsKnown = integrationsKnown && ok
		if bonds[i].Status == "" { // not read with the row (models.BondStatusOf is never "")
			ticketIDs.add(bonds[i].TicketID)
			bondIDs.add(bonds[i].ID)
		}
	}
	heads := map[int64]models.TransportState{}
	var rb pg.Batch
	if !integrationsKnown {
		// Every integration's name: there are a handful, and a statement
		// without parameters keeps one cached plan (by id, PostgreSQL planned
		// it afresh each time for the small, never analyzed table).
		queueNames(&rb, integrations, `SELECT id, name FROM integrations`)
	}
	if len(messageIDs.ids) > 0 {
		queueNames(&rb, messages, `SELECT id, name FROM messages WHERE id = ANY($1)`, messageIDs.ids)
	}
	if len(ticketIDs.ids) > 0 {
		queueNames(&rb, tickets, `SELECT id, number FROM tickets WHERE id = ANY($1)`, ticketIDs.ids)
	}
	if len(bondIDs.ids) > 0 {
		queueBondHeads(&rb, bondIDs.ids, heads)
	}
	if err := rb.Run(ctx, s.db); err != nil {
		return fmt.Errorf("names of listed rows: %w", err)
	}
	for i := range txns {
		t := &txns[i]
		t.IntegrationName, t.MessageName = integrations[t.IntegrationID], messages[t.MessageID]
		if t.TicketNumber == "" {
			t.TicketNumber = tickets[t.TicketID]
		}
	}
	for i := range bonds {
		b := &bonds[i]
		b.IntegrationName = integrations[b.IntegrationID]
		if b.Status != "" {
			continue
		}
		b.TicketNumber = tickets[b.TicketID]
		if st, ok := heads[b.ID]; ok {
			b.Status = models.BondStatusOf(&st)
		} else {
			b.Status = models.BondStatusOf(nil)
		}
	}
	return nil
}

// knownNames are names a page has read already: integration and message
// names by id (nil: none). Ticket numbers and bond statuses read with the
// rows are seen on the rows themselves.
type knownNames struct {
	integrations, messages map[int64]string
}

// queueNames reads (id, name) pairs into names.
func queueNames(rb *pg.Batch, names map[int64]string, sql string, args ...any) {
	pg.QueueScan(rb, func(rows pgx.Rows) error {
		var id int64
		var name string
		_, err := pgx.ForEachRow(rows, []any{&id, &name}, func() error {
			names[id] = name
			return nil
		})
		return err
	}, sql, args...)
}

// idSet collects distinct ids in the order first seen.
type idSet struct {
	seen map[int64]bool
	ids  []int64
}

func newIDSet() *idSet { return &idSet{seen: map[int64]bool{}} }

func (s *idSet) add(id int64) {
	if !s.seen[id] {
		s.seen[id] = true
		s.ids = append(s.ids, id)
	}
}
