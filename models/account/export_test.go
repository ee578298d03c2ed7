package account

import "sync/atomic"

// CountPasswordChecks makes a's bcrypt comparisons counted in n.
func CountPasswordChecks(a *Accounts, n *atomic.Int64) {
	inner := a.passwords.compareFunc
	a.passwords.compareFunc = func(hash, password []byte) error {
		n.Add(1)
		return inner(hash, password)
	}
}

// PasswordCacheLen is how many verified passwords a keeps.
func PasswordCacheLen(a *Accounts) int {
	a.passwords.mu.Lock()
	defer a.passwords.mu.Unlock()
	return len(a.passwords.entries)
}
