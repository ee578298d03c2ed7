package pg_test

import (
	"context"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/internal/wait"
	"unifi/models/pg"
)

// TestListen: a notification on each channel reaches that channel's handler;
// when the server ends the listening connection, Listen reports it, connects
// again, runs OnConnect again and gets the next notifications.
func TestListen(t *testing.T) {
	dbURL := testdb.URL(t)
	db := testdb.Open(t, dbURL)
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	q := u.Query()
	q.Set("application_name", "pg-listen-test")
	u.RawQuery = q.Encode()

	var (
		mu                             sync.Mutex
		got                            = map[string][]string{}
		connects, disconnects, errored int
	)
	record := func(ctx context.Context, n *pgconn.Notification) {
		mu.Lock()
		defer mu.Unlock()
		got[n.Channel] = append(got[n.Channel], n.Payload)
	}
	counts := func() (c, d, e int) {
		mu.Lock()
		defer mu.Unlock()
		return connects, disconnects, errored
	}
	received := func(ch, payload string) func() (bool, error) {
		return func() (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			return slices.Contains(got[ch], payload), nil
		}
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		pg.Listen(ctx, u.String(), pg.ListenOpts{
			Channels: map[string]func(context.Context, *pgconn.Notification){
				"listen_test_a": record,
				"listen test b": record, // a name that needs quoting
			},
			OnConnect: func(context.Context) {
				mu.Lock()
				defer mu.Unlock()
				connects++
			},
			OnDisconnect: func(context.Context, error) {
				mu.Lock()
				defer mu.Unlock()
				disconnects++
			},
			OnError: func(context.Context, error) {
				mu.Lock()
				defer mu.Unlock()
				errored++
			},
			MinBackoff: 10 * time.Millisecond,
		})
	}()
	t.Cleanup(func() { stop(); wg.Wait() })

	notify := func(ch, payload string) {
		t.Helper()
		require.NoError(t, db.Exec("SELECT pg_notify(?, ?)", ch, payload).Error)
	}
	wait.For(t, 10*time.Second, func() (bool, error) { c, _, _ := counts(); return c == 1, nil }, "first connection")
	notify("listen_test_a", "a1")
	notify("listen test b", "b1")
	wait.For(t, 10*time.Second, received("listen_test_a", "a1"), "a1 on listen_test_a")
	wait.For(t, 10*time.Second, received("listen test b", "b1"), "b1 on listen test b")
	mu.Lock()
	require.Equal(t, []string{"a1"}, got["listen_test_a"], "each channel gets its own notifications only")
	require.Equal(t, []string{"b1"}, got["listen test b"])
	mu.Unlock()

	var n int
	require.NoError(t, db.Raw(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'pg-listen-test'`).Scan(&n).Error)
	require.Equal(t, 1, n, "one listening connection ended")
	wait.For(t, 10*time.Second, func() (bool, error) {
		c, d, e := counts()
		return c == 2 && d == 1 && e == 1, nil
	}, "disconnect reported, then connected again with OnConnect")

	notify("listen_test_a", "a2")
	notify("listen test b", "b2")
	wait.For(t, 10*time.Second, received("listen_test_a", "a2"), "a2 after reconnecting")
	wait.For(t, 10*time.Second, received("listen test b", "b2"), "b2 after reconnecting")

	stop()
	wg.Wait()
	c, d, e := counts()
	require.Equal(t, [3]int{2, 2, 1}, [3]int{c, d, e}, "ending ctx disconnects without an error report")
}
