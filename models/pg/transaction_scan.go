package pg

import (
	"strings"

	"unifi/models"
)

// Lists read up to 200 transactions a page. Matching columns to fields by
// name, per row, was a sixth of the transactions list's CPU; these read them
// by position instead. TestTransactionColumns checks that the list names
// every column GORM maps for Transaction.

// TransactionColumns are Transaction's columns, in TransactionFields' order.
const TransactionColumns = `id, number, message_ident, external_message_id, integration_id, bond_id, message_id, ticket_id,
	table_name, direction, state, process_state, seq, attempts, next_attempt_at, receipt_due_at, lease_owner,
	lease_expires_at, error, process_error, replay_of_id, replay_count, created_at, updated_at, finished_at`

// QualifiedTransactionColumns is TransactionColumns with each column
// qualified by alias, for a query that joins tables sharing their names.
func QualifiedTransactionColumns(alias string) string {
	cols := strings.Split(TransactionColumns, ",")
	for i, c := range cols {
		cols[i] = alias + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// TransactionFields appends the scan targets for TransactionColumns to dst.
func TransactionFields(dst []any, t *models.Transaction) []any {
	return append(dst, &t.ID, &t.Number, &t.MessageIdent, &t.ExternalMessageID, &t.IntegrationID, &t.BondID, &t.MessageID,
		&t.TicketID, &t.TableName, &t.Direction, &t.State, &t.ProcessState, &t.Seq, &t.Attempts, &t.NextAttemptAt,
		&t.ReceiptDueAt, &t.LeaseOwner, &t.LeaseExpiresAt, &t.Error, &t.ProcessError, &t.ReplayOfID, &t.ReplayCount,
		&t.CreatedAt, &t.UpdatedAt, &t.FinishedAt)
}
