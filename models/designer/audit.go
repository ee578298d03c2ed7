package designer

import (
	"database/sql/driver"
	"fmt"
	"reflect"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"

	"unifi/models"
)

// Secret values never reach the activity log or a conflict page: a field
// tagged `secret:"true"` is shown as one of these words instead.
const (
	SecretSet     = "set"     // a created record has a value
	SecretChanged = "changed" // an update changed it
	SecretEmpty   = ""        // no value
)

// skipped are the columns an audit entry leaves out: the key is the entry's
// record id, and the times are the entry's own.
var skipped = map[string]bool{"id": true, "created_at": true, "updated_at": true}

// column is one audited column of a record type.
type column struct {
	name   string // the database column: the key in the activity log
	index  []int
	secret bool
}

var (
	columnCache sync.Map // reflect.Type -> []column
	schemas     sync.Map // GORM's parse cache
)

// schemaOf is GORM's schema of rec's type.
func schemaOf(rec any) (*schema.Schema, error) {
	return schema.Parse(rec, &schemas, schema.NamingStrategy{})
}

// columns lists the audited columns of struct type t, named as GORM names
// them (so the activity log speaks the database's words).
func columns(t reflect.Type) []column {
	if c, ok := columnCache.Load(t); ok {
		return c.([]column)
	}
	s, err := schemaOf(reflect.New(t).Interface())
	if err != nil {
		panic(fmt.Sprintf("designer: audit columns of %s: %v", t, err)) // a programming error: not a GORM model
	}
	var out []column
	for _, f := range s.Fields {
		if f.DBName == "" || skipped[f.DBName] {
			continue
		}
		out = append(out, column{name: f.DBName, index: f.StructField.Index, secret: f.Tag.Get("secret") == "true"})
	}
	columnCache.Store(t, out)
	return out
}

// plain turns a field's value into what the activity log stores: pointers
// followed (nil stays nil), times as RFC 3339, JSON columns as their JSON.
func plain(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case driver.Valuer:
		dv, err := x.Value()
		if err != nil {
			return fmt.Sprintf("(unreadable: %v)", err)
		}
		if b, ok := dv.([]byte); ok {
			return string(b)
		}
		return dv
	}
	switch v.Kind() {
	case reflect.String:
		return v.String() // typed strings (states, kinds) as plain text
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	}
	return v.Interface()
}

func structValue(rec any) reflect.Value {
	v := reflect.ValueOf(rec)
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		panic(fmt.Sprintf("designer: %T is not a record", rec)) // a programming error
	}
	return v
}

// Snapshot is every audited column of rec: the activity log's "after" of a
// create and "before" of a delete. A secret shows as SecretSet when it has
// a value.
func Snapshot(rec any) map[string]any {
	v := structValue(rec)
	out := map[string]any{}
	for _, c := range columns(v.Type()) {
		val := plain(v.FieldByIndex(c.index))
		if c.secret {
			if val == "" || val == nil {
				val = SecretEmpty
			} else {
				val = SecretSet
			}
		}
		out[c.name] = val
	}
	return out
}

// Diff compares two versions of one record, column by column, and returns
// the before and after of each column that differs (nil maps when none
// does). A secret column that differs is "changed" on both sides: its value
// never leaves the record. before and after must be the same type.
func Diff(before, after any) (b, a map[string]any) {
	bv, av := structValue(before), structValue(after)
	if bv.Type() != av.Type() {
		panic(fmt.Sprintf("designer: diff of %s against %s", bv.Type(), av.Type())) // a programming error
	}
	for _, c := range columns(bv.Type()) {
		x, y := plain(bv.FieldByIndex(c.index)), plain(av.FieldByIndex(c.index))
		if reflect.DeepEqual(x, y) {
			continue
		}
		if b == nil {
			b, a = map[string]any{}, map[string]any{}
		}
		if c.secret {
			x, y = SecretChanged, SecretChanged
		}
		b[c.name], a[c.name] = x, y
	}
	return b, a
}

// display is a value as a person reads it on the conflict page.
func display(v any) string {
	switch x := v.(type) {
	case nil:
		return "(none)"
	case string:
		if x == "" {
			return "(empty)"
		}
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}

// Labeled is a configuration record that names itself in the activity log.
// The records of package models are named by describe; a new record type
// implements this.
type Labeled interface {
	AuditRecord() (recordType, label string)
}

// describe names a record for the activity log: its type ("integration")
// and a label a person recognises (its name).
func describe(tx *gorm.DB, rec any) (string, string) {
	switch r := rec.(type) {
	case Labeled:
		return r.AuditRecord()
	case *models.Integration:
		return "integration", r.Name
	case *models.Connection:
		return "connection", r.Name
	case *models.Message:
		return "message", r.Name
	case *models.Field:
		return "field", r.TicketField + " <-> " + r.Property
	case *models.ResponseAction:
		return "response_action", fmt.Sprintf("HTTP %d", r.StatusCode)
	case *models.Process:
		return "process", r.Name
	}
	if err := tx.Statement.Parse(rec); err == nil && tx.Statement.Schema != nil {
		return tx.Statement.Schema.Table, ""
	}
	return fmt.Sprintf("%T", rec), ""
}
