// Package inbound is the inbound API's service: it authenticates callers and
// applies the messages and receipts they send, one by one or in groups
// committed together.
package inbound

import (
	"time"

	"gorm.io/gorm"

	"unifi/models/account"
)

// Service is the inbound API. Beyond the database handle it holds only the
// inbound API's machinery (inbound_cache.go, inbound_batch.go): a
// configuration snapshot checked against the database on every use, and the
// queue of update messages waiting to be applied together.
type Service struct {
	db       *gorm.DB
	now      func() time.Time
	accounts *account.Accounts // callers' passwords and tokens
	inbound  *inboundState     // nil: every inbound message takes the one-message path (GroupsOff)
	page     *Page             // Page.Lookups: FindBond writes the page's held Creates first
	// NotingLookups: FindBond tells each reference it is asked for.
	noteLookup func(reference string)
}

// Opts configures a Service.
type Opts struct {
	// NowFunc is the clock; tests inject one. Defaults to time.Now.
	NowFunc func() time.Time
	// BatchMax is the most inbound update messages applied together in
	// one database transaction (default 64).
	BatchMax int
	// GroupsOff applies every inbound message on its own (the
	// one-message path), as before group commit.
	GroupsOff bool
}

// NewService returns the inbound API on db; accounts authenticate its callers.
func NewService(db *gorm.DB, accounts *account.Accounts, opts *Opts) *Service {
	s := &Service{db: db, now: time.Now, accounts: accounts}
	if opts != nil && opts.NowFunc != nil {
		s.now = opts.NowFunc
	}
	if opts == nil || !opts.GroupsOff {
		s.inbound = &inboundState{batchMax: defaultInboundBatchMax, lockTimeout: inboundLockTimeout}
		if opts != nil && opts.BatchMax > 0 {
			s.inbound.batchMax = opts.BatchMax
		}
	}
	return s
}

// InTx returns the service working inside the database transaction tx:
// every message it receives is applied in a savepoint of tx and commits with
// it, so a caller commits messages together with its own writes (the
// poller's high-water mark, worker/poll). Its messages take the one-message
// path (no group commit: the group commits on its own connection).
func (s *Service) InTx(tx *gorm.DB) *Service {
	c := *s
	c.db, c.inbound = tx, nil
	return &c
}

// pool is the connection (or, inside InTx, the transaction) statements run on.
func (s *Service) pool() gorm.ConnPool { return s.db.Statement.ConnPool }
