// Package store is the operations layer the UI, the API and the engine call.
package store

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/pg"
	"unifi/models/queue"
	"unifi/models/script"
)

// Store is the single operations layer: the UI, the API and the worker all
// call its methods.
type Store struct {
	db       *gorm.DB
	now      func() time.Time
	secrets  *secretBox
	scripts  *script.Engine
	accounts *account.Accounts // the demo seed's users, a bulk job's actor
	// changeConfigs is what a ticket edit needs of each process's
	// configuration, by configuration version (ticket_store.go).
	changeConfigs changeConfigs
	// editedTickets are the tickets it last wrote or read, from which an
	// edit is planned before it reaches the database (ticket_edit.go);
	// plannedAhead counts those edits.
	editedTickets editedTickets
	plannedAhead  struct{ sent, stale atomic.Int64 }
	// taker is the engine of this process, which takes the transactions a
	// ticket change can send at once (HandTo); nil: none runs here.
	takerMu sync.Mutex
	taker   queue.Taker
}

// StoreOpts configures a Store.
type StoreOpts struct {
	// NowFunc is the application clock, for what is only shown (an
	// envelope's time stamp, the bulk job dialog's "now"); tests inject one.
	// It never decides a lease, a due time or an expiry: those are the
	// database's now() (docs/engine.md, "Whose clock"). Defaults to time.Now.
	NowFunc func() time.Time
	// SecretKey seals connection secrets at rest (32 bytes). Defaults to a
	// fixed development key; the server always passes SECRET_KEY.
	SecretKey []byte
	// Scripts runs the message scripts; one engine per process, shared with
	// the worker pool (Store.Scripts). Defaults to an engine with the default
	// limits.
	Scripts *script.Engine
}

// NewStore returns a Store on db; accounts are the users it acts for.
func NewStore(db *gorm.DB, accounts *account.Accounts, opts *StoreOpts) *Store {
	s := &Store{db: db, now: time.Now, accounts: accounts}
	key := developmentSecretKey[:]
	if opts != nil && len(opts.SecretKey) >= 32 {
		key = opts.SecretKey
	}
	box, err := newSecretBox(key)
	if err != nil {
		panic(fmt.Sprintf("new store: %v", err)) // unreachable: the key length is checked above
	}
	s.secrets = box
	if opts != nil && opts.NowFunc != nil {
		s.now = opts.NowFunc
	}
	s.scripts = script.NewEngine(script.Limits{})
	if opts != nil && opts.Scripts != nil {
		s.scripts = opts.Scripts
	}
	return s
}

// HandTo makes t, the engine starting in this process, take the outbound
// transactions that ticket changes can send at once (queue.Taker).
func (s *Store) HandTo(t queue.Taker) {
	s.takerMu.Lock()
	s.taker = t
	s.takerMu.Unlock()
}

// StopHandingTo stops handing transactions to t (its engine is stopping),
// unless another engine took its place since.
func (s *Store) StopHandingTo(t queue.Taker) {
	s.takerMu.Lock()
	if s.taker == t {
		s.taker = nil
	}
	s.takerMu.Unlock()
}

// takerNow is the engine that takes what a change makes sendable, or nil.
func (s *Store) takerNow() queue.Taker {
	s.takerMu.Lock()
	defer s.takerMu.Unlock()
	return s.taker
}

// DB returns the handle for ctx; only packages that build on the Store use it.
func (s *Store) DB(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// Scripts returns the message script engine (compiled programs, pooled runtimes).
func (s *Store) Scripts() *script.Engine { return s.scripts }

// Now is the application clock: for display only, never for leases or due
// times (docs/engine.md, "Whose clock").
func (s *Store) Now() time.Time { return s.now() }

// Ping checks that the database answers and is fully migrated.
func (s *Store) Ping(ctx context.Context) error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	if err := sqlDB.PingContext(ctx); err != nil {
		return err
	}
	pending, err := pg.MigrationsPending(ctx, s.db)
	if err != nil {
		return err
	}
	if pending {
		return errMigrationsPending
	}
	return nil
}

var errMigrationsPending = &models.ConflictError{Reason: "database migrations are pending"}
