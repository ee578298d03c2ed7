package components

import (
	"context"
	"io"
	"strconv"

	"github.com/a-h/templ"

	"unifi/models/query"
)

// The rows of the two tables every list page shows, transactions and bonds,
// are written in Go rather than templ, as StateBadge is: a list renders 50
// of them on every view, and templ formats each { } expression with
// fmt.Sprint and allocates every attribute it joins: 36 allocations a
// transaction row. Appended into one buffer, BenchmarkTransactionsTable
// (the filtered list's 50 rows) went from 298 to 38-62 µs and from 1,806
// allocations to 9, BenchmarkBondsTable from 166-193 to 41-46 µs and from
// 1,154 allocations to 7, with the same bytes out (docs/engine.md, "Ninth
// round"; TestTableRowsEscapeText checks the escaping).
// Each function writes the markup of the columns its table's header in
// tables.templ names, in that order.

// tableRows writes rows, each appended by appendRow into one buffer reused
// from row to row and written at once.
func tableRows[R any](rows []R, appendRow func(b []byte, r *R) []byte) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		b := make([]byte, 0, 1024)
		for i := range rows {
			b = appendRow(b[:0], &rows[i])
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// transactionRows writes TransactionsTable's rows.
func transactionRows(rows []query.TransactionRow, o TransactionsTableOpts) templ.Component {
	return tableRows(rows, func(b []byte, r *query.TransactionRow) []byte { return appendTransactionRow(b, r, o) })
}

// appendTransactionRow appends one row of TransactionsTable.
func appendTransactionRow(b []byte, r *query.TransactionRow, o TransactionsTableOpts) []byte {
	b = append(b, `<tr data-testid="txn-row-`...)
	b = appendEscaped(b, r.Number)
	b = append(b, `">`...)
	if o.Selectable {
		b = append(b, `<td class="sel"><input type="checkbox" name="id" value="`...)
		b = strconv.AppendInt(b, r.ID, 10)
		b = append(b, `" form="`...)
		b = appendEscaped(b, o.FormID)
		b = append(b, `" aria-label="Select `...)
		b = appendEscaped(b, r.Number)
		b = append(b, `" data-testid="select-`...)
		b = appendEscaped(b, r.Number)
		b = append(b, `"></td>`...)
	}
	b = append(b, `<td><a href="`+transactionPath...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `" data-testid="txn-link">`...)
	b = appendEscaped(b, r.Number)
	b = append(b, `</a></td><td class="mono">`...)
	b = appendEscaped(b, r.MessageIdent)
	b = append(b, `</td>`...)
	if o.ShowInt {
		b = append(b, `<td><a href="`+integrationPath...)
		b = strconv.AppendInt(b, r.IntegrationID, 10)
		b = append(b, `">`...)
		b = appendEscaped(b, r.IntegrationName)
		b = append(b, `</a></td>`...)
	}
	b = append(b, `<td>`...)
	b = appendEscaped(b, r.MessageName)
	b = append(b, `</td><td><a href="`+bondPath...)
	b = strconv.AppendInt(b, r.BondID, 10)
	b = append(b, `">`...)
	b = appendEscaped(b, r.TicketNumber)
	b = append(b, `</a></td><td>`...)
	b = appendEscaped(b, string(r.Direction))
	b = append(b, `</td><td>`...)
	b = appendBadge(b, r.State.String(), "txn-state")
	b = append(b, `</td><td>`...)
	b = appendBadge(b, r.ProcessState.String(), "txn-process-state")
	b = append(b, `</td><td class="nowrap">`...)
	b = appendTime(b, &r.CreatedAt)
	return append(b, `</td></tr>`...)
}

// bondRows writes BondsTable's rows.
func bondRows(rows []query.BondRow, showTicket bool) templ.Component {
	return tableRows(rows, func(b []byte, r *query.BondRow) []byte { return appendBondRow(b, r, showTicket) })
}

// appendBondRow appends one row of BondsTable.
func appendBondRow(b []byte, r *query.BondRow, showTicket bool) []byte {
	b = append(b, `<tr data-testid="bond-row-`...)
	b = appendEscaped(b, r.IntegrationName)
	b = append(b, '-')
	b = appendEscaped(b, r.TicketNumber)
	b = append(b, `"><td><a href="`+bondPath...)
	b = strconv.AppendInt(b, r.ID, 10)
	b = append(b, `" data-testid="bond-link">`...)
	b = appendEscaped(b, r.IntegrationName)
	b = append(b, `</a></td>`...)
	if showTicket {
		b = append(b, `<td><a href="`+ticketPath...)
		b = strconv.AppendInt(b, r.TicketID, 10)
		b = append(b, `">`...)
		b = appendEscaped(b, r.TicketNumber)
		b = append(b, `</a></td>`...)
	}
	b = append(b, `<td class="mono">`...)
	if r.ExternalReference == "" {
		b = append(b, `<span class="muted">not yet known</span>`...)
	} else {
		b = appendEscaped(b, r.ExternalReference)
	}
	b = append(b, `</td><td>`...)
	b = appendBadge(b, string(r.State), "bond-state")
	b = append(b, `</td><td>`...)
	b = appendBadge(b, string(r.Status), "bond-status")
	b = append(b, `</td><td data-testid="bond-process-error">`...)
	if r.ProcessError == "" {
		b = append(b, `<span class="muted">None</span>`...)
	} else {
		b = append(b, `<span class="error-text">`...)
		b = appendEscaped(b, r.ProcessError)
		b = append(b, `</span>`...)
	}
	b = append(b, `</td><td class="nowrap">`...)
	b = appendTime(b, &r.UpdatedAt)
	return append(b, `</td></tr>`...)
}

// appendEscaped appends s escaped as templ.EscapeString (html.EscapeString)
// does: the five characters that could end a text or an attribute value.
func appendEscaped(b []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '&':
			esc = "&amp;"
		case '\'':
			esc = "&#39;"
		case '"':
			esc = "&#34;"
		default:
			continue
		}
		b = append(append(b, s[last:i]...), esc...)
		last = i + 1
	}
	return append(b, s[last:]...)
}
