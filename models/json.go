package models

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"reflect"
)

// JSON is a value stored in a jsonb column.
type JSON[T any] struct{ V T }

// Value encodes the value as JSON; a nil slice or map is stored empty, not null.
func (j JSON[T]) Value() (driver.Value, error) {
	switch rv := reflect.ValueOf(j.V); {
	case rv.Kind() == reflect.Slice && rv.IsNil():
		return "[]", nil
	case rv.Kind() == reflect.Map && rv.IsNil():
		return "{}", nil
	}
	b, err := json.Marshal(j.V)
	if err != nil {
		return nil, fmt.Errorf("encode json column: %w", err)
	}
	return string(b), nil
}

// Scan decodes a jsonb column.
func (j *JSON[T]) Scan(v any) error {
	var b []byte
	switch x := v.(type) {
	case nil:
		var zero T
		j.V = zero
		return nil
	case []byte:
		b = x
	case string:
		b = []byte(x)
	default:
		return fmt.Errorf("scan json column: unexpected %T", v)
	}
	return json.Unmarshal(b, &j.V)
}

// MarshalJSON makes JSON[T] encode as its value.
func (j JSON[T]) MarshalJSON() ([]byte, error) { return json.Marshal(j.V) }
