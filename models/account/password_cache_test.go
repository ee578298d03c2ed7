package account_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
)

// TestPasswordCache: a password verified once is not hashed again for the
// same user and stored hash; a wrong one always is, and is refused; a reset
// password refuses the old one at once and the new one is hashed once; a
// user switched off is refused though the password is cached; the cache is
// bounded. Logs the time of one check with and without the cache at the
// default bcrypt cost.
func TestPasswordCache(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.Open(t, testdb.URL(t))
	accts := account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost, PasswordCacheSize: 3})
	var checks atomic.Int64
	account.CountPasswordChecks(accts, &checks)
	admin := models.Actor{Role: models.RoleAdmin, Name: "admin"}
	u, err := accts.CreateUser(ctx, admin, account.NewUserOpts{Name: "snow", Role: models.RoleIntegration, Password: "first-password-1"})
	require.NoError(t, err)

	for range 3 {
		got, err := accts.AuthenticatePassword(ctx, "snow", "first-password-1", "10.0.0.1")
		require.NoError(t, err)
		require.Equal(t, u.ID, got.ID)
	}
	require.EqualValues(t, 1, checks.Load(), "verified once, then from the cache")
	for range 2 {
		_, err = accts.AuthenticatePassword(ctx, "snow", "first-password-2", "10.0.0.1")
		require.ErrorIs(t, err, models.ErrInvalidCredentials)
	}
	require.EqualValues(t, 3, checks.Load(), "a wrong password is hashed every time")

	require.NoError(t, accts.ResetPassword(ctx, admin, u.ID, "second-password-1"))
	_, err = accts.AuthenticatePassword(ctx, "snow", "first-password-1", "10.0.0.1")
	require.ErrorIs(t, err, models.ErrInvalidCredentials, "the old password is refused once changed")
	for range 2 {
		_, err = accts.AuthenticatePassword(ctx, "snow", "second-password-1", "10.0.0.1")
		require.NoError(t, err)
	}
	require.EqualValues(t, 5, checks.Load())

	_, err = accts.SetUserActive(ctx, admin, u.ID, false)
	require.NoError(t, err)
	_, err = accts.AuthenticatePassword(ctx, "snow", "second-password-1", "10.0.0.1")
	require.ErrorIs(t, err, models.ErrInvalidCredentials, "a user switched off is refused, cached or not")

	for i := range 5 {
		name := fmt.Sprintf("api%d", i)
		_, err := accts.CreateUser(ctx, admin, account.NewUserOpts{Name: name, Role: models.RoleIntegration, Password: "api-password-1"})
		require.NoError(t, err)
		_, err = accts.Authenticate(ctx, name, "api-password-1")
		require.NoError(t, err)
		require.LessOrEqual(t, account.PasswordCacheLen(accts), 3, "bounded")
	}

	// One check at the product's cost, without and with the cache.
	slow := account.New(db, nil)
	_, err = slow.CreateUser(ctx, admin, account.NewUserOpts{Name: "costly", Role: models.RoleIntegration, Password: "costly-password-1"})
	require.NoError(t, err)
	start := time.Now()
	_, err = slow.Authenticate(ctx, "costly", "costly-password-1")
	require.NoError(t, err)
	miss := time.Since(start)
	start = time.Now()
	_, err = slow.Authenticate(ctx, "costly", "costly-password-1")
	require.NoError(t, err)
	t.Logf("one password check at bcrypt cost %d: %v hashed, %v from the cache", bcrypt.DefaultCost, miss, time.Since(start))
}
