package pg_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models/pg"
)

func TestMigrations(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	pending, err := pg.MigrationsPending(ctx, db)
	require.NoError(t, err)
	require.False(t, pending)

	// CHECK constraints guard every state column.
	var pid int64
	require.NoError(t, db.Raw(`INSERT INTO processes (name, ticket_table) VALUES ('Incident', 'incident') RETURNING id`).Scan(&pid).Error)
	err = db.Exec(`INSERT INTO integrations (name, process_id, state) VALUES ('x', ?, 'Sleeping')`, pid).Error
	require.ErrorContains(t, err, "integrations_state_check")
	err = db.Exec(`INSERT INTO integrations (name, process_id, status) VALUES ('x', ?, 'Sideways')`, pid).Error
	require.ErrorContains(t, err, "integrations_status_check")
}
