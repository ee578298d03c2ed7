package models

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Sentinel errors. The HTTP layer maps them to statuses in one place.
var (
	ErrNotFound           = errors.New("not found")
	ErrForbidden          = errors.New("forbidden")
	ErrConflict           = errors.New("conflict")
	ErrInvalidTransition  = errors.New("invalid transition")
	ErrInvalidCredentials = errors.New("invalid credentials")
)

// ForbiddenError says why a user may not do something (HTTP 403).
type ForbiddenError struct{ Reason string }

func (e *ForbiddenError) Error() string { return e.Reason }

// Is makes errors.Is(err, ErrForbidden) true.
func (e *ForbiddenError) Is(target error) bool { return target == ErrForbidden }

// ConflictError says why the record's state does not allow something, usually
// because it changed meanwhile (HTTP 409).
type ConflictError struct{ Reason string }

func (e *ConflictError) Error() string { return e.Reason }

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// ValidationError holds per-field problems in plain words (HTTP 422).
type ValidationError struct{ Fields map[string]string }

// Add records a problem with a field; the first one per field wins.
func (v *ValidationError) Add(field, msg string) {
	if v.Fields == nil {
		v.Fields = map[string]string{}
	}
	if _, ok := v.Fields[field]; !ok {
		v.Fields[field] = msg
	}
}

// Err returns v when it holds a problem, or nil.
func (v *ValidationError) Err() error {
	if v == nil || len(v.Fields) == 0 {
		return nil
	}
	return v
}

func (v *ValidationError) Error() string {
	return "invalid input: " + v.join(func(k, msg string) string { return fmt.Sprintf("%s: %s", k, msg) })
}

// join writes each problem with part, in field order, separated by "; ".
func (v *ValidationError) join(part func(field, msg string) string) string {
	keys := make([]string, 0, len(v.Fields))
	for k := range v.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = part(k, v.Fields[k])
	}
	return strings.Join(parts, "; ")
}

// TextProblem says, in plain words, why s cannot be stored in a text column
// (PostgreSQL refuses NUL bytes and invalid UTF-8), or returns "".
func TextProblem(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "This contains bytes that are not valid UTF-8 text; remove them and try again."
	case strings.ContainsRune(s, 0):
		return "This contains a NUL character, which cannot be stored; remove it and try again."
	}
	return ""
}
