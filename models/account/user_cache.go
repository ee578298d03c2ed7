package account

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"unifi/models"
	"unifi/models/pg"
)

// UserChannel is the LISTEN/NOTIFY channel on which a change to a user
// announces its id (migration 00070).
const UserChannel = "unifi_users"

// UserCache keeps the users it has read, for the session check every page
// view makes, and forgets a user as soon as its row changes in any server.
//
// State stays in the database: a trigger on users notifies each change's user
// id on UserChannel when the change commits, and every server's cache
// listens and drops that user. A role change, a deactivation, a password
// reset and a logout all change the row (session_epoch), so every server
// sees them within the time a notification takes to arrive: milliseconds.
//
// The cache only answers while its listener is connected:
//   - It starts empty and answers from the database until LISTEN has run.
//   - When the listener's connection breaks, the cache empties and answers
//     from the database until it listens again.
//   - A connection that stalls without breaking is found by a ping after
//     PingInterval without notifications; until then that server may use a
//     row it read before the stall. Entries also expire after MaxAge.
//   - A read that races a change is not kept: every notification moves a
//     generation counter, and a row read while it moved is not stored.
type UserCache struct {
	store  *Accounts
	dsn    string
	maxAge time.Duration
	ping   time.Duration
	now    func() time.Time

	mu        sync.Mutex
	listening bool
	gen       uint64
	users     map[int64]cachedUser
	changed   chan struct{} // closed and replaced on each notification (tests wait on it)
}

type cachedUser struct {
	u    models.User
	read time.Time
}

// UserCacheOpts configures NewUserCache.
type UserCacheOpts struct {
	DatabaseURL  string        // the listener's own connection
	MaxAge       time.Duration // an entry's longest life; default 30 s
	PingInterval time.Duration // quiet time before the listener checks its connection; default 5 s
	NowFunc      func() time.Time
}

// NewUserCache returns a cache over store; it answers from the database
// until Run is listening.
func NewUserCache(store *Accounts, o UserCacheOpts) *UserCache {
	c := &UserCache{store: store, dsn: o.DatabaseURL, maxAge: o.MaxAge, ping: o.PingInterval, now: o.NowFunc,
		users: map[int64]cachedUser{}, changed: make(chan struct{})}
	if c.maxAge <= 0 {
		c.maxAge = 30 * time.Second
	}
	if c.ping <= 0 {
		c.ping = 5 * time.Second
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// GetUser is Store.GetUser, answered from the cache when it can be.
func (c *UserCache) GetUser(ctx context.Context, id int64) (*models.User, error) {
	c.mu.Lock()
	if e, ok := c.users[id]; ok && c.listening && c.now().Sub(e.read) < c.maxAge {
		u := e.u
		c.mu.Unlock()
		return &u, nil
	}
	listening, gen := c.listening, c.gen
	c.mu.Unlock()
	u, err := c.store.GetUser(ctx, id)
	if err != nil || !listening {
		return u, err
	}
	c.mu.Lock()
	if c.listening && c.gen == gen {
		c.users[id] = cachedUser{u: *u, read: c.now()}
	}
	c.mu.Unlock()
	return u, nil
}

// Listening reports whether the cache is answering from memory.
func (c *UserCache) Listening() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.listening
}

// WaitListening returns once the cache is listening, or ctx's error.
func (c *UserCache) WaitListening(ctx context.Context) error {
	for {
		c.mu.Lock()
		on, changed := c.listening, c.changed
		c.mu.Unlock()
		if on {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Changed returns a channel closed at the next notification (or change of
// listening state) the cache handles.
func (c *UserCache) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Run listens for user changes until ctx ends, connecting again (with a
// back-off up to 5 s) when the connection breaks (pg.Listen). onError, if
// set, is told why a connection ended.
func (c *UserCache) Run(ctx context.Context, onError func(error)) {
	pg.Listen(ctx, c.dsn, pg.ListenOpts{
		Channels: map[string]func(context.Context, *pgconn.Notification){
			UserChannel: func(_ context.Context, n *pgconn.Notification) {
				id, _ := strconv.ParseInt(n.Payload, 10, 64)
				c.forget(id)
			},
		},
		// Listening again: notifications sent while the connection was down
		// are lost, so the cache starts empty (setListening clears it).
		OnConnect:    func(context.Context) { c.setListening(true) },
		OnDisconnect: func(context.Context, error) { c.setListening(false) },
		OnError: func(_ context.Context, err error) {
			if onError != nil {
				onError(err)
			}
		},
		PingInterval: c.ping,
	})
}

// setListening empties the cache and says whether it may answer from memory.
func (c *UserCache) setListening(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = on
	c.gen++
	clear(c.users)
	close(c.changed)
	c.changed = make(chan struct{})
}

// Forget drops user id at once: the server that changed the user calls it,
// so its own next request does not wait for the notification.
func (c *UserCache) Forget(id int64) { c.forget(id) }

// forget drops user id (0: an unreadable payload drops everyone).
func (c *UserCache) forget(id int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if id == 0 {
		clear(c.users)
	} else {
		delete(c.users, id)
	}
	close(c.changed)
	c.changed = make(chan struct{})
}
