package account

import (
	"context"
	"fmt"
	"time"
)

// Login throttling: after too many failed logins within the window, further
// attempts for the account, or from the address, are refused until it passes.
const (
	LoginWindow         = 15 * time.Minute
	MaxFailuresPerUser  = 5
	MaxFailuresPerAddr  = 20
	loginAttemptsToKeep = 24 * time.Hour
)

// ThrottledError says a login was refused for too many failures (HTTP 429).
type ThrottledError struct {
	Reason     string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string { return e.Reason }

// CheckLoginThrottle refuses with *ThrottledError when the account or the
// address has failed too often recently.
func (s *Accounts) CheckLoginThrottle(ctx context.Context, name, addr string) error {
	since := s.now().Add(-LoginWindow)
	var row struct {
		User, Addr int
		OldestUser *time.Time
		OldestAddr *time.Time
	}
	err := s.db.WithContext(ctx).Raw(`SELECT
		(SELECT count(*) FROM login_attempts WHERE user_name = ? AND NOT succeeded AND created_at > ?) AS "user",
		(SELECT count(*) FROM login_attempts WHERE remote_addr = ? AND NOT succeeded AND created_at > ?) AS addr,
		(SELECT min(created_at) FROM (SELECT created_at FROM login_attempts WHERE user_name = ? AND NOT succeeded
		   AND created_at > ? ORDER BY created_at DESC LIMIT ?) x) AS oldest_user,
		(SELECT min(created_at) FROM (SELECT created_at FROM login_attempts WHERE remote_addr = ? AND NOT succeeded
		   AND created_at > ? ORDER BY created_at DESC LIMIT ?) y) AS oldest_addr`,
		name, since, addr, since, name, since, MaxFailuresPerUser, addr, since, MaxFailuresPerAddr).Scan(&row).Error
	if err != nil {
		return fmt.Errorf("check login throttle: %w", err)
	}
	wait := func(oldest *time.Time) time.Duration {
		if oldest == nil {
			return LoginWindow
		}
		return max(time.Minute, oldest.Add(LoginWindow).Sub(s.now()).Round(time.Minute))
	}
	switch {
	case row.User >= MaxFailuresPerUser:
		d := wait(row.OldestUser)
		return &ThrottledError{RetryAfter: d, Reason: fmt.Sprintf(
			"Too many failed logins for this account. Try again in %d minutes.", int(d.Minutes()))}
	case row.Addr >= MaxFailuresPerAddr:
		d := wait(row.OldestAddr)
		return &ThrottledError{RetryAfter: d, Reason: fmt.Sprintf(
			"Too many failed logins from your address. Try again in %d minutes.", int(d.Minutes()))}
	}
	return nil
}

// RecordLogin stores the outcome of a login attempt and forgets old ones.
func (s *Accounts) RecordLogin(ctx context.Context, name, addr string, ok bool) error {
	db := s.db.WithContext(ctx)
	if err := db.Exec(`INSERT INTO login_attempts (user_name, remote_addr, succeeded, created_at) VALUES (?, ?, ?, ?)`,
		name, addr, ok, s.now()).Error; err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	if ok { // a success clears the account's failures
		if err := db.Exec(`DELETE FROM login_attempts WHERE user_name = ? AND NOT succeeded`, name).Error; err != nil {
			return fmt.Errorf("record login: %w", err)
		}
	}
	if err := db.Exec(`DELETE FROM login_attempts WHERE created_at < ?`, s.now().Add(-loginAttemptsToKeep)).Error; err != nil {
		return fmt.Errorf("record login: %w", err)
	}
	return nil
}
