// Package pg is the database plumbing the stores share: opening and migrating
// the database, the pgx read batch, array parameters, the transaction column
// list and scan, and a few shared writes and helpers.
package pg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"unifi/migrations"
	"unifi/models"
)

// Open connects to PostgreSQL through GORM and checks the connection.
func Open(ctx context.Context, dsn string, maxConns int) (*gorm.DB, error) {
	return OpenWith(ctx, dsn, maxConns, OpenOpts{})
}

// OpenOpts are Open's seldom needed options.
type OpenOpts struct {
	// Tracer sees every statement sent, through GORM or in a read batch (the
	// page benchmark counts them with it). It may also be a pgx.BatchTracer.
	Tracer pgx.QueryTracer
}

// OpenWith is Open with options.
func OpenWith(ctx context.Context, dsn string, maxConns int, o OpenOpts) (*gorm.DB, error) {
	cfg := postgres.Config{DSN: dsn}
	cfg.OptionOpenDB = []stdlib.OptionOpenDB{stdlib.OptionBeforeConnect(func(_ context.Context, c *pgx.ConnConfig) error {
		// JIT off on every connection (migration 00032 sets it on the
		// database, which a clone made with CREATE DATABASE ... TEMPLATE
		// does not copy): the app's queries are short and indexed. c is a
		// copy, but its map is shared by every connection: a map of its own.
		params := make(map[string]string, len(c.RuntimeParams)+1)
		maps.Copy(params, c.RuntimeParams)
		params["jit"] = "off"
		c.RuntimeParams = params
		if o.Tracer != nil {
			c.Tracer = o.Tracer
		}
		return nil
	})}
	db, err := gorm.Open(postgres.New(cfg), &gorm.Config{
		Logger:                 logger.Default.LogMode(logger.Silent),
		SkipDefaultTransaction: true,
		PrepareStmt:            false,
	})
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if maxConns <= 0 {
		maxConns = 20
	}
	sqlDB.SetMaxOpenConns(maxConns)
	sqlDB.SetMaxIdleConns(maxConns)
	sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sqlDB.PingContext(pingCtx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("reach database: %w", err)
	}
	return db, nil
}

func migrationProvider(db *gorm.DB) (*goose.Provider, *sql.DB, error) {
	sqlDB, err := db.DB()
	if err != nil {
		return nil, nil, err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, migrations.FS)
	if err != nil {
		return nil, nil, fmt.Errorf("load migrations: %w", err)
	}
	return p, sqlDB, nil
}

// Migrate applies every pending migration and returns how many it applied.
func Migrate(ctx context.Context, db *gorm.DB) (int, error) {
	p, _, err := migrationProvider(db)
	if err != nil {
		return 0, err
	}
	res, err := p.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("apply migrations: %w", err)
	}
	return len(res), nil
}

// MigrationsPending reports whether the database lacks any migration.
func MigrationsPending(ctx context.Context, db *gorm.DB) (bool, error) {
	p, _, err := migrationProvider(db)
	if err != nil {
		return false, err
	}
	ok, err := p.HasPending(ctx)
	if err != nil {
		return false, fmt.Errorf("check migrations: %w", err)
	}
	return ok, nil
}

// NotFound turns GORM's not-found into ErrNotFound, wrapping with what was looked for.
func NotFound(err error, what string) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return fmt.Errorf("%s: %w", what, models.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, err)
}
