package pagebench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"unifi/internal/cpuacct"
)

// meter reads what serving the pages costs: this process's CPU time
// (getrusage), the CPU time of the PostgreSQL backends connected to the
// database (/proc/<pid>/stat, so only when PostgreSQL runs on this machine
// and its processes are readable), and the statements and round trips the
// app sent (a pgx tracer on the app's connections: GORM's statements and read
// batches alike).
type meter struct {
	sqlDB      *sql.DB // the meter's own connection: its queries are not traced
	statements atomic.Int64
	roundTrips atomic.Int64

	mu    sync.Mutex
	ticks map[int]time.Duration // backend pid → its last CPU time; an exited backend keeps its last reading
}

// newMeter reads the backends of the database at dbURL through a connection
// of its own; pass it to models.OpenWith as the app's tracer.
func newMeter(dbURL string) (*meter, error) {
	sqlDB, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	return &meter{sqlDB: sqlDB, ticks: map[int]time.Duration{}}, nil
}

// close closes the meter's connection.
func (m *meter) close() { _ = m.sqlDB.Close() }

// TraceQueryStart counts a statement sent on its own: one round trip.
func (m *meter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	m.statements.Add(1)
	m.roundTrips.Add(1)
	return ctx
}

// TraceQueryEnd is part of pgx.QueryTracer.
func (m *meter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// TraceBatchStart counts a batch: one round trip for all its statements.
func (m *meter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	m.roundTrips.Add(1)
	return ctx
}

// TraceBatchQuery counts a statement of a batch.
func (m *meter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	m.statements.Add(1)
}

// TraceBatchEnd is part of pgx.BatchTracer.
func (m *meter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

// read is Opts.Meter.
func (m *meter) read(ctx context.Context) (Usage, error) {
	u := Usage{Statements: m.statements.Load(), RoundTrips: m.roundTrips.Load(), DBCPU: -1}
	u.ProcessCPU = cpuacct.Self()
	rows, err := m.sqlDB.QueryContext(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND backend_type = 'client backend'`)
	if err != nil {
		return u, fmt.Errorf("list backends: %w", err)
	}
	defer rows.Close()
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			return u, err
		}
		pids = append(pids, pid)
	}
	if err := rows.Err(); err != nil {
		return u, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	read := 0
	for _, pid := range pids {
		if t := cpuacct.Process(pid); t > 0 { // 0: exited meanwhile, elsewhere or not readable
			m.ticks[pid] = t
			read++
		}
	}
	if read == 0 {
		return u, nil // PostgreSQL elsewhere or not readable: no DB figure
	}
	var sum time.Duration
	for _, t := range m.ticks {
		sum += t
	}
	u.DBCPU = sum
	return u, nil
}

// cpuProfiler is Opts.Profile writing dir/pages-<page>.pprof.
func cpuProfiler(dir string, w interface{ Write([]byte) (int, error) }) func(page string) func() {
	return func(page string) func() {
		name := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
				return r
			}
			return '-'
		}, strings.ToLower(page))
		path := filepath.Join(dir, "pages-"+strings.Trim(name, "-")+".pprof")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			fmt.Fprintf(w, "cpu profile: %v\n", err)
			return func() {}
		}
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(w, "cpu profile: %v\n", err)
			return func() {}
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(w, "cpu profile: %v\n", err)
			_ = f.Close()
			return func() {}
		}
		return func() {
			pprof.StopCPUProfile()
			_ = f.Close()
			fmt.Fprintf(w, "cpu profile of %s: %s\n", page, path)
		}
	}
}
