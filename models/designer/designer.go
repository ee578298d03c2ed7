package designer

import (
	"context"

	"gorm.io/gorm"

	"unifi/models/store"
)

// Designer is the configuration operations the Designer's pages call. Each
// operation runs in one database transaction: the record, its audit entry
// and the configuration version commit together or not at all.
type Designer struct {
	store *store.Store
	opts  Opts
}

// Opts configures a Designer.
type Opts struct {
	// AllowLinkLocal lets a connection's endpoint resolve to a link-local
	// or cloud metadata address (169.254.0.0/16, fd00:ec2::254), refused
	// by default (config: ALLOW_LINK_LOCAL_ENDPOINTS).
	AllowLinkLocal bool
}

// New returns a Designer on st.
func New(st *store.Store, o *Opts) *Designer {
	d := &Designer{store: st}
	if o != nil {
		d.opts = *o
	}
	return d
}

// Tx runs fn in one database transaction: use it with Create, Update and
// Delete for a change made of several records.
func (d *Designer) Tx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return d.store.DB(ctx).Transaction(fn)
}
