package pg

import (
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
)

// LogActivity records a user action in the same database transaction as the change.
func LogActivity(tx *gorm.DB, actor models.Actor, action, recordType string, recordID int64, label string,
	before, after map[string]any) error {
	if _, err := Exec(tx, insertActivitySQL, activityArgs(actor, action, recordType, recordID, label, before, after)...); err != nil {
		return fmt.Errorf("log activity %q: %w", action, err)
	}
	return nil
}

// QueueActivity is LogActivity as a statement of a batch that runs in the
// change's database transaction.
func QueueActivity(rb *Batch, actor models.Actor, action, recordType string, recordID int64, label string,
	before, after map[string]any) {
	QueueExec(rb, insertActivitySQL, activityArgs(actor, action, recordType, recordID, label, before, after)...)
}

// insertActivitySQL records a user action; created_at is the database's
// clock, as every time the application compares.
const insertActivitySQL = `INSERT INTO activity_logs (user_id, user_name, action, record_type, record_id, record_label,
	remote_addr, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

func activityArgs(actor models.Actor, action, recordType string, recordID int64, label string,
	before, after map[string]any) []any {
	var userID, record *int64
	if actor.UserID != 0 {
		userID = &actor.UserID
	}
	if recordID != 0 {
		record = &recordID
	}
	return []any{userID, actor.Name, action, recordType, record, label, actor.RemoteAddr,
		models.JSON[map[string]any]{V: before}, models.JSON[map[string]any]{V: after}}
}

// InsertLogs writes transaction log lines in one statement, each column one
// array parameter.
func InsertLogs(tx *gorm.DB, logs []models.TransactionLog) error {
	if len(logs) == 0 {
		return nil
	}
	tid := make([]int64, len(logs))
	kind, level, line := make([]string, len(logs)), make([]string, len(logs)), make([]string, len(logs))
	for i, l := range logs {
		tid[i], kind[i], level[i], line[i] = l.TransactionID, string(l.Kind), l.Level, l.Line
	}
	if err := tx.Exec(`INSERT INTO transaction_logs (transaction_id, kind, level, line)
		SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[])`,
		Array(tid), Array(kind), Array(level), Array(line)).Error; err != nil {
		return fmt.Errorf("write transaction logs: %w", err)
	}
	return nil
}
