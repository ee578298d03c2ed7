// Package testdb gives each test its own PostgreSQL database, cloned from a
// migrated template. The cluster comes from DATABASE_URL, or a private one is
// started for the test binary and removed when it ends.
package testdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"unifi/internal/pgcluster"
	"unifi/migrations"
	"unifi/models/pg"
)

var (
	baseURL  string // the cluster's admin database URL
	template string // name of the migrated template database
	counter  atomic.Int64
	once     sync.Once
	onceErr  error
)

// Main runs the package's tests with a cluster available and checks for
// leaked goroutines. Use it as the body of TestMain. after, if given, run
// once the tests have ended (Main exits the process, so defers would not).
func Main(m *testing.M, after ...func()) {
	var cluster *pgcluster.Cluster
	baseURL = os.Getenv("DATABASE_URL")
	if baseURL == "" {
		var err error
		cluster, err = pgcluster.Start(context.Background(), pgcluster.Opts{Fast: true, Database: "postgres"})
		if err != nil {
			fmt.Fprintln(os.Stderr, "testdb: start private PostgreSQL:", err)
			os.Exit(1)
		}
		baseURL = cluster.URL
		// Child test processes (go test -fuzz workers) inherit it and share
		// this cluster instead of each starting their own.
		_ = os.Setenv("DATABASE_URL", baseURL)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(goleak.IgnoreTopFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
			goleak.IgnoreAnyFunction("database/sql.(*DB).connectionOpener")); err != nil {
			fmt.Fprintln(os.Stderr, "testdb: leaked goroutines:", err)
			code = 1
		}
	}
	for _, f := range after {
		f()
	}
	if cluster != nil {
		_ = cluster.Remove(context.Background())
	}
	os.Exit(code)
}

// URL returns the connection URL of a new database cloned from the migrated
// template. The database is dropped when the test passes and kept (and
// logged) when it fails.
func URL(t testing.TB) string {
	t.Helper()
	once.Do(func() { onceErr = buildTemplate() })
	if onceErr != nil {
		t.Fatalf("testdb: %v", onceErr)
	}
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	admin := openAdmin(t)
	var err error
	for range 50 { // cloning fails while another session still touches the template
		if _, err = admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template)); err == nil ||
			!strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testdb: clone template: %v", err)
	}
	u := withDatabase(baseURL, name)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("testdb: kept database %s for inspection: %s", name, u)
			return
		}
		_, _ = admin.Exec(fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name))
	})
	return u
}

// New returns a GORM handle on a fresh, migrated database for t.
func New(t testing.TB) *gorm.DB {
	t.Helper()
	return open(t, URL(t))
}

// Open returns a GORM handle on the database at url (from URL) for t's
// lifetime: a second server on a test's database.
func Open(t testing.TB, url string) *gorm.DB {
	t.Helper()
	return open(t, url)
}

// open connects to url for the test's lifetime.
func open(t testing.TB, url string) *gorm.DB {
	t.Helper()
	db, err := pg.Open(context.Background(), url, 20)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return db
}

func openAdmin(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", baseURL)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// buildTemplate creates (once per migration set) a template database with every
// migration applied. Its name carries a hash of the migrations, so packages
// testing in parallel share it and a changed migration gets a new one.
func buildTemplate() error {
	h := sha256.New()
	err := fs.WalkDir(migrations.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	template = "tpl_" + hex.EncodeToString(h.Sum(nil))[:16]
	admin, err := sql.Open("pgx", baseURL)
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx := context.Background()
	conn, err := admin.Conn(ctx)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", baseURL, err)
	}
	defer conn.Close()
	// Serialise template creation across test binaries.
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(727274)"); err != nil {
		return err
	}
	defer conn.ExecContext(ctx, "SELECT pg_advisory_unlock(727274)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)",
		template).Scan(&exists); err != nil {
		return err
	}
	if exists {
		return nil
	}
	_, _ = conn.ExecContext(ctx, "DROP DATABASE IF EXISTS "+template)
	if _, err := conn.ExecContext(ctx, "CREATE DATABASE "+template); err != nil {
		return fmt.Errorf("create template: %w", err)
	}
	db, err := pg.Open(ctx, withDatabase(baseURL, template), 2)
	if err != nil {
		return err
	}
	_, merr := pg.Migrate(ctx, db)
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
	if merr != nil {
		return merr
	}
	if _, err := conn.ExecContext(ctx, "ALTER DATABASE "+template+" WITH is_template = true ALLOW_CONNECTIONS = false"); err != nil {
		return fmt.Errorf("mark template: %w", err)
	}
	return nil
}

func withDatabase(raw, name string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.Path = "/" + name
	return u.String()
}
