package testdb

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/peterldowns/pgtestdb"
	"gorm.io/gorm"

	"unifi/models/pg"
)

// NewSeeded returns a fresh database like New, with seed already applied: the
// seed runs once, on the template, and every test clones the seeded
// template. Use it when seeding is slow (bcrypt hashes) and many tests need
// the same starting data. name identifies the seed.
func NewSeeded(t testing.TB, name string, seed func(ctx context.Context, db *gorm.DB) error) *gorm.DB {
	t.Helper()
	return open(t, create(t, seededMigrator{name: name, seed: seed}))
}

// seededMigrator is Migrator followed by a seed.
type seededMigrator struct {
	name string
	seed func(ctx context.Context, db *gorm.DB) error
}

// Hash covers the migrations, the seed's name and the test binary: the seed
// is code, so a rebuilt binary (changed code) gets a template of its own and
// a rerun of the same binary reuses the one it made.
func (m seededMigrator) Hash() (string, error) {
	base, err := Migrator{}.Hash()
	if err != nil {
		return "", err
	}
	bin, err := binaryHash()
	if err != nil {
		return "", err
	}
	return base + "-seed-" + m.name + "-" + bin, nil
}

// Migrate migrates the template, then seeds it through GORM.
func (m seededMigrator) Migrate(ctx context.Context, db *sql.DB, conf pgtestdb.Config) error {
	if err := (Migrator{}).Migrate(ctx, db, conf); err != nil {
		return err
	}
	gdb, err := pg.Open(ctx, conf.URL(), 2)
	if err != nil {
		return err
	}
	defer func() {
		if sqlDB, err := gdb.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if err := m.seed(ctx, gdb); err != nil {
		return fmt.Errorf("seed %s: %w", m.name, err)
	}
	return nil
}

var binary = sync.OnceValues(func() (string, error) {
	path, err := os.Executable()
	if err != nil {
		return "", err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
})

// binaryHash is a hash of the running test binary.
func binaryHash() (string, error) { return binary() }
