package testdb

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// Querier runs a query: a *sql.DB, or a *sql.Conn holding a session's
// settings and prepared statements.
type Querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// Gorm is a Querier that runs queries through db, which fills their "?"
// placeholders.
func Gorm(db *gorm.DB) Querier { return gormQuerier{db} }

type gormQuerier struct{ db *gorm.DB }

func (g gormQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return g.db.WithContext(ctx).Raw(query, args...).Rows()
}

// Plan is the EXPLAIN of query with args on q, one line per plan line, for a
// test that checks which indexes a statement is planned with.
func Plan(t testing.TB, q Querier, query string, args ...any) string {
	t.Helper()
	rows, err := q.QueryContext(context.Background(), "EXPLAIN "+query, args...)
	if err != nil {
		t.Fatalf("explain: %v", err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatalf("explain: %v", err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("explain: %v", err)
	}
	return strings.Join(plan, "\n")
}
