// Package poll runs pollers (docs/pollers.md): for a remote system that
// cannot push, each poller asks it for what changed on a schedule, and its
// poll processor turns the answers into inbound messages, which take the
// ordinary inbound path (models/inbound). Exactly one server process runs a
// given poller at a time (a lease in database time, claimed with FOR UPDATE
// SKIP LOCKED); the high-water mark moves only in the database transaction
// that commits the items it covers.
package poll

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"gorm.io/gorm"

	"unifi/models/designer"
	"unifi/models/inbound"
	"unifi/models/pg"
	"unifi/models/store"
	"unifi/models/webhook"
)

// Runner claims due pollers and runs them.
type Runner struct {
	db            *gorm.DB
	store         *store.Store
	inbound       *inbound.Service
	webhook       *webhook.Service
	processor     ProcessorFunc
	deliver       DeliverFunc
	client        *http.Client
	logger        *slog.Logger
	owner         string
	lease         time.Duration
	idle          time.Duration
	maxRetryAfter time.Duration

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// Opts configures a Runner.
type Opts struct {
	// Processor makes a processor's steps; defaults to its scripts.
	Processor ProcessorFunc
	// Deliver, when set, applies the items one at a time (Deliver is the
	// product's); nil: a page's items are received together
	// (inbound.Page, deliverPage).
	Deliver DeliverFunc
	// Webhook translates items in the remote's own shape with the
	// integration's inbound scripts; nil: items are envelopes.
	Webhook *webhook.Service
	// Lease is how long a claim holds a poller without renewal (LEASE_SECONDS).
	Lease time.Duration
	// Idle is the longest wait between looks for a due poller (POLL_INTERVAL_MS).
	Idle time.Duration
	// MaxRetryAfter is the longest Retry-After a run waits out; a longer one
	// ends the run (the next run tries again). Default 60 s.
	MaxRetryAfter time.Duration
	// AllowLinkLocal lets polls reach link-local addresses (ALLOW_LINK_LOCAL_ENDPOINTS).
	AllowLinkLocal bool
	Logger         *slog.Logger
	Owner          string // the lease owner's name; defaults to host:pid:random
}

// New returns a Runner; Start runs it.
func New(db *gorm.DB, st *store.Store, in *inbound.Service, o Opts) *Runner {
	rn := &Runner{db: db, store: st, inbound: in, webhook: o.Webhook, processor: o.Processor, deliver: o.Deliver, logger: o.Logger,
		owner: o.Owner, lease: o.Lease, idle: o.Idle, maxRetryAfter: o.MaxRetryAfter}
	if rn.logger == nil {
		rn.logger = slog.New(slog.DiscardHandler)
	}
	if rn.lease <= 0 {
		rn.lease = 30 * time.Second
	}
	if rn.idle <= 0 {
		rn.idle = time.Second
	}
	if rn.maxRetryAfter <= 0 {
		rn.maxRetryAfter = time.Minute
	}
	if rn.owner == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		rn.owner = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: designer.DialControl(o.AllowLinkLocal)}
	rn.client = &http.Client{Timeout: 60 * time.Second,
		Transport:     &http.Transport{DialContext: dialer.DialContext, Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 4},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return rn
}

// Owner is the name this runner's leases carry.
func (rn *Runner) Owner() string { return rn.owner }

// Start runs the runner until Stop.
func (rn *Runner) Start(ctx context.Context) error {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	if rn.cancel != nil {
		return fmt.Errorf("poll runner: already started")
	}
	ctx, rn.cancel = context.WithCancel(ctx)
	rn.done = make(chan struct{})
	go func() {
		defer close(rn.done)
		rn.loop(ctx)
	}()
	return nil
}

// Stop stops claiming and cancels a run in progress: its page in flight is
// rolled back (the mark stays where the last committed page left it) and
// its lease released, so another process takes the poller at once.
func (rn *Runner) Stop(ctx context.Context) error {
	rn.mu.Lock()
	cancel, done := rn.cancel, rn.done
	rn.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("poll runner: stop: %w", ctx.Err())
	}
}

func (rn *Runner) loop(ctx context.Context) {
	for ctx.Err() == nil {
		ran, err := rn.RunDue(ctx)
		if err != nil && ctx.Err() == nil {
			rn.logger.ErrorContext(ctx, "poll runner", "error", err)
		}
		if ran {
			continue
		}
		wait := rn.idle
		var secs *float64
		err = pg.Query(rn.db.WithContext(ctx), sqlNextDue, func(rows *sql.Rows) error { return rows.Scan(&secs) })
		if err == nil && secs != nil {
			wait = min(wait, max(time.Duration(*secs*float64(time.Second)), 10*time.Millisecond))
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}
