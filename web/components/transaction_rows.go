package components

import (
	"context"
	"io"
	"strconv"

	"github.com/a-h/templ"

	"unifi/models/query"
)

// transactionRows writes TransactionsTable's rows. It is written in Go
// rather than templ, as StateBadge is: the transactions list renders 50 of
// them on every view, and templ formats each { } expression with
// fmt.Sprint and allocates every attribute it joins: 36 allocations a row.
// Appended into one buffer, BenchmarkTransactionsTable (the filtered list's
// 50 rows) went from 298 to 38-55 µs and from 1,806 allocations to 8, with
// the same bytes out (docs/engine.md, "Pages").
func transactionRows(rows []query.TransactionRow, o TransactionsTableOpts) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		b := make([]byte, 0, 1024)
		for i := range rows {
			b = appendTransactionRow(b[:0], &rows[i], o)
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// appendTransactionRow appends one row: the markup tables.templ's header
// names, column by column.
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
