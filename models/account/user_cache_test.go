package account_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/fixture"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// userCacheBundle is one database with two servers' user caches on it.
type userCacheBundle struct {
	ctx       context.Context
	dbURL     string
	dbName    string
	store     *store.Store
	accounts  *account.Accounts
	a, b      *account.UserCache
	admin     *models.User
	analyst   *models.User
	terminate func(cache string) // ends a cache's listening connection from the server side
}

// setupUserCache starts two caches, A and B, as two servers would, and waits
// until both listen.
func setupUserCache(t *testing.T) *userCacheBundle {
	t.Helper()
	ctx := context.Background()
	dbURL := testdb.URL(t)
	db := testdb.Open(t, dbURL)
	accounts := account.New(db, nil)
	st := store.NewStore(db, accounts, nil)
	fixture.Demo(t, st)
	start := func(name string) *account.UserCache {
		u, err := url.Parse(dbURL)
		require.NoError(t, err)
		q := u.Query()
		q.Set("application_name", "usercache-"+name)
		u.RawQuery = q.Encode()
		c := account.NewUserCache(accounts, account.UserCacheOpts{DatabaseURL: u.String(), PingInterval: 200 * time.Millisecond})
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); c.Run(runCtx, nil) }()
		t.Cleanup(func() { stop(); <-done })
		waitFor(t, c, c.Listening, "cache %s listens", name)
		return c
	}
	parsed, err := url.Parse(dbURL)
	require.NoError(t, err)
	b := &userCacheBundle{ctx: ctx, dbURL: dbURL, dbName: strings.TrimPrefix(parsed.Path, "/"), store: st, accounts: accounts, a: start("a"), b: start("b"),
		admin: fixture.User(t, db, models.RoleAdmin), analyst: fixture.User(t, db, models.RoleAnalyst)}
	b.terminate = func(cache string) { // ends a cache's listening connection from the server side
		var n int
		require.NoError(t, db.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = ?`, "usercache-"+cache).Scan(&n).Error)
		require.Equal(t, 1, n)
	}
	return b
}

// exec runs a statement on the test's database.
func (b *userCacheBundle) exec(t *testing.T, sql string) {
	t.Helper()
	require.NoError(t, b.store.DB(b.ctx).Exec(sql).Error)
}

// onCluster runs a statement from another database of the cluster (one that a
// database cannot run on itself).
func (b *userCacheBundle) onCluster(t *testing.T, statement string) {
	t.Helper()
	u, err := url.Parse(b.dbURL)
	require.NoError(t, err)
	u.Path = "/postgres"
	db, err := sql.Open("pgx", u.String())
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(b.ctx, statement)
	require.NoError(t, err)
}

// listenerPID is the backend of cache's listening connection.
func (b *userCacheBundle) listenerPID(t *testing.T, cache string) int {
	t.Helper()
	var pid int
	require.NoError(t, b.store.DB(b.ctx).Raw(`SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = ?`, "usercache-"+cache).Scan(&pid).Error)
	require.NotZero(t, pid)
	return pid
}

// waitQuery waits, at most 10 s, until cache's listening connection has sent
// query (pg_stat_activity), looking every 20 ms.
func (b *userCacheBundle) waitQuery(t *testing.T, cache, query string) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		var n int64
		require.NoError(t, b.store.DB(b.ctx).Raw(`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = ? AND query = ?`, "usercache-"+cache, query).Scan(&n).Error)
		if n == 1 {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			require.FailNowf(t, "timed out", "cache %s never sent %q", cache, query)
		}
	}
}

// waitFor waits, at most 10 s, until cond holds, looking again whenever the
// cache handles a notification or its listening changes.
func waitFor(t *testing.T, c *account.UserCache, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		changed := c.Changed()
		if cond() {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			require.FailNowf(t, "timed out", msg, args...)
		}
	}
}

// role reads the user's role through cache c.
func (b *userCacheBundle) role(t *testing.T, c *account.UserCache, id int64) models.Role {
	t.Helper()
	u, err := c.GetUser(b.ctx, id)
	require.NoError(t, err)
	return u.Role
}

func TestUserCache(t *testing.T) {
	t.Parallel()

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		u, err := b.a.GetUser(b.ctx, b.analyst.ID)
		require.NoError(t, err)
		require.Equal(t, *b.analyst, *u)
		u.Role = models.RoleAdmin // a caller's copy: changing it changes nothing cached
		require.Equal(t, models.RoleAnalyst, b.role(t, b.a, b.analyst.ID))
	})

	t.Run("AnswersFromMemory", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		require.Equal(t, models.RoleAnalyst, b.role(t, b.a, b.analyst.ID))
		// A change that does not announce itself is not seen: the row is in memory.
		require.NoError(t, b.store.DB(b.ctx).Exec("ALTER TABLE users DISABLE TRIGGER users_notify_change").Error)
		require.NoError(t, b.store.DB(b.ctx).Exec("UPDATE users SET role = 'manager' WHERE id = ?", b.analyst.ID).Error)
		require.Equal(t, models.RoleAnalyst, b.role(t, b.a, b.analyst.ID))
		// Forget (what the server making a change calls) drops it at once.
		b.a.Forget(b.analyst.ID)
		require.Equal(t, models.RoleManager, b.role(t, b.a, b.analyst.ID))
	})

	t.Run("RoleChangeOnAnotherServer", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		require.Equal(t, models.RoleAnalyst, b.role(t, b.a, b.analyst.ID))
		require.Equal(t, models.RoleAnalyst, b.role(t, b.b, b.analyst.ID))
		_, err := b.accounts.SetUserRole(b.ctx, models.ActorOf(b.admin, "127.0.0.1"), b.analyst.ID, models.RoleManager)
		require.NoError(t, err)
		for name, c := range map[string]*account.UserCache{"a": b.a, "b": b.b} {
			waitFor(t, c, func() bool { return b.role(t, c, b.analyst.ID) == models.RoleManager },
				"cache %s sees the new role", name)
		}
	})

	t.Run("LogoutOnAnotherServer", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		before, err := b.a.GetUser(b.ctx, b.admin.ID)
		require.NoError(t, err)
		require.NoError(t, b.accounts.EndSessions(b.ctx, b.admin.ID))
		waitFor(t, b.a, func() bool {
			u, err := b.a.GetUser(b.ctx, b.admin.ID)
			require.NoError(t, err)
			return u.SessionEpoch == before.SessionEpoch+1
		}, "cache a sees the logout")
	})

	t.Run("NotListening", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		require.Equal(t, models.RoleAnalyst, b.role(t, b.a, b.analyst.ID))
		// A's listening connection ends and cannot come back for now.
		b.onCluster(t, "ALTER DATABASE "+b.dbName+" ALLOW_CONNECTIONS false")
		b.terminate("a")
		waitFor(t, b.a, func() bool { return !b.a.Listening() }, "cache a notices its connection ended")
		// A change it cannot hear of is read from the database.
		b.exec(t, "ALTER TABLE users DISABLE TRIGGER users_notify_change")
		b.exec(t, "UPDATE users SET role = 'manager' WHERE id = "+fmt.Sprint(b.analyst.ID))
		require.Equal(t, models.RoleManager, b.role(t, b.a, b.analyst.ID))
		b.onCluster(t, "ALTER DATABASE "+b.dbName+" ALLOW_CONNECTIONS true")
		waitFor(t, b.a, b.a.Listening, "cache a listens again")
		require.Equal(t, models.RoleManager, b.role(t, b.a, b.analyst.ID))
	})

	t.Run("QuietConnection", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		require.Equal(t, models.RoleAnalyst, b.role(t, b.a, b.analyst.ID))
		// With no notification for a ping interval the listener checks its
		// connection; the check keeps it, and it still delivers.
		pid := b.listenerPID(t, "a")
		b.waitQuery(t, "a", "-- ping")
		require.True(t, b.a.Listening())
		require.Equal(t, pid, b.listenerPID(t, "a"), "the same connection")
		_, err := b.accounts.SetUserRole(b.ctx, models.ActorOf(b.admin, "127.0.0.1"), b.analyst.ID, models.RoleManager)
		require.NoError(t, err)
		waitFor(t, b.a, func() bool { return b.role(t, b.a, b.analyst.ID) == models.RoleManager }, "cache a sees the change")
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		b := setupUserCache(t)
		_, err := b.a.GetUser(b.ctx, 999999)
		require.ErrorIs(t, err, models.ErrNotFound)
	})
}
