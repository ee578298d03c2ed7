package queue

import (
	"fmt"

	"gorm.io/gorm"

	"unifi/models/pg"
)

// ItemSettle is one finished transaction whose bulk job item, if any, settles.
type ItemSettle struct {
	ID     int64  `json:"id"`
	Failed bool   `json:"failed"`
	Error  string `json:"error"`
}

// settleFailedSQL fails the acted item following transaction $2, with error $1.
const settleFailedSQL = `UPDATE bulk_job_items SET state = 'failed', error = $1
			WHERE coalesce(result_transaction_id, transaction_id) = $2 AND state = 'acted'`

// settleDoneSQL settles the acted items following the transactions $1 as done.
const settleDoneSQL = `UPDATE bulk_job_items SET state = 'done'
		WHERE coalesce(result_transaction_id, transaction_id) = ANY($1::bigint[]) AND state = 'acted'`

// SettleItems settles the open bulk job items that follow these
// transactions, in the same database transaction as their change.
func SettleItems(tx *gorm.DB, items []ItemSettle) error {
	var done []int64
	for _, it := range items {
		if !it.Failed {
			done = append(done, it.ID)
			continue
		}
		if _, err := pg.Exec(tx, settleFailedSQL, it.Error, it.ID); err != nil {
			return fmt.Errorf("settle bulk job items: %w", err)
		}
	}
	if len(done) == 0 {
		return nil
	}
	if _, err := pg.Exec(tx, settleDoneSQL, done); err != nil {
		return fmt.Errorf("settle bulk job items: %w", err)
	}
	return nil
}
