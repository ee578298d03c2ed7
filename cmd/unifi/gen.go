package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/store"
)

// cmdGen fills the database with generated tickets, bonds and transactions
// (with stages, HTTP requests, a log line, state history and counts) so the
// pages and the engine can be measured against a large history. Every batch is
// a single INSERT … SELECT over generate_series; the state-change trigger is
// bypassed and its rows and counts are written in the same statement.
//
// A big fill (--rebuild-indexes auto: at least bulkFill transactions and at
// least as many as the table holds) runs in one database transaction that
// drops the filled tables' secondary indexes and foreign keys, inserts, and
// recreates them from the definitions the catalog gave: building an index
// from sorted rows is far cheaper than inserting ten million entries one by
// one in random places, and one join validates a foreign key instead of one
// lookup per row. Killed half-way, it leaves the database as it was.
func cmdGen(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("transactions", 100000, "how many transactions to generate (10 per bond)")
	name := fs.String("integration", models.DemoIntegrationName, "integration to generate for (the demo is seeded if missing)")
	batch := fs.Int("batch", 100000, "transactions per statement (and per database transaction, unless the indexes are rebuilt)")
	days := fs.Int("days", 30, "spread the creation times over this many days, ending now")
	rebuildFlag := fs.String("rebuild-indexes", "auto", "drop the filled tables' secondary indexes and foreign keys and recreate them after the fill, in one\n"+
		"database transaction: on, off, or auto (on when filling at least 1,000,000 transactions and at least as many as there are)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n <= 0 || *batch <= 0 {
		return fmt.Errorf("--transactions and --batch must be positive")
	}
	svc, closeDB, err := toolServices(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := svc.store.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:8081"}); err != nil {
		return err
	}
	in, err := svc.store.GetIntegrationByName(ctx, *name)
	if err != nil {
		return err
	}
	db := svc.store.DB(ctx)
	var msgs []models.Message
	if err := db.Where("integration_id = ? AND name IN ?", in.ID, []string{"CreateIncident", "UpdateIncident"}).
		Order("name").Find(&msgs).Error; err != nil || len(msgs) != 2 {
		return fmt.Errorf("integration %s needs the CreateIncident and UpdateIncident messages: %v", in.Name, err)
	}
	run := strconv.FormatInt(time.Now().Unix()%1000000, 36)
	total := (*n + 9) / 10 * 10
	rebuild, err := genRebuild(db, *rebuildFlag, total)
	if err != nil {
		return err
	}
	step := float64(*days*86400) / float64(total)
	start := time.Now()
	fmt.Fprintf(stdout, "generating %d transactions on %d bonds for integration %s (run %s, indexes rebuilt: %t)\n",
		total, total/10, in.Name, run, rebuild)
	fill := func(tx *gorm.DB, lo, hi int) error {
		if err := tx.Exec(genSQL, map[string]any{
			"run": run, "blo": lo / 10, "bhi": hi/10 - 1, "total": total, "step": step, "integ": in.ID,
			"process": in.ProcessID, "create": msgs[0].ID, "update": msgs[1].ID,
		}).Error; err != nil {
			return fmt.Errorf("generate batch %d-%d: %w", lo, hi, err)
		}
		// A transaction's rows: itself, its stage, HTTP request, log line and
		// state change; a ticket and a bond per ten.
		el := time.Since(start).Seconds()
		fmt.Fprintf(stdout, "  %d / %d (%.1f s, %.0f transactions/s, %.0f rows/s)\n", hi, total, el,
			float64(hi)/el, float64(hi*5+hi/10*2)/el)
		return nil
	}
	step10 := max(*batch/10*10, 10)
	if rebuild {
		err = db.Transaction(func(tx *gorm.DB) error {
			if err := genSession(tx); err != nil {
				return err
			}
			restore, err := genDropIndexes(tx, stdout)
			if err != nil {
				return err
			}
			for lo := 0; lo < total; lo += step10 {
				if err := fill(tx, lo, min(lo+step10, total)); err != nil {
					return err
				}
			}
			for _, stmt := range restore {
				t0 := time.Now()
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("recreate after the fill: %s: %w", stmt, err)
				}
				fmt.Fprintf(stdout, "  %.1f s: %s\n", time.Since(t0).Seconds(), stmt)
			}
			return nil
		})
	} else {
		for lo := 0; lo < total && err == nil; lo += step10 {
			err = db.Transaction(func(tx *gorm.DB) error {
				if err := genSession(tx); err != nil {
					return err
				}
				return fill(tx, lo, min(lo+step10, total))
			})
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "  committed (%.1f s); vacuum ...\n", time.Since(start).Seconds())
	// A database that has lived through millions of transactions has been
	// vacuumed by autovacuum long since (visibility map set, statistics
	// fresh); vacuum now, so that nothing measured later runs beside it.
	if err := db.Exec("VACUUM (ANALYZE) " + strings.Join(genTables, ", ")).Error; err != nil {
		return fmt.Errorf("vacuum the generated rows: %w", err)
	}
	fmt.Fprintf(stdout, "generated %d transactions in %.1f s\n", total, time.Since(start).Seconds())
	return nil
}

