package sim

import (
	"slices"
	"sync"
	"time"
)

// Store keeps a simulator's records in memory, in creation order, under one
// lock. Records are read and changed only inside its callbacks, so a view
// built there is consistent and nothing escapes the lock half-written.
type Store[T any] struct {
	mu    sync.RWMutex
	byKey map[string]*T
	order []*T
	now   func() time.Time
	last  time.Time
}

// NewStore returns an empty store; now is its clock [time.Now].
func NewStore[T any](now func() time.Time) *Store[T] {
	if now == nil {
		now = time.Now
	}
	return &Store[T]{byKey: map[string]*T{}, now: now}
}

// Create runs make under the write lock with the number the new record gets
// (1, 2, ...) and the time of the change, and stores the record under the
// keys make returns (an id and, say, a key or number).
func (s *Store[T]) Create(make func(n int, at time.Time) (*T, []string, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, keys, err := make(len(s.order)+1, s.tick())
	if err != nil {
		return err
	}
	s.order = append(s.order, rec)
	for _, k := range keys {
		s.byKey[k] = rec
	}
	return nil
}

// Update runs change on the record under key, under the write lock, with
// the time of the change; found is false when there is no such record.
func (s *Store[T]) Update(key string, change func(rec *T, at time.Time) error) (found bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, ok := s.byKey[key]
	if !ok {
		return false, nil
	}
	return true, change(rec, s.tick())
}

// tick is the time of a change: the clock, but never earlier than the
// previous change, so "updated" never runs backwards. With mu held.
func (s *Store[T]) tick() time.Time {
	t := s.now().UTC()
	if t.Before(s.last) {
		t = s.last
	}
	s.last = t
	return t
}

// Get runs read on the record under key under the read lock.
func (s *Store[T]) Get(key string, read func(rec *T)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rec, ok := s.byKey[key]
	if ok {
		read(rec)
	}
	return ok
}

// Query is one filtered, sorted, paged read.
type Query[T any] struct {
	Match  func(*T) bool     // nil: every record
	Order  func(a, b *T) int // nil: creation order
	Offset int               // records skipped
	Limit  int               // records returned at most (<= 0: all)
	Read   func(*T)          // called for each record of the page, in order
}

// Select runs q under the read lock and returns how many records match in
// all (the page is what q.Read saw).
func (s *Store[T]) Select(q Query[T]) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var hits []*T
	if q.Match == nil {
		hits = slices.Clone(s.order)
	} else {
		hits = make([]*T, 0, len(s.order))
		for _, r := range s.order {
			if q.Match(r) {
				hits = append(hits, r)
			}
		}
	}
	if q.Order != nil {
		slices.SortStableFunc(hits, q.Order)
	}
	lo := min(max(q.Offset, 0), len(hits))
	hi := len(hits)
	if q.Limit > 0 {
		hi = min(lo+q.Limit, hi)
	}
	for _, r := range hits[lo:hi] {
		q.Read(r)
	}
	return len(hits)
}

// Len is the number of records.
func (s *Store[T]) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.order)
}

// Reset forgets every record.
func (s *Store[T]) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey, s.order = map[string]*T{}, nil
}

// Clock is a settable clock for a Store (tests put records at chosen times).
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
