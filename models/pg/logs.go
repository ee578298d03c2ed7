package pg

import (
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
)

// LogActivity records a user action in the same database transaction as the change.
func LogActivity(tx *gorm.DB, actor models.Actor, action, recordType string, recordID int64, label string,
	before, after map[string]any) error {
	a := models.ActivityLog{UserName: actor.Name, Action: action, RecordType: recordType, RecordLabel: label,
		RemoteAddr: actor.RemoteAddr, Before: models.JSON[map[string]any]{V: before}, After: models.JSON[map[string]any]{V: after}}
	if actor.UserID != 0 {
		a.UserID = &actor.UserID
	}
	if recordID != 0 {
		a.RecordID = &recordID
	}
	if err := tx.Create(&a).Error; err != nil {
		return fmt.Errorf("log activity %q: %w", action, err)
	}
	return nil
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
