// Package enginedb is the transport engine's SQL, beside the worker that
// runs it: claiming due work, recording attempts, and the sweeps that rescue
// expired leases and overdue receipts.
package enginedb

import "unifi/models/store"

// DB runs the engine's statements.
type DB struct {
	store *store.Store // the database, the clock and the connection secrets
}

// New returns the engine's SQL on st's database, with st's clock and
// connection secrets.
func New(st *store.Store) *DB { return &DB{store: st} }
