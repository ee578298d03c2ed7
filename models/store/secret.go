package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"unifi/models"
)

// Connection secrets (passwords, tokens, client secrets) are stored sealed
// with AES-256-GCM under SECRET_KEY: "v1:" + base64(nonce | ciphertext).
const sealedPrefix = "v1:"

// developmentSecretKey seals secrets when no key is configured (tests). The
// server always passes SECRET_KEY, or a key generated once in DATA_DIR.
var developmentSecretKey = sha256.Sum256([]byte("unifi development secret key: not for production"))

type secretBox struct{ aead cipher.AEAD }

func newSecretBox(key []byte) (*secretBox, error) {
	if len(key) < 32 {
		return nil, errors.New("secret key must be at least 32 bytes")
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &secretBox{aead: aead}, nil
}

// seal encrypts a secret; the empty secret stays empty.
func (b *secretBox) seal(plain string) string {
	if plain == "" {
		return ""
	}
	nonce := make([]byte, b.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return sealedPrefix + base64.RawStdEncoding.EncodeToString(b.aead.Seal(nonce, nonce, []byte(plain), nil))
}

// open decrypts a sealed secret.
func (b *secretBox) open(sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	raw, ok := strings.CutPrefix(sealed, sealedPrefix)
	if !ok {
		return "", errors.New("secret is not sealed")
	}
	data, err := base64.RawStdEncoding.DecodeString(raw)
	if err != nil || len(data) < b.aead.NonceSize() {
		return "", errors.New("sealed secret is damaged")
	}
	plain, err := b.aead.Open(nil, data[:b.aead.NonceSize()], data[b.aead.NonceSize():], nil)
	if err != nil {
		return "", fmt.Errorf("open sealed secret (was SECRET_KEY changed?): %w", err)
	}
	return string(plain), nil
}

// SealSecret returns a connection secret in the sealed form stored in the
// database (for code that writes connections, such as fixtures).
func (s *Store) SealSecret(plain string) string { return s.secrets.seal(plain) }

// OpenSecret replaces a loaded connection's sealed secret with the secret.
func (s *Store) OpenSecret(c *models.Connection) error {
	plain, err := s.secrets.open(c.AuthSecret)
	if err != nil {
		return fmt.Errorf("connection %d: %w", c.ID, err)
	}
	c.AuthSecret = plain
	return nil
}