// genTables are the tables gen fills (transaction_state_counts aside: one row
// per integration and state); transaction_keys is filled by the trigger on
// transactions.
var genTables = []string{"tickets", "bonds", "transactions", "transaction_keys", "stages", "http_requests",
	"transaction_logs", "transaction_state_changes"}

// bulkFill is the smallest fill for which auto rebuilds the indexes: below
// it the fill takes seconds either way, and the tables stay unlocked between
// batches.
const bulkFill = 1000000

// genRebuild decides --rebuild-indexes: auto rebuilds when the fill is big
// and at least doubles the transactions table (rebuilding also re-sorts the
// rows already there).
func genRebuild(db *gorm.DB, flag string, total int) (bool, error) {
	switch flag {
	case "on":
		return true, nil
	case "off":
		return false, nil
	case "auto":
	default:
		return false, fmt.Errorf("--rebuild-indexes: %q is not on, off or auto", flag)
	}
	if total < bulkFill {
		return false, nil
	}
	var rows float64
	if err := db.Raw("SELECT greatest(reltuples, 0) FROM pg_class WHERE oid = 'transactions'::regclass").
		Scan(&rows).Error; err != nil {
		return false, fmt.Errorf("estimate the transactions already there: %w", err)
	}
	return float64(total) >= rows, nil
}

// genSession sets the fill's database transaction: the history's bulk-load
// escape (gen writes the history itself), no wait for the WAL flush at
// commit, and memory for the index builds.
func genSession(tx *gorm.DB) error {
	for _, set := range []string{"SET LOCAL unifi.bulk_load = 'on'", "SET LOCAL synchronous_commit = off",
		"SET LOCAL maintenance_work_mem = '1GB'"} {
		if err := tx.Exec(set).Error; err != nil {
			return fmt.Errorf("%s: %w", set, err)
		}
	}
	return nil
}

// genDropIndexes drops the filled tables' foreign keys and the indexes that
// back no constraint (primary keys and unique constraints stay: their keys
// mostly grow with the ids, and foreign keys elsewhere may need them), and
// returns the statements that recreate them, indexes first, from the
// catalog's own definitions, so they cannot drift from the migrations.
func genDropIndexes(tx *gorm.DB, stdout io.Writer) ([]string, error) {
	var objs []struct{ DropSQL, CreateSQL string }
	if err := tx.Raw(`
		SELECT format('DROP INDEX %I.%I', x.schemaname, x.indexname) AS drop_sql, x.indexdef AS create_sql
		FROM pg_indexes x
		WHERE x.schemaname = current_schema() AND x.tablename IN ?
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = format('%I.%I', x.schemaname, x.indexname)::regclass)
		UNION ALL
		SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
		       format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid))
		FROM pg_constraint c
		WHERE c.contype = 'f' AND c.connamespace = current_schema()::regnamespace
		  AND c.conrelid::regclass::text IN ?
		ORDER BY 1 DESC`, genTables, genTables).Scan(&objs).Error; err != nil {
		return nil, fmt.Errorf("read the indexes and foreign keys of the filled tables: %w", err)
	}
	restore := make([]string, 0, len(objs))
	for _, o := range objs {
		if err := tx.Exec(o.DropSQL).Error; err != nil {
			return nil, fmt.Errorf("%s: %w", o.DropSQL, err)
		}
		restore = append(restore, o.CreateSQL)
	}
	fmt.Fprintf(stdout, "  dropped %d indexes and foreign keys, to recreate after the fill\n", len(objs))
	return restore, nil
}

