// Package testdb gives each test its own PostgreSQL database, cloned by
// pgtestdb from a template migrated with the project's goose migrations. The
// cluster comes from DATABASE_URL, or a private one is started for the test
// binary and removed when it ends.
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
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
	"github.com/peterldowns/pgtestdb"
	"github.com/pressly/goose/v3"
	"go.uber.org/goleak"
	"gorm.io/gorm"

	"unifi/internal/pgcluster"
	"unifi/migrations"
	"unifi/models/pg"
)

var baseURL string // the cluster's admin database URL

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
// template. pgtestdb logs it, drops the database when the test passes and
// keeps it for inspection when the test fails.
func URL(t testing.TB) string {
	t.Helper()
	return create(t, Migrator{})
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

// create has pgtestdb clone a database for t from the template that m
// builds, and returns its URL.
func create(t testing.TB, m pgtestdb.Migrator) string {
	t.Helper()
	conf, err := baseConfig()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	return pgtestdb.Custom(t, conf, m).URL()
}

// baseConfig describes the cluster of baseURL to pgtestdb. Test databases
// belong to pgtestdb's role (no superuser), which can still do everything
// the app and its tests do on their own database.
func baseConfig() (pgtestdb.Config, error) {
	if baseURL == "" {
		return pgtestdb.Config{}, fmt.Errorf("no cluster: call testdb.Main from TestMain")
	}
	u, err := url.Parse(baseURL)
	if err != nil {
		return pgtestdb.Config{}, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pw, _ := u.User.Password()
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	db := u.Path
	if len(db) > 0 && db[0] == '/' {
		db = db[1:]
	}
	if db == "" {
		db = "postgres"
	}
	return pgtestdb.Config{DriverName: "pgx", Host: u.Hostname(), Port: port, User: u.User.Username(),
		Password: pw, Database: db, Options: u.RawQuery,
		// A test that leaks a connection still gets its database dropped
		// (DROP DATABASE ... WITH (FORCE), as before pgtestdb).
		ForceTerminateConnections: true}, nil
}

// Migrator builds pgtestdb's template with the goose migrations embedded in
// the binary (migrations.FS), through goose's Provider as pg.Migrate does.
type Migrator struct{}

// Hash identifies the template: a hash of every migration's name and text,
// so packages testing at once share it and a changed migration gets a new one.
func (Migrator) Hash() (string, error) {
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
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Migrate applies every migration to the new template database.
func (Migrator) Migrate(ctx context.Context, db *sql.DB, _ pgtestdb.Config) error {
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	return nil
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
