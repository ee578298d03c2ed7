package designer

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"unifi/models/pg"
)

// ConfigChannel is notified, when a configuration change commits, with the
// new configuration version and the table ("42 integrations"), by the
// triggers of migration 00170.
const ConfigChannel = "unifi_config"

// WatchOpts configures Watch.
type WatchOpts struct {
	// OnChange are called on every notification and after every
	// (re)connection (a change may have been missed while not listening).
	// They run on Watch's goroutine: drop a cache, do not reload it.
	OnChange []func(ctx context.Context)
	// OnError, if set, is told why the listening connection ended; the
	// caches then still read the database at their fallback interval.
	OnError func(ctx context.Context, err error)
}

// Watch LISTENs on ConfigChannel through its own connection to url
// (pg.Listen: it reconnects with a back-off) until ctx ends. The caller runs
// it on a goroutine and joins it.
func Watch(ctx context.Context, url string, o WatchOpts) {
	changed := func(ctx context.Context) {
		for _, f := range o.OnChange {
			f(ctx)
		}
	}
	pg.Listen(ctx, url, pg.ListenOpts{
		Channels:  map[string]func(context.Context, *pgconn.Notification){ConfigChannel: func(ctx context.Context, _ *pgconn.Notification) { changed(ctx) }},
		OnConnect: changed,
		OnError:   o.OnError,
	})
}

// ConfigVersion is the configuration version now: it goes up by one with
// every statement that changes configuration.
func ConfigVersion(ctx context.Context, db *gorm.DB) (int64, error) {
	var v int64
	if err := db.WithContext(ctx).Raw(`SELECT version FROM config_version`).Scan(&v).Error; err != nil {
		return 0, fmt.Errorf("read configuration version: %w", err)
	}
	return v, nil
}
