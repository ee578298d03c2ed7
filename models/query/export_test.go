package query

import "unifi/models/pg"

// TransactionPageSQL is the statement the transactions list sends for f's
// first page, with its arguments.
func TransactionPageSQL(f TransactionFilter) (string, []any) {
	var rb pg.Batch
	queueTransactionPage(&rb, f, nil, 50, &TransactionPage{})
	q := rb.Queued()[0]
	return q.SQL, q.Arguments
}

// BondTransactionsSQL is the Bond page's statement for its transactions.
const BondTransactionsSQL = bondTransactionsSQL
