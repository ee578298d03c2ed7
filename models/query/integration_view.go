package query

import (
	"context"
	"fmt"
	"strconv"

	"unifi/models"
	"unifi/models/converge"
	"unifi/models/designer"
	"unifi/models/pg"
	"unifi/models/queue"
)

// IntegrationOverview is what the Integration page shows.
type IntegrationOverview struct {
	Integration models.Integration
	ProcessName string
	// Connection is the active connection, nil when there is none.
	Connection *ConnectionSummary
	Messages   []MessageRow     // by name
	Counts     []StateCount     // every transport state, in sequence order
	Recent     []TransactionRow // the newest transactions
	Bonds      []BondRow        // the most recently updated bonds, with their status
	Pollers    []designer.PollerRow
	// RunningJobID is the newest resume or repair job while it runs; 0 when
	// none runs.
	RunningJobID int64
	// Conflicts is how many concurrent edits the integration resolved (a
	// change kept, another overwritten: field_conflicts).
	Conflicts int64
}

// ConnectionSummary is what the Integration page shows of the active
// connection (never its secret).
type ConnectionSummary struct {
	ID          int64
	Name        string
	Environment string
	EndpointURL string
	AuthType    models.AuthType
}

// MessageRow is a message as the Integration page lists it.
type MessageRow struct {
	ID        int64
	Name      string
	Type      models.MessageType
	Direction models.Direction
	Async     bool
	Trigger   models.Trigger
	Path      string
}

// integrationHead is the integration with its process's name, its active
// connection (connection columns NULL: there is none), its conflict count and
// its newest resume or repair job beside it, read as one statement where
// there were five: each statement a view sends costs PostgreSQL about as much
// to start as these small ones take to run (docs/engine.md, "Tenth round").
type integrationHead struct {
	models.Integration
	Conflicts             int64
	LatestJobID           *int64
	LatestJobState        *models.BulkJobState
	ProcessName           *string
	ConnectionID          *int64
	ConnectionName        *string
	ConnectionEnvironment *string
	ConnectionEndpointURL *string
	ConnectionAuthType    *models.AuthType
}

// integrationHeadSQL reads an integrationHead.
var integrationHeadSQL = `SELECT i.*, ` + converge.CountSQL("i.id") + ` AS conflicts,
	j.id AS latest_job_id, j.state AS latest_job_state,
	p.name AS process_name, c.id AS connection_id, c.name AS connection_name,
	c.environment AS connection_environment, c.endpoint_url AS connection_endpoint_url,
	c.auth_type AS connection_auth_type
	FROM integrations i
	LEFT JOIN processes p ON p.id = i.process_id
	LEFT JOIN LATERAL (SELECT id, name, environment, endpoint_url, auth_type FROM connections
		WHERE integration_id = i.id AND active LIMIT 1) c ON true
	LEFT JOIN LATERAL (SELECT id, state FROM bulk_jobs WHERE integration_id = i.id
		AND kind IN ('` + string(models.BulkResume) + `', '` + string(models.BulkRepair) + `')
		ORDER BY id DESC LIMIT 1) j ON true
	WHERE i.id = $1`

// bondWithHead is a bond of the Integration page as read: its ticket's
// number and its head's state (nil: nothing unfinished) beside it.
type bondWithHead struct {
	BondRow
	HeadState *models.TransportState
}

// integrationOverviewRows is how many recent transactions and bonds the page lists.
const integrationOverviewRows = 10

// LoadIntegrationOverview reads the Integration page in one round trip: the
// names beside its transactions and bonds are joined to them or read with
// the page (its integration, all its messages), so fillNames finds nothing
// left to look up.
func (s *Reader) LoadIntegrationOverview(ctx context.Context, id int64) (*IntegrationOverview, error) {
	v := &IntegrationOverview{}
	var rb pg.Batch
	var found bool
	var head integrationHead
	var counts []stateCountRow
	pg.QueueRow(&rb, &head, &found, integrationHeadSQL, id)
	pg.QueueRows(&rb, &v.Messages, `SELECT id, name, type, direction, async, trigger, path FROM messages
		WHERE integration_id = $1 ORDER BY name`, id)
	pg.QueueRows(&rb, &counts, stateCountsSQL, id)
	var recent TransactionPage
	queueTransactionPage(&rb, TransactionFilter{IntegrationID: id}, nil, integrationOverviewRows, &recent)
	var bonds []bondWithHead
	pg.QueueRows(&rb, &bonds, ofIntegration("b", `SELECT `+bondColumnsOf("b")+` FROM bonds b WHERE b.integration_id = i.id
		ORDER BY b.updated_at DESC, b.id DESC LIMIT `+strconv.Itoa(integrationOverviewRows), "$1",
		beside{columns: `, k.number AS ticket_number, ` + queue.HeadStateSQL("b.id") + ` AS head_state`,
			joins: ` JOIN tickets k ON k.id = b.ticket_id`})+
		` ORDER BY b.updated_at DESC, b.id DESC`, id) // a literal LIMIT, tickets joined: see queueTransactionPage
	designer.QueuePollers(&rb, &v.Pollers, id)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("load integration %d: %w", id, err)
	}
	switch {
	case !found:
		return nil, fmt.Errorf("get integration %d: %w", id, models.ErrNotFound)
	case head.ProcessName == nil:
		return nil, fmt.Errorf("integration %d: its process is missing", id)
	}
	v.Integration, v.ProcessName, v.Conflicts = head.Integration, *head.ProcessName, head.Conflicts
	if head.ConnectionID != nil {
		v.Connection = &ConnectionSummary{ID: *head.ConnectionID, Name: *head.ConnectionName,
			Environment: *head.ConnectionEnvironment, EndpointURL: *head.ConnectionEndpointURL,
			AuthType: *head.ConnectionAuthType}
	}
	if head.LatestJobID != nil && *head.LatestJobState == models.BulkRunning {
		v.RunningJobID = *head.LatestJobID
	}
	v.Recent = recent.Rows
	v.Bonds = make([]BondRow, len(bonds))
	for i, b := range bonds {
		v.Bonds[i] = b.BondRow
		v.Bonds[i].Status = models.BondStatusOf(b.HeadState)
	}
	known := knownNames{integrations: map[int64]string{v.Integration.ID: v.Integration.Name},
		messages: make(map[int64]string, len(v.Messages))}
	for _, m := range v.Messages {
		known.messages[m.ID] = m.Name
	}
	if err := s.fillNames(ctx, v.Recent, v.Bonds, known); err != nil {
		return nil, err
	}
	var err error
	if v.Counts, err = s.stateCounts(ctx, id, counts); err != nil {
		return nil, err
	}
	return v, nil
}

// ListIntegrations returns every integration by name.
func (s *Reader) ListIntegrations(ctx context.Context) ([]models.Integration, error) {
	var out []models.Integration
	if err := s.db.WithContext(ctx).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list integrations: %w", err)
	}
	return out, nil
}
