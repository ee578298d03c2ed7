package pg

import (
	"context"
	"regexp"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// Conn is the connection tx runs on and its context: inside a GORM database
// transaction its connection (tx.Statement.ConnPool: database/sql over pgx's
// stdlib driver), otherwise the pool. Named SQL constants run on it directly.
func Conn(tx *gorm.DB) (context.Context, gorm.ConnPool) {
	ctx := tx.Statement.Context
	if ctx == nil {
		ctx = context.Background()
	}
	return ctx, tx.Statement.ConnPool
}

// Parts assembles one statement from constant parts, each written with its
// own placeholders $1..$n: a statement of writable CTEs whose optional parts
// depend on the data stays one round trip while every part stays a constant.
type Parts struct {
	sb   strings.Builder
	args []any
}

var placeholder = regexp.MustCompile(`\$(\d+)`)

// Add appends part, whose placeholders $1..$n take args, renumbered after
// the arguments of the parts before it.
func (p *Parts) Add(part string, args ...any) {
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

// SQL is the statement assembled so far.
func (p *Parts) SQL() string { return p.sb.String() }

// Args are its arguments, in placeholder order.
func (p *Parts) Args() []any { return p.args }
