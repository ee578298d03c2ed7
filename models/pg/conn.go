package pg

import (
	"database/sql"

	"gorm.io/gorm"
)

// Exec runs a statement with $n placeholders on db's connection: inside a
// database transaction its connection (tx.Statement.ConnPool), otherwise the
// pool; pgx's stdlib driver encodes the arguments (Go slices as arrays), and
// GORM's statement builder is not involved. It returns the rows affected.
func Exec(db *gorm.DB, query string, args ...any) (int64, error) {
	res, err := db.Statement.ConnPool.ExecContext(db.Statement.Context, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Query runs a query with $n placeholders on db's connection, as Exec does,
// and calls scan for every row.
func Query(db *gorm.DB, query string, scan func(rows *sql.Rows) error, args ...any) error {
	rows, err := db.Statement.ConnPool.QueryContext(db.Statement.Context, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
