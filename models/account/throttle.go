package account

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"

	"unifi/models"
)

// Login throttling: one rule for every way in that takes a password (the UI
// login, the tickets API's and the inbound API's basic auth), through
// AuthenticatePassword. docs/decisions.md ("Login throttling") explains it:
//
//   - an account is locked from one address after MaxFailuresPerPair failures
//     from that address within LoginWindow (other addresses are not locked);
//   - an address is locked after MaxFailuresPerAddr failures for any accounts;
//   - after AccountDelayAfter failures for an account from all addresses
//     together within AccountWindow, each further attempt from an address the account has not
//     logged in from lately waits a delay that doubles with every failure, up
//     to MaxAccountDelay: a distributed guess is slowed, the user's own
//     address never.
const (
	LoginWindow         = 15 * time.Minute
	MaxFailuresPerPair  = 5
	MaxFailuresPerAddr  = 20
	AccountDelayAfter   = 10
	AccountWindow       = 24 * time.Hour
	MaxAccountDelay     = 5 * time.Minute
	KnownAddressFor     = 30 * 24 * time.Hour
	loginAttemptsToKeep = AccountWindow
	maxThrottleKeyLen   = 64
)

// ThrottledError says a login was refused for too many failures (HTTP 429).
type ThrottledError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return e.Reason }

