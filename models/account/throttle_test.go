package account_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
)

// TestLoginThrottleDistributed: failures from many addresses slow every
// address the account has not logged in from, by a delay that grows; the
// account's own address is never held up by them, and no address is locked
// by failures from other addresses.
func TestLoginThrottleDistributed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.Open(t, testdb.URL(t))
	store := account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost})
	// The throttle's windows are in database time: time passes for every
	// process alike by moving what was recorded into the past.
	clock := dbClock{t: t, db: db}
	_, err := store.CreateUser(ctx, models.SystemActor, account.NewUserOpts{Name: "alice", Role: models.RoleAnalyst,
		Password: "alice-password-1"})
	require.NoError(t, err)
	_, err = store.AuthenticatePassword(ctx, "alice", "alice-password-1", "10.9.9.9") // her own address
	require.NoError(t, err)

	// Two guesses from each of many addresses: no pair reaches its lock.
	addr := 0
	guess := func() error {
		addr++
		_, err := store.AuthenticatePassword(ctx, "alice", "guess", fmt.Sprintf("198.18.0.%d", addr))
		return err
	}
	for range account.AccountDelayAfter {
		require.ErrorIs(t, guess(), models.ErrInvalidCredentials)
	}
	// Now every new address waits 1 s after the last failure, then 2 s, 4 s, ...
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		var te *account.ThrottledError
		require.True(t, errors.As(guess(), &te), "attempt %d is held up", i)
		require.Equal(t, int(want/time.Second), te.RetryAfterSeconds(), "attempt %d", i)
		require.True(t, strings.HasPrefix(te.Reason, "Too many failed logins for this account. Try again in"), te.Reason)
		// Her own address is not held up, and the right password works there.
		u, err := store.AuthenticatePassword(ctx, "alice", "alice-password-1", "10.9.9.9")
		require.NoError(t, err, "attempt %d", i)
		require.Equal(t, "alice", u.Name)
		clock.Advance(want)
		require.ErrorIs(t, guess(), models.ErrInvalidCredentials, "after the delay, attempt %d is tried", i)
	}
	// The delay is capped.
	for range 20 {
		clock.Advance(account.MaxAccountDelay)
		require.ErrorIs(t, guess(), models.ErrInvalidCredentials)
	}
	var te *account.ThrottledError
	require.True(t, errors.As(guess(), &te))
	require.Equal(t, int(account.MaxAccountDelay/time.Second), te.RetryAfterSeconds())
	// A new address for her still gets in once the delay is over: slowed, never locked.
	clock.Advance(account.MaxAccountDelay)
	_, err = store.AuthenticatePassword(ctx, "alice", "alice-password-1", "10.1.1.1")
	require.NoError(t, err)
	// Over-long names and addresses are bounded before they reach an index.
	long := strings.Repeat("x", 5000)
	_, err = store.AuthenticatePassword(ctx, long, "guess", long)
	require.ErrorIs(t, err, models.ErrInvalidCredentials)
	_, err = store.AuthenticatePassword(ctx, "alice\xff", "guess", "10.1.1.\x00")
	require.ErrorIs(t, err, models.ErrInvalidCredentials)
}

// dbClock lets time pass for the throttle: it moves every recorded login
// attempt and known address d into the past, as if d had passed on the
// database's clock.
type dbClock struct {
	t  *testing.T
	db *gorm.DB
}

func (c dbClock) Advance(d time.Duration) {
	c.t.Helper()
	require.NoError(c.t, c.db.Exec(`UPDATE login_attempts SET created_at = created_at - make_interval(secs => ?::float8)`,
		d.Seconds()).Error)
	require.NoError(c.t, c.db.Exec(`UPDATE login_known_addresses SET last_success_at = last_success_at - make_interval(secs => ?::float8)`,
		d.Seconds()).Error)
}
