package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"unifi/models/pg"
)

var seeded sync.Map // name -> *seededTemplate

type seededTemplate struct {
	once sync.Once
	name string
	err  error
}

// NewSeeded returns a fresh database like New, with seed already applied: seed
// runs once per test binary on a clone of the migrated template, which then
// becomes a template itself. Use it when seeding is slow (bcrypt hashes) and
// many tests need the same starting data. name identifies the seed.
func NewSeeded(t testing.TB, name string, seed func(ctx context.Context, db *gorm.DB) error) *gorm.DB {
	t.Helper()
	v, _ := seeded.LoadOrStore(name, &seededTemplate{})
	st := v.(*seededTemplate)
	st.once.Do(func() { st.name, st.err = buildSeeded(name, seed) })
	if st.err != nil {
		t.Fatalf("testdb: seed %s: %v", name, st.err)
	}
	return open(t, cloneFrom(t, st.name))
}

// buildSeeded clones the migrated template, seeds it and marks it a template.
// It lives as long as the cluster (a private cluster is removed with the test
// binary).
func buildSeeded(name string, seed func(ctx context.Context, db *gorm.DB) error) (string, error) {
	once.Do(func() { onceErr = buildTemplate() })
	if onceErr != nil {
		return "", onceErr
	}
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, strings.ToLower(name))
	tpl := fmt.Sprintf("tpls_%s_%d_%s", template[4:], os.Getpid(), clean)
	admin, err := openAdminDB()
	if err != nil {
		return "", err
	}
	defer admin.Close()
	if _, err := admin.Exec("DROP DATABASE IF EXISTS " + tpl); err != nil {
		return "", err
	}
	if err := createFrom(admin, tpl, template); err != nil {
		return "", err
	}
	ctx := context.Background()
	db, err := pg.Open(ctx, withDatabase(baseURL, tpl), 2)
	if err != nil {
		return "", err
	}
	serr := seed(ctx, db)
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
	if serr != nil {
		return "", serr
	}
	if _, err := admin.Exec("ALTER DATABASE " + tpl + " WITH is_template = true ALLOW_CONNECTIONS = false"); err != nil {
		return "", fmt.Errorf("mark seeded template: %w", err)
	}
	return tpl, nil
}

// cloneFrom creates a database for t from tpl and returns its URL; it is
// dropped when t passes and kept when it fails.
func cloneFrom(t testing.TB, tpl string) string {
	t.Helper()
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), counter.Add(1))
	admin := openAdmin(t)
	if err := createFrom(admin, name, tpl); err != nil {
		t.Fatalf("testdb: clone %s: %v", tpl, err)
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

// createFrom runs CREATE DATABASE name TEMPLATE tpl, retrying while another
// session still touches the template.
func createFrom(admin *sql.DB, name, tpl string) error {
	var err error
	for range 50 {
		if _, err = admin.Exec(fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, tpl)); err == nil ||
			!strings.Contains(err.Error(), "being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return err
}

func openAdminDB() (*sql.DB, error) {
	db, err := sql.Open("pgx", baseURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	return db, nil
}
