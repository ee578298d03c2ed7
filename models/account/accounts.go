// Package account holds the users and logging in: the user records'
// operations, the administration of users, the cache of users kept fresh by
// LISTEN, and the login throttle.
package account

import (
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"
)

// Accounts reads and changes users, checks their passwords and tokens, and
// throttles failed logins.
type Accounts struct {
	db           *gorm.DB
	passwordCost int
	passwords    *passwordCache // shared by WithTx's copies
}

// Opts configures Accounts.
type Opts struct {
	// PasswordCost is the bcrypt cost of new password hashes; tests lower it.
	// Defaults to bcrypt.DefaultCost.
	PasswordCost int
	// PasswordCacheSize bounds the verified passwords kept (password_cache.go).
	// Defaults to 4096.
	PasswordCacheSize int
}

// New returns Accounts on db.
func New(db *gorm.DB, opts *Opts) *Accounts {
	a := &Accounts{db: db, passwordCost: bcrypt.DefaultCost}
	size := 0
	if opts != nil {
		if opts.PasswordCost != 0 {
			a.passwordCost = opts.PasswordCost
		}
		size = opts.PasswordCacheSize
	}
	a.passwords = newPasswordCache(size)
	return a
}

// WithTx returns Accounts that work in the database transaction tx, with the
// same clock and password cost (the demo seed creates its users in the
// transaction that creates the rest).
func (s *Accounts) WithTx(tx *gorm.DB) *Accounts {
	return &Accounts{db: tx, passwordCost: s.passwordCost, passwords: s.passwords}
}
