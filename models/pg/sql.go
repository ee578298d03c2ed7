package pg

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	"unifi/models"
)

// StateSQL writes states as an SQL list of literals ("5, 9"). Queries on
// transactions by state name it this way, not as parameters, so that the
// planner can tell a partial index on those states applies whatever the
// plan cache does with a prepared statement (migration 00050).
func StateSQL(states ...models.TransportState) string {
	parts := make([]string, len(states))
	for i, st := range states {
		parts[i] = strconv.Itoa(int(st))
	}
	return strings.Join(parts, ", ")
}

// Int64s is a bigint[] parameter (GORM would otherwise expand a slice into a list).
type Int64s []int64

// Value encodes the array literal.
func (a Int64s) Value() (driver.Value, error) {
	parts := make([]string, len(a))
	for i, v := range a {
		parts[i] = fmt.Sprint(v)
	}
	return "{" + strings.Join(parts, ",") + "}", nil
}

// IsUniqueViolation reports whether err is PostgreSQL's unique_violation (SQLSTATE 23505).
func IsUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 23505")
}
