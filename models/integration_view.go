package models

import (
	"context"
	"fmt"
)

// IntegrationOverview is what the Integration page shows.
type IntegrationOverview struct {
	Integration Integration
	Process     Process
	// Connection is the active connection, nil when there is none. Its
	// secret is not opened (AuthSecret is empty): the page does not show it.
	Connection *Connection
	Messages   []Message        // by name
	Counts     []StateCount     // every transport state, in sequence order
	Recent     []TransactionRow // the newest transactions
	Bonds      []BondRow        // the most recently updated bonds, with their status
	// LatestJob is the newest resume or repair job, running or not; nil when
	// there has been none.
	LatestJob *BulkJob
}

// integrationOverviewRows is how many recent transactions and bonds the page lists.
const integrationOverviewRows = 10

// LoadIntegrationOverview reads the Integration page in one round trip, and
// the names beside its transactions and bonds in a second (fillNames).
func (s *Store) LoadIntegrationOverview(ctx context.Context, id int64) (*IntegrationOverview, error) {
	v := &IntegrationOverview{}
	var rb ReadBatch
	var found, foundProcess, foundConnection, foundJob bool
	var conn Connection
	var job BulkJob
	var counts []stateCountRow
	QueueRow(&rb, &v.Integration, &found, `SELECT * FROM integrations WHERE id = $1`, id)
	QueueRow(&rb, &v.Process, &foundProcess,
		`SELECT * FROM processes WHERE id = (SELECT process_id FROM integrations WHERE id = $1)`, id)
	QueueRow(&rb, &conn, &foundConnection, `SELECT * FROM connections WHERE integration_id = $1 AND active LIMIT 1`, id)
	QueueRows(&rb, &v.Messages, `SELECT * FROM messages WHERE integration_id = $1 ORDER BY name`, id)
	QueueRows(&rb, &counts, stateCountsSQL, id)
	var recent TransactionPage
	queueTransactionPage(&rb, TransactionFilter{IntegrationID: id}, nil, integrationOverviewRows, &recent)
	QueueRows(&rb, &v.Bonds, `SELECT * FROM bonds WHERE integration_id = $1
		ORDER BY updated_at DESC, id DESC LIMIT $2`, id, integrationOverviewRows) // LIMIT: see queueTransactionPage
	QueueRow(&rb, &job, &foundJob, `SELECT * FROM bulk_jobs WHERE integration_id = $1 AND kind = ANY($2)
		ORDER BY id DESC LIMIT 1`, id, []string{string(BulkResume), string(BulkRepair)})
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("load integration %d: %w", id, err)
	}
	switch {
	case !found:
		return nil, fmt.Errorf("get integration %d: %w", id, ErrNotFound)
	case !foundProcess:
		return nil, fmt.Errorf("integration %d: its process is missing", id)
	}
	if foundConnection {
		conn.AuthSecret = ""
		v.Connection = &conn
	}
	if foundJob {
		v.LatestJob = &job
	}
	v.Recent = recent.Rows
	if err := s.fillNames(ctx, v.Recent, v.Bonds); err != nil {
		return nil, err
	}
	var err error
	if v.Counts, err = s.stateCounts(ctx, id, counts); err != nil {
		return nil, err
	}
	return v, nil
}