// RetryAfterSeconds is RetryAfter for a Retry-After header (at least 1).
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// throttleKey bounds what the throttle stores and indexes: a longer (or
// unstorable) name or address is kept as a digest that no user name can be.
func throttleKey(s string) string {
	if len(s) <= maxThrottleKeyLen && models.TextProblem(s) == "" {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "~" + hex.EncodeToString(sum[:16])
}

// throttleState is what the throttle knows about one attempt.
type throttleState struct {
	Pair, Addr, Account       int
	OldestPair, OldestAddr    *time.Time
	LastAccount, KnownAddress *time.Time
	Fresh                     bool      // the address succeeded within the last 24 hours
	Now                       time.Time // the database's now(): windows and waits are in database time
}

// CheckLoginThrottle refuses with *ThrottledError when the account may not
// try again from addr yet.
func (s *Accounts) CheckLoginThrottle(ctx context.Context, name, addr string) error {
	_, err := s.checkLoginThrottle(ctx, throttleKey(name), throttleKey(addr))
	return err
}

func (s *Accounts) checkLoginThrottle(ctx context.Context, name, addr string) (*throttleState, error) {
	// Every window is measured back from the database's now(), so every
	// server process counts the same attempts whatever its own clock says.
	since, accountSince := LoginWindow.Seconds(), AccountWindow.Seconds()
	var row throttleState
	err := s.db.WithContext(ctx).Raw(`WITH w AS (SELECT now() AS now, now() - make_interval(secs => ?::float8) AS since,
		                now() - make_interval(secs => ?::float8) AS account_since)
		SELECT w.now,
		(SELECT count(*) FROM login_attempts WHERE user_name = ? AND remote_addr = ? AND NOT succeeded AND created_at > w.since) AS pair,
		(SELECT min(created_at) FROM (SELECT created_at FROM login_attempts WHERE user_name = ? AND remote_addr = ?
		   AND NOT succeeded AND created_at > w.since ORDER BY created_at DESC LIMIT ?) x) AS oldest_pair,
		(SELECT count(*) FROM login_attempts WHERE remote_addr = ? AND NOT succeeded AND created_at > w.since) AS addr,
		(SELECT min(created_at) FROM (SELECT created_at FROM login_attempts WHERE remote_addr = ? AND NOT succeeded
		   AND created_at > w.since ORDER BY created_at DESC LIMIT ?) y) AS oldest_addr,
		(SELECT count(*) FROM login_attempts WHERE user_name = ? AND NOT succeeded AND created_at > w.account_since) AS account,
		(SELECT max(created_at) FROM login_attempts WHERE user_name = ? AND NOT succeeded AND created_at > w.account_since) AS last_account,
		k.last_success_at AS known_address,
		coalesce(k.last_success_at > w.now - interval '24 hours', false) AS fresh
		FROM w LEFT JOIN login_known_addresses k ON k.user_name = ? AND k.remote_addr = ?`,
		since, accountSince,
		name, addr, name, addr, MaxFailuresPerPair,
		addr, addr, MaxFailuresPerAddr,
		name, name, name, addr).Scan(&row).Error
	if err != nil {
		return nil, fmt.Errorf("check login throttle: %w", err)
	}
	wait := func(oldest *time.Time) time.Duration {
		if oldest == nil {
			return LoginWindow
		}
		return max(time.Minute, oldest.Add(LoginWindow).Sub(row.Now).Round(time.Minute))
	}
	known := row.KnownAddress != nil && row.KnownAddress.After(row.Now.Add(-KnownAddressFor))
	switch {
	case row.Pair >= MaxFailuresPerPair:
		d := wait(row.OldestPair)
		return &row, &ThrottledError{RetryAfter: d, Reason: fmt.Sprintf(
			"Too many failed logins for this account from your address. Try again in %d minutes.", int(d.Minutes()))}
	case row.Addr >= MaxFailuresPerAddr:
		d := wait(row.OldestAddr)
		return &row, &ThrottledError{RetryAfter: d, Reason: fmt.Sprintf(
			"Too many failed logins from your address. Try again in %d minutes.", int(d.Minutes()))}
	case row.Account >= AccountDelayAfter && !known && row.LastAccount != nil:
		if d := row.LastAccount.Add(accountDelay(row.Account)).Sub(row.Now); d > 0 {
			te := &ThrottledError{RetryAfter: d}
			te.Reason = fmt.Sprintf("Too many failed logins for this account. Try again in %d seconds.", te.RetryAfterSeconds())
			return &row, te
		}
	}
	return &row, nil
}

// accountDelay is the wait after the last failure once an account has failed
// failures times from all addresses: 1 s at AccountDelayAfter, doubling.
func accountDelay(failures int) time.Duration {
	n := min(failures-AccountDelayAfter, 20)
	return min(time.Second<<max(n, 0), MaxAccountDelay)
}

// RecordLogin stores the outcome of a login attempt and forgets old ones. A
// success clears the failures of the account from that address only (an
// attacker's failures elsewhere stand) and notes the address as known.
func (s *Accounts) RecordLogin(ctx context.Context, name, addr string, ok bool) error {
	return s.recordLogin(ctx, throttleKey(name), throttleKey(addr), ok)
}

func (s *Accounts) recordLogin(ctx context.Context, name, addr string, ok bool) error {
	db := s.db.WithContext(ctx)
	if ok {
		if err := db.Exec(`INSERT INTO login_known_addresses (user_name, remote_addr, last_success_at) VALUES (?, ?, now())
			ON CONFLICT (user_name, remote_addr) DO UPDATE SET last_success_at = excluded.last_success_at`,
			name, addr).Error; err != nil {
			return fmt.Errorf("record login: %w", err)
		}
		if err := db.Exec(`DELETE FROM login_attempts WHERE user_name = ? AND remote_addr = ? AND NOT succeeded`,
			name, addr).Error; err != nil {
			return fmt.Errorf("record login: %w", err)
		}
		return nil
	}
	if err := db.Exec(`INSERT INTO login_attempts (user_name, remote_addr, succeeded, created_at) VALUES (?, ?, false, now())`,
		name, addr).Error; err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	if err := db.Exec(`DELETE FROM login_attempts WHERE created_at < now() - make_interval(secs => ?::float8)`,
		loginAttemptsToKeep.Seconds()).Error; err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	if err := db.Exec(`DELETE FROM login_known_addresses WHERE last_success_at < now() - make_interval(secs => ?::float8)`,
		KnownAddressFor.Seconds()).Error; err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}

// AuthenticatePassword is every password login: the throttle, then the
// password, then the outcome recorded. It returns the active user,
// *ThrottledError (refused before the password was looked at) or
// models.ErrInvalidCredentials. Whether the user's role may do what was asked is
// the caller's check, after this one; the caller answers a refused role
// exactly like a wrong password where the password is the only credential.
func (s *Accounts) AuthenticatePassword(ctx context.Context, name, password, addr string) (*models.User, error) {
	nameKey, addrKey := throttleKey(name), throttleKey(addr)
	st, err := s.checkLoginThrottle(ctx, nameKey, addrKey)
	if err != nil {
		return nil, err
	}
	var u *models.User
	if validUserName(name) && utf8.ValidString(password) {
		u, err = s.Authenticate(ctx, name, password)
	} else { // no user has that name (or it cannot be looked up): the same work, the same answer
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		err = models.ErrInvalidCredentials
	}
	if err != nil && !errors.Is(err, models.ErrInvalidCredentials) {
		return nil, err
	}
	ok := err == nil
	// A success from a known address with no failures to clear writes nothing
	// (the API authenticates every request).
	if !ok || st.Pair > 0 || !st.Fresh {
		if rerr := s.recordLogin(ctx, nameKey, addrKey, ok); rerr != nil {
			return nil, rerr
		}
	}
	return u, err
}
