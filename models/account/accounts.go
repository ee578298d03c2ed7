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
}

// Opts configures Accounts.
type Opts struct {
	// PasswordCost is the bcrypt cost of new password hashes; tests lower it.
	// Defaults to bcrypt.DefaultCost.
	PasswordCost int
}

// New returns Accounts on db.
func New(db *gorm.DB, opts *Opts) *Accounts {
	a := &Accounts{db: db, passwordCost: bcrypt.DefaultCost}
	if opts != nil && opts.PasswordCost != 0 {
		a.passwordCost = opts.PasswordCost
	}
	return a
}

// WithTx returns Accounts that work in the database transaction tx, with the
// same clock and password cost (the demo seed creates its users in the
// transaction that creates the rest).
func (s *Accounts) WithTx(tx *gorm.DB) *Accounts {
	return &Accounts{db: tx, passwordCost: s.passwordCost}
}
