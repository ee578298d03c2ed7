package inbound_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models/inbound"
)

// TestLookupsByRemoteReferenceUseIndex: every lookup of a bond by the
// remote's reference is planned, as a prepared statement's generic plan (the
// one database/sql reuses), as a scan of a partial index on
// external_reference, not of every bond: at 10,000 bonds the scan cost 1 ms
// a lookup (bench -only poll). The index's predicate (external_reference <>
// ”) cannot be proved from "= $2", so each statement repeats it.
func TestLookupsByRemoteReferenceUseIndex(t *testing.T) {
	t.Parallel()
	b := setupGroup(t)
	ctx := context.Background()
	// Enough bonds that the planner prefers an index over reading the table.
	require.NoError(t, b.db.Exec(`
		WITH k AS (INSERT INTO tickets (process_id, number, short_description)
		    SELECT (SELECT process_id FROM integrations WHERE name = 'demo'), 'PLAN' || g, 'plan ' || g
		    FROM generate_series(1, 5000) g RETURNING id, number)
		INSERT INTO bonds (integration_id, ticket_id, internal_reference, external_reference, state, owner)
		SELECT (SELECT id FROM integrations WHERE name = 'demo'), k.id, k.number, 'EXT-' || k.number, 'Open', false FROM k`).Error)
	require.NoError(t, b.db.Exec(`ANALYZE bonds`).Error)
	sqlDB, err := b.db.DB()
	require.NoError(t, err)
	c, err := sqlDB.Conn(ctx)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`)
	require.NoError(t, err)
	for name, stmt := range inbound.LookupsByRemoteReference {
		t.Run(name, func(t *testing.T) {
			_, err := c.ExecContext(ctx, `PREPARE lookup(bigint, text) AS `+stmt)
			require.NoError(t, err)
			defer c.ExecContext(ctx, `DEALLOCATE lookup`) //nolint:errcheck
			text := testdb.Plan(t, c, `EXECUTE lookup(1, 'EXT-PLAN42')`)
			require.NotContains(t, text, "Seq Scan on bonds", text)
			require.Regexp(t, `Index (Only )?Scan (Backward )?using bonds_external(_reference)? on bonds|Bitmap Index Scan on bonds_external`, text)
		})
	}
}
