package inbound

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// The data-access rule (docs/architecture.md): the inbound API is a hot path,
// so every statement of this package is a named constant with $n
// placeholders (in models/inbound/inboundsql), run on the connection directly — a GORM transaction's
// connection (tx.Statement.ConnPool: database/sql over pgx's stdlib driver)
// or, in a group, the pgx connection itself (inbound_batch.go). The texts are
// the ones GORM used to send, so the plans are the same.

// The write of one message (inboundCall.write) is one statement of writable
// CTEs whose optional parts depend on what the message changes; each part is
// a constant numbered from $1, renumbered after the parts before it (sqlParts).

// conn is the connection a GORM transaction (or handle) runs on, and its
// context: the statements above run on it directly.
func conn(tx *gorm.DB) (context.Context, gorm.ConnPool) {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return ctx, tx.Statement.ConnPool
}

// sqlParts assembles a statement from constant parts, each numbered from $1,
// renumbering each part's placeholders after the arguments before it.
type sqlParts struct {
	sb   strings.Builder
	args []any
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// add appends part, whose placeholders $1..$n take args.
func (p *sqlParts) add(part string, args ...any) {
	off := len(p.args)
	if off == 0 {
		p.sb.WriteString(part)
	} else {
		p.sb.WriteString(placeholder.ReplaceAllStringFunc(part, func(m string) string {
			n, _ := strconv.Atoi(m[1:])
			return "$" + strconv.Itoa(n+off)
		}))
	}
	p.args = append(p.args, args...)
}
