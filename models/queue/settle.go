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

// SettleItems settles the open bulk job items that follow these
// transactions, in the same database transaction as their change.
func SettleItems(tx *gorm.DB, items []ItemSettle) error {
	var done []int64
	for _, it := range items {
		if !it.Failed {
			done = append(done, it.ID)
			continue
		}
		if err := tx.Exec(`UPDATE bulk_job_items SET state = 'failed', error = ?
			WHERE coalesce(result_transaction_id, transaction_id) = ? AND state = 'acted'`, it.Error, it.ID).Error; err != nil {
			return fmt.Errorf("settle bulk job items: %w", err)
		}
	}
	if len(done) == 0 {
		return nil
	}
	if err := tx.Exec(`UPDATE bulk_job_items SET state = 'done'
		WHERE coalesce(result_transaction_id, transaction_id) = ANY(?::bigint[]) AND state = 'acted'`,
		pg.Int64s(done)).Error; err != nil {
		return fmt.Errorf("settle bulk job items: %w", err)
	}
	return nil
}
