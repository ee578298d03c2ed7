package testdb_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"

	"unifi/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// TestJITOff: a test database is a clone, which does not carry the database
// level jit = off of migration 00032; every connection the app opens still
// runs with JIT off, as production does.
func TestJITOff(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	sqlDB, err := db.DB()
	require.NoError(t, err)
	// Several connections, opened at once (under -race this also checks
	// that opening them shares nothing unsafely).
	ctx := context.Background()
	conns := make([]*sql.Conn, 4)
	var g errgroup.Group
	for i := range conns {
		g.Go(func() error {
			var err error
			conns[i], err = sqlDB.Conn(ctx)
			return err
		})
	}
	require.NoError(t, g.Wait())
	for _, c := range conns {
		var jit string
		require.NoError(t, c.QueryRowContext(ctx, "SHOW jit").Scan(&jit))
		require.Equal(t, "off", jit)
		require.NoError(t, c.Close())
	}
}

// TestSeeded: a seeded database has the seed, and each test gets its own copy.
func TestSeeded(t *testing.T) {
	t.Parallel()
	for range 2 {
		db := testdb.NewSeeded(t, "one row", func(ctx context.Context, db *gorm.DB) error {
			return db.WithContext(ctx).Exec("CREATE TABLE seeded (n int); INSERT INTO seeded VALUES (1)").Error
		})
		var n int64
		require.NoError(t, db.Raw("SELECT count(*) FROM seeded").Scan(&n).Error)
		require.Equal(t, int64(1), n)
		require.NoError(t, db.Exec("INSERT INTO seeded VALUES (2)").Error)
	}
}
