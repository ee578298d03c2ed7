package pagebench

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
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
	ticks map[int]int64 // backend pid → its last CPU ticks; an exited backend keeps its last reading
}

// newMeter reads the backends of the database at dbURL through a connection
// of its own; pass it to models.OpenWith as the app's tracer.
func newMeter(dbURL string) (*meter, error) {
	sqlDB, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(1)
	return &meter{sqlDB: sqlDB, ticks: map[int]int64{}}, nil
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

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times (100 on Linux).
const clockTicks = 100

// read is Opts.Meter.
func (m *meter) read(ctx context.Context) (Usage, error) {
	u := Usage{Statements: m.statements.Load(), RoundTrips: m.roundTrips.Load(), DBCPU: -1}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return u, fmt.Errorf("getrusage: %w", err)
	}
	u.ProcessCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
		if t, err := procTicks(pid); err == nil { // an error: exited meanwhile, elsewhere or not readable
			m.ticks[pid] = t
			read++
		}
	}
	if read == 0 {
		return u, nil // PostgreSQL elsewhere or not readable: no DB figure
	}
	var sum int64
	for _, t := range m.ticks {
		sum += t
	}
	u.DBCPU = time.Duration(sum) * time.Second / clockTicks
	return u, nil
}

// procTicks is a process's user plus system CPU time in clock ticks.
func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state); utime and stime are fields 14 and 15
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return ut + st, nil
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