// genSQL writes one batch: tickets b in [blo, bhi], a bond each, ten
// transactions per bond, each with its stage, HTTP request, log line and
// state change. Most are Complete; per hundred bonds one ends in
// Error, one has an Error followed by a Queued one, one awaited a receipt due
// 5 minutes after it was sent (Timed Out with the sweeper's error once that
// time has passed, as the engine's sweeper would have left it long since:
// left Awaiting Receipt, a history of millions handed the bench's delivery
// run 10,000 overdue receipts to sweep, at seconds a sweep);
// one transaction in fifty is Rejected with a process error; one in seven is
// inbound.
const genSQL = `
WITH tk AS (
	INSERT INTO tickets (process_id, number, short_description, description, state, priority, urgency, impact,
	                     assignment_group, created_at, updated_at)
	SELECT CAST(@process AS bigint), 'GEN-' || CAST(@run AS text) || '-' || b, 'Generated ticket ' || b, 'Generated by unifi gen', 'In Progress',
	       1 + b % 5, 1 + b % 3, 1 + b % 3, 'Service Desk', ts, ts
	FROM generate_series(CAST(@blo AS bigint), CAST(@bhi AS bigint)) b,
	     LATERAL (SELECT now() - make_interval(secs => (CAST(@total AS bigint) - b * 10) * CAST(@step AS float8)) AS ts) x
	RETURNING id, number, created_at),
bd AS (
	INSERT INTO bonds (integration_id, ticket_id, internal_reference, external_reference, state, owner, history,
	                   process_error, next_seq, created_at, updated_at)
	SELECT CAST(@integ AS bigint), id, number, 'EXT-' || number, 'Open', true, 'Generated bond' || chr(10),
	       CASE WHEN split_part(number, '-', 3)::bigint % 50 = 3 THEN 'Urgency may only be changed by the owner' ELSE '' END,
	       10, created_at, created_at + interval '10 minutes'
	FROM tk
	RETURNING id, ticket_id, split_part(internal_reference, '-', 3)::bigint AS b),
src AS (
	SELECT bd.id AS bond_id, bd.ticket_id, bd.b, s, bd.b * 10 + s - 1 AS g,
	       now() - make_interval(secs => (CAST(@total AS bigint) - (bd.b * 10 + s - 1)) * CAST(@step AS float8)) AS ts,
	       CASE WHEN s = 10 AND bd.b % 100 = 0 THEN 8
	            WHEN s = 9 AND bd.b % 100 = 1 THEN 8
	            WHEN s = 10 AND bd.b % 100 = 1 THEN 6
	            WHEN s = 10 AND bd.b % 100 = 2 THEN 2
	            ELSE 5 END::smallint AS state
	FROM bd, generate_series(1, 10) s),
rows AS (
	SELECT bond_id, ticket_id, s, g, ts, st AS state,
	       CASE WHEN st = 5 AND g % 7 = 0 THEN 'Inbound' ELSE 'Outbound' END AS direction,
	       CASE WHEN st <> 5 THEN 0 WHEN g % 50 = 0 THEN 2 ELSE 1 END::smallint AS pstate
	FROM src, LATERAL (SELECT CASE WHEN src.state = 2 AND src.ts + interval '5 minutes' <= now() THEN 7
	                               ELSE src.state END::smallint AS st) x),
ins AS (
	INSERT INTO transactions (number, message_ident, external_message_id, integration_id, bond_id, message_id,
	                          ticket_id, table_name, direction, state, process_state, seq, attempts, next_attempt_at,
	                          receipt_due_at, error, process_error, created_at, updated_at, finished_at)
	SELECT 'TRN-' || CAST(@run AS text) || '-' || g, 'MSG-' || CAST(@run AS text) || '-' || g,
	       CASE WHEN direction = 'Inbound' THEN 'EXT-MSG-' || CAST(@run AS text) || '-' || g ELSE '' END,
	       CAST(@integ AS bigint), bond_id, CASE WHEN s = 1 THEN CAST(@create AS bigint) ELSE CAST(@update AS bigint) END, ticket_id, 'incident', direction, state,
	       pstate, s, CASE WHEN state = 8 THEN 4 ELSE 1 END, ts,
	       CASE WHEN state IN (2, 7) THEN ts + interval '5 minutes' END,
	       CASE WHEN state = 8 THEN 'HTTP 500 from the remote system after 4 attempts'
	            WHEN state = 7 THEN 'No receipt arrived by ' ||
	                 to_char((ts + interval '5 minutes') AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
	            ELSE '' END,
	       CASE WHEN pstate = 2 THEN 'Urgency may only be changed by the owner' ELSE '' END,
	       ts, ts + interval '1 second', CASE WHEN state = 5 THEN ts + interval '1 second' END
	FROM rows
	RETURNING id, integration_id, state, direction, message_ident, seq, created_at),
st AS (
	INSERT INTO stages (transaction_id, data, created_at)
	SELECT id, jsonb_build_object('short_description', 'Generated ticket', 'priority', 'High', 'urgency', 'Medium',
	                              'comments', 'generated note ' || id), created_at
	FROM ins),
rq AS (
	INSERT INTO http_requests (transaction_id, integration_id, direction, state, attempt, method, url,
	                           request_headers, request_body, response_status, response_headers, response_body,
	                           duration_ms, created_at, updated_at)
	SELECT id, integration_id, direction, CASE WHEN state = 8 THEN 3 ELSE 2 END, 1, 'POST',
	       'http://127.0.0.1:8081/api/v1/integrations/demo/messages',
	       '{"Content-Type":"application/json","Authorization":"[redacted]"}',
	       '{"message":{"name":"UpdateIncident","source_id":"' || message_ident || '"},"data":{"short_description":"Generated ticket"}}',
	       CASE WHEN state = 8 THEN 500 ELSE 200 END, '{"Content-Type":"application/json"}',
	       '{"status":{"process_state":"Accepted"}}', 5 + id % 40, created_at, created_at
	FROM ins),
lg AS (
	INSERT INTO transaction_logs (transaction_id, kind, level, line, created_at)
	SELECT id, CASE WHEN direction = 'Inbound' THEN 'transaction receive' ELSE 'message send' END, 'info',
	       CASE WHEN seq = 1 THEN 'CreateIncident ' ELSE 'UpdateIncident ' END || message_ident ||
	       CASE WHEN direction = 'Inbound' THEN ' received'
	            ELSE ' created for GEN-' || CAST(@run AS text) || '-' || split_part(message_ident, '-', 3)::bigint / 10 ||
	                 ' (update trigger), Sending' END, created_at
	FROM ins),
hist AS (
	INSERT INTO transaction_state_changes (id, transaction_id, integration_id, from_state, to_state, changed_at)
	SELECT nextval('transaction_state_change_seq'), id, integration_id, NULL, state, created_at FROM ins)
INSERT INTO transaction_state_counts (integration_id, state, n)
SELECT integration_id, state, count(*) FROM ins GROUP BY integration_id, state ORDER BY integration_id, state
ON CONFLICT (integration_id, state) DO UPDATE SET n = transaction_state_counts.n + excluded.n`
