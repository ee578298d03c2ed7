package models

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"gorm.io/gorm"
)

// Store is the single operations layer: the UI, the API and the worker all
// call its methods. Beyond the database handle it holds only the inbound
// API's machinery (inbound_cache.go, inbound_batch.go): a configuration
// snapshot checked against the database on every use, and the queue of
// update messages waiting to be applied together.
type Store struct {
	db           *gorm.DB
	now          func() time.Time
	passwordCost int
	secrets      *secretBox
	inbound      *inboundState // nil: every inbound message takes the one-message path (InboundGroupsOff)
}

// StoreOpts configures a Store.
type StoreOpts struct {
	// NowFunc is the clock; tests inject one. Defaults to time.Now.
	NowFunc func() time.Time
	// PasswordCost is the bcrypt cost of new password hashes; tests lower it.
	// Defaults to bcrypt.DefaultCost.
	PasswordCost int
	// SecretKey seals connection secrets at rest (32 bytes). Defaults to a
	// fixed development key; the server always passes SECRET_KEY.
	SecretKey []byte
	// InboundBatchMax is the most inbound update messages applied together in
	// one database transaction (default 64).
	InboundBatchMax int
	// InboundGroupsOff applies every inbound message on its own (the
	// one-message path), as before group commit.
	InboundGroupsOff bool
}

// NewStore returns a Store on db.
func NewStore(db *gorm.DB, opts *StoreOpts) *Store {
	s := &Store{db: db, now: time.Now, passwordCost: bcrypt.DefaultCost}
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
	if opts != nil && opts.PasswordCost != 0 {
		s.passwordCost = opts.PasswordCost
	}
	if opts == nil || !opts.InboundGroupsOff {
		s.inbound = &inboundState{batchMax: defaultInboundBatchMax, lockTimeout: inboundLockTimeout}
		if opts != nil && opts.InboundBatchMax > 0 {
			s.inbound.batchMax = opts.InboundBatchMax
		}
	}
	return s
}

// DB returns the handle for ctx; only packages that build on the Store use it.
func (s *Store) DB(ctx context.Context) *gorm.DB { return s.db.WithContext(ctx) }

// Now is the Store's clock.
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
	pending, err := MigrationsPending(ctx, s.db)
	if err != nil {
		return err
	}
	if pending {
		return errMigrationsPending
	}
	return nil
}

var errMigrationsPending = &ConflictError{Reason: "database migrations are pending"}
