package designer

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"unifi/models"
	"unifi/models/pg"
)

// StaleVersionError refuses an edit made against an older version of a
// record: someone saved it meanwhile (HTTP 409). Changes says what they
// changed, with the value now stored (theirs) and the value of the refused
// edit (yours), so the person can decide what to keep.
type StaleVersionError struct {
	RecordType string
	RecordID   int64
	Label      string
	Base       int // the version the edit was based on
	Current    int // the version stored now (0: the record was deleted)
	Changes    []FieldChange
}

// FieldChange is one column changed meanwhile.
type FieldChange struct {
	Field  string // the column, as in the activity log
	Theirs string // stored now
	Yours  string // in the refused edit
}

func (e *StaleVersionError) Error() string {
	what := e.RecordType
	if e.Label != "" {
		what += " " + e.Label
	}
	if e.Current == 0 {
		return fmt.Sprintf("The %s was deleted by someone else while you were editing it.", what)
	}
	fields := make([]string, len(e.Changes))
	for i, c := range e.Changes {
		fields[i] = c.Field
	}
	msg := fmt.Sprintf("Someone else saved the %s while you were editing it (your edit was based on version %d; it is now version %d).",
		what, e.Base, e.Current)
	if len(fields) > 0 {
		msg += " They changed: " + strings.Join(fields, ", ") + "."
	}
	return msg + " Nothing of your edit was saved; open it again to see their values."
}

// Is makes errors.Is(err, models.ErrConflict) true.
func (e *StaleVersionError) Is(target error) bool { return target == models.ErrConflict }

// recordKey reads a record's ID and Version fields.
func recordKey(rec any) (id int64, version int) {
	v := structValue(rec)
	if f := v.FieldByName("ID"); f.IsValid() {
		id = f.Int()
	}
	if f := v.FieldByName("Version"); f.IsValid() {
		version = int(f.Int())
	}
	return id, version
}

// setVersion sets a record's Version field (a record without one is not
// versioned: every edit of it is taken as based on version 0).
func setVersion(rec any, version int) {
	if f := structValue(rec).FieldByName("Version"); f.IsValid() && f.CanSet() {
		f.SetInt(int64(version))
	}
}

// Create inserts rec (at version 1) and writes its activity entry, in tx
// (the caller's database transaction, so the record and its audit commit
// together). actor says who, when (the entry's time) and from where.
func Create[T any](tx *gorm.DB, actor models.Actor, rec *T) error {
	typ, label := describe(tx, rec)
	if _, v := recordKey(rec); v == 0 {
		setVersion(rec, 1)
	}
	if err := tx.Create(rec).Error; err != nil {
		return fmt.Errorf("create %s %q: %w", typ, label, err)
	}
	id, _ := recordKey(rec)
	return pg.LogActivity(tx, actor, "create "+typ, typ, id, label, nil, Snapshot(rec))
}

// Update saves rec over the stored record with rec's ID, provided the
// stored version is still base (the version the edit was based on);
// otherwise it returns a *StaleVersionError naming what changed meanwhile.
// Only the columns that differ are written, the version goes up by one, and
// the activity entry holds the before and after of each changed column. An
// edit that changes nothing writes nothing. rec's Version is set to the
// saved version.
func Update[T any](tx *gorm.DB, actor models.Actor, base int, rec *T) error {
	typ, label := describe(tx, rec)
	id, _ := recordKey(rec)
	cur := new(T)
	if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(cur, id).Error; err != nil {
		if !errors.Is(err, gorm.ErrRecordNotFound) {
			return fmt.Errorf("update %s %d: %w", typ, id, err)
		}
		return &StaleVersionError{RecordType: typ, RecordID: id, Label: label, Base: base}
	}
	if _, v := recordKey(cur); v != base {
		return stale(tx, typ, label, id, base, cur, rec)
	}
	setVersion(rec, base)
	before, after := Diff(cur, rec)
	if before == nil {
		return nil
	}
	q := tx.Model(rec)
	if hasColumn(rec, "version") {
		setVersion(rec, base+1)
		before["version"], after["version"] = base, base+1
		q = q.Where("version = ?", base)
	}
	cols := make([]string, 0, len(after)+1)
	for c := range after {
		cols = append(cols, c)
	}
	sort.Strings(cols)
	if hasColumn(rec, "updated_at") {
		cols = append(cols, "updated_at")
	}
	res := q.Select(cols).Updates(rec)
	if res.Error != nil {
		return fmt.Errorf("update %s %q: %w", typ, label, res.Error)
	}
	if res.RowsAffected == 0 { // unreachable while the row is locked; kept as the guard
		return stale(tx, typ, label, id, base, cur, rec)
	}
	return pg.LogActivity(tx, actor, "update "+typ, typ, id, label, before, after)
}

// Delete removes the record with rec's ID, provided the stored version is
// still base, and writes its activity entry (the whole record as before).
func Delete[T any](tx *gorm.DB, actor models.Actor, base int, rec *T) error {
	typ, label := describe(tx, rec)
	id, _ := recordKey(rec)
	cur := new(T)
	if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(cur, id).Error; err != nil {
		return pg.NotFound(err, fmt.Sprintf("delete %s %d", typ, id))
	}
	if _, v := recordKey(cur); v != base {
		return stale(tx, typ, label, id, base, cur, rec)
	}
	if _, l := describe(tx, cur); l != "" {
		label = l
	}
	if err := tx.Delete(cur).Error; err != nil {
		return fmt.Errorf("delete %s %q: %w", typ, label, err)
	}
	return pg.LogActivity(tx, actor, "delete "+typ, typ, id, label, Snapshot(cur), nil)
}

// hasColumn reports whether rec's type has the column.
func hasColumn(rec any, name string) bool {
	s, err := schemaOf(rec)
	return err == nil && s.LookUpField(name) != nil
}

// stale builds the StaleVersionError of an edit based on version base of a
// record now at cur: the columns the activity log says were changed after
// base (every column that differs from the edit when the log does not
// know: a change made outside the Designer), with the stored value and the
// edit's.
func stale[T any](tx *gorm.DB, typ, label string, id int64, base int, cur, yours *T) error {
	_, curVersion := recordKey(cur)
	e := &StaleVersionError{RecordType: typ, RecordID: id, Label: label, Base: base, Current: curVersion}
	var entries []models.ActivityLog
	if err := tx.Where("record_type = ? AND record_id = ? AND (after->>'version')::bigint > ?::bigint", typ, id, int64(base)).
		Order("id").Find(&entries).Error; err != nil {
		return fmt.Errorf("read changes of %s %d: %w", typ, id, err)
	}
	changed := map[string]bool{}
	for _, en := range entries {
		for k := range en.After.V {
			changed[k] = true
		}
	}
	delete(changed, "version")
	secret := map[string]bool{}
	cv, yv := structValue(cur), structValue(yours)
	for _, c := range columns(cv.Type()) {
		secret[c.name] = c.secret
		if len(entries) == 0 && c.name != "version" &&
			!reflect.DeepEqual(plain(cv.FieldByIndex(c.index)), plain(yv.FieldByIndex(c.index))) {
			changed[c.name] = true
		}
	}
	for _, c := range columns(cv.Type()) {
		if !changed[c.name] {
			continue
		}
		fc := FieldChange{Field: c.name, Theirs: display(plain(cv.FieldByIndex(c.index))),
			Yours: display(plain(yv.FieldByIndex(c.index)))}
		if secret[c.name] {
			fc.Theirs, fc.Yours = SecretChanged, "(not shown)"
		}
		e.Changes = append(e.Changes, fc)
	}
	return e
}
