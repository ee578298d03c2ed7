package handlers

import (
	"sync"

	"github.com/gorilla/securecookie"
)

// sessionSerializer is the session cookie's serializer: gob, as securecookie
// does by default, remembering what it has decoded by the bytes it decoded.
//
// A browser sends the same cookie with every request, and decoding gob
// builds a fresh decoder, type compilation included, each time: 5–10% of a
// page view's CPU. securecookie calls Deserialize only once the cookie's MAC
// and age have been checked, so only genuine values are remembered, and equal
// bytes always decode to equal values.
type sessionSerializer struct {
	mu      sync.Mutex
	decoded map[string]map[any]any
}

// sessionSerializerMax bounds what sessionSerializer keeps: when full it
// starts again empty.
const sessionSerializerMax = 10000

func newSessionSerializer() *sessionSerializer {
	return &sessionSerializer{decoded: map[string]map[any]any{}}
}

// Serialize encodes src with gob.
func (s *sessionSerializer) Serialize(src any) ([]byte, error) {
	return securecookie.GobEncoder{}.Serialize(src)
}

// Deserialize decodes src into dst, a session's values, from memory when
// these bytes were decoded before.
func (s *sessionSerializer) Deserialize(src []byte, dst any) error {
	values, ok := dst.(*map[any]any)
	if !ok || *values == nil {
		return securecookie.GobEncoder{}.Deserialize(src, dst)
	}
	s.mu.Lock()
	known, hit := s.decoded[string(src)]
	s.mu.Unlock()
	if !hit {
		known = map[any]any{}
		if err := (securecookie.GobEncoder{}).Deserialize(src, &known); err != nil {
			return err
		}
		s.mu.Lock()
		if len(s.decoded) >= sessionSerializerMax {
			clear(s.decoded)
		}
		s.decoded[string(src)] = known
		s.mu.Unlock()
	}
	for k, v := range known {
		if list, ok := v.([]any); ok { // the flashes: the session may change its own copy
			v = append([]any(nil), list...)
		}
		(*values)[k] = v
	}
	return nil
}
