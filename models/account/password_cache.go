package account

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// passwordCache remembers the passwords bcrypt verified recently, so that an
// API client sending HTTP basic credentials with every request (a ServiceNow
// business rule calling the webhook) costs one bcrypt comparison (~70 ms of
// CPU at the default cost) once, not per request.
//
// An entry is an HMAC (with a key made at random per process) of the user's
// name, the password and the stored hash: it holds no password, a memory
// dump gives no fast way to test guesses without the key, and a changed
// password (a new stored hash) or renamed user never matches an old entry.
// Only successes are kept; the user row is read on every check, so a user
// switched off is refused at once. Bounded: when full, an arbitrary entry
// makes room.
type passwordCache struct {
	mu          sync.Mutex
	key         []byte
	entries     map[[sha256.Size]byte]struct{}
	max         int
	compareFunc func(hash, password []byte) error // bcrypt.CompareHashAndPassword; tests count the calls
}

// defaultPasswordCacheSize bounds the cache: far more API accounts than a
// deployment has, a few hundred KB at most.
const defaultPasswordCacheSize = 4096

func newPasswordCache(size int) *passwordCache {
	if size <= 0 {
		size = defaultPasswordCacheSize
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key) // crypto/rand.Read never fails (Go 1.24+)
	return &passwordCache{key: key, entries: map[[sha256.Size]byte]struct{}{}, max: size,
		compareFunc: bcrypt.CompareHashAndPassword}
}

func (c *passwordCache) entry(name, password, hash string) [sha256.Size]byte {
	m := hmac.New(sha256.New, c.key)
	for _, part := range []string{name, password, hash} {
		// Length-prefixed, so no two (name, password, hash) write the same bytes.
		n := len(part)
		m.Write([]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
		m.Write([]byte(part))
	}
	var out [sha256.Size]byte
	copy(out[:], m.Sum(nil))
	return out
}

// verify reports whether password is the one hash was made from: from the
// cache when it verified this very (name, password, hash) before, else by
// bcrypt, remembering a success.
func (c *passwordCache) verify(name, password, hash string) bool {
	e := c.entry(name, password, hash)
	c.mu.Lock()
	_, ok := c.entries[e]
	c.mu.Unlock()
	if ok {
		return true
	}
	if c.compareFunc([]byte(hash), []byte(password)) != nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		for k := range c.entries {
			delete(c.entries, k)
			break
		}
	}
	c.entries[e] = struct{}{}
	return true
}
