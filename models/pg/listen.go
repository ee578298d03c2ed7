package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ListenOpts configures Listen.
type ListenOpts struct {
	// Channels maps each channel to LISTEN on to its handler. A handler runs
	// on Listen's goroutine and should return quickly (wake something).
	Channels map[string]func(ctx context.Context, n *pgconn.Notification)
	// OnConnect, if set, runs after every (re)connection once LISTEN has run on
	// every channel: the caller resyncs what it may have missed while it was
	// not listening.
	OnConnect func(ctx context.Context)
	// OnDisconnect, if set, runs after every connection that had reached
	// OnConnect ends, also when ctx ends (err is then ctx's error).
	OnDisconnect func(ctx context.Context, err error)
	// OnError, if set, is told why a connection (or an attempt) ended, before
	// the back-off; not called when ctx ends.
	OnError func(ctx context.Context, err error)
	// MinBackoff is the first wait before connecting again (default 100 ms);
	// it doubles on each failure up to MaxBackoff (default 5 s) and starts
	// again from MinBackoff after a connection that reached LISTEN.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval, if positive, pings the connection after this long without
	// notifications, so a connection that stalls without breaking is found.
	PingInterval time.Duration
}

// Listen holds a dedicated connection to url that LISTENs on o.Channels and
// hands each notification to its channel's handler; it connects again, with
// a growing back-off, whenever the connection breaks. It returns when ctx
// ends, having closed its connection and started no goroutine; the caller
// runs it on a goroutine of its own and joins it.
func Listen(ctx context.Context, url string, o ListenOpts) {
	if o.MinBackoff <= 0 {
		o.MinBackoff = 100 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(5*time.Second, o.MinBackoff)
	}
	backoff := o.MinBackoff
	for ctx.Err() == nil {
		connected, err := listenOnce(ctx, url, &o)
		if connected {
			backoff = o.MinBackoff
			if o.OnDisconnect != nil {
				o.OnDisconnect(ctx, err)
			}
		}
		if ctx.Err() != nil {
			return
		}
		if o.OnError != nil {
			o.OnError(ctx, err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, o.MaxBackoff)
	}
}

// listenOnce runs one connection; connected says whether it reached
// OnConnect.
func listenOnce(ctx context.Context, url string, o *ListenOpts) (connected bool, err error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return false, fmt.Errorf("listen: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	channels := make([]string, 0, len(o.Channels))
	for ch := range o.Channels {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return false, fmt.Errorf("listen on %s: %w", ch, err)
		}
	}
	if o.OnConnect != nil {
		o.OnConnect(ctx)
	}
	for {
		wctx, cancel := ctx, context.CancelFunc(func() {})
		if o.PingInterval > 0 {
			wctx, cancel = context.WithTimeout(ctx, o.PingInterval)
		}
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			if h := o.Channels[n.Channel]; h != nil {
				h(ctx, n)
			}
		case ctx.Err() != nil:
			return true, ctx.Err()
		case o.PingInterval > 0 && errors.Is(err, context.DeadlineExceeded):
			if err := conn.Ping(ctx); err != nil { // quiet: is the connection still there?
				return true, fmt.Errorf("listen: ping: %w", err)
			}
		default:
			return true, fmt.Errorf("listen: wait for notification: %w", err)
		}
	}
}
