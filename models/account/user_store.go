package account

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 8

// dummyHash is compared against when a user does not exist, so a wrong name
// and a wrong password take the same time.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("not a real password"), bcrypt.DefaultCost)

// NewUserOpts describes a user to create.
type NewUserOpts struct {
	Name     string
	Role     models.Role
	Password string
	Token    string // bearer token for integration users (optional)
}

func (o NewUserOpts) validate() error {
	v := &models.ValidationError{}
	if !validUserName(o.Name) {
		v.Add("name", "Use 1 to 64 letters, digits, dots, dashes, underscores or @.")
	}
	if !o.Role.Valid() {
		v.Add("role", fmt.Sprintf("Choose one of admin, manager, analyst or integration (got %q).", o.Role))
	}
	if err := checkPassword(o.Password); err != nil {
		v.Add("password", err.Error())
	}
	if o.Token != "" && len(o.Token) < 16 {
		v.Add("token", "A bearer token needs at least 16 characters.")
	}
	return v.Err()
}

func validUserName(n string) bool {
	if n == "" || len(n) > 64 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.@-", r)) {
			return false
		}
	}
	return true
}

func checkPassword(p string) error {
	switch {
	case utf8.RuneCountInString(p) < MinPasswordLength:
		return fmt.Errorf("Use at least %d characters.", MinPasswordLength)
	case len(p) > 72:
		return errors.New("Use at most 72 bytes.")
	case !utf8.ValidString(p):
		return errors.New("The password is not valid text.")
	}
	return nil
}

// HashToken returns the stored form of a bearer token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateUser adds a user. The activity is logged for actor.
func (s *Accounts) CreateUser(ctx context.Context, actor models.Actor, o NewUserOpts) (*models.User, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(o.Password), s.passwordCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	u := &models.User{Name: o.Name, Role: o.Role, PasswordHash: string(hash), Active: true}
	if o.Token != "" {
		h := HashToken(o.Token)
		u.TokenHash = &h
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Create(u).Error; err != nil {
			if pg.IsUniqueViolation(err) {
				return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("A user named %q already exists.", o.Name)}}
			}
			return err
		}
		return pg.LogActivity(tx, actor, "create user", "user", u.ID, u.Name, nil, map[string]any{"role": u.Role})
	})
	if err != nil {
		return nil, fmt.Errorf("create user %q: %w", o.Name, err)
	}
	return u, nil
}

// Authenticate checks a name and password and returns the active user.
// Any mismatch is ErrInvalidCredentials, whatever the cause. A password
// verified before against the same stored hash is not hashed again
// (password_cache.go).
func (s *Accounts) Authenticate(ctx context.Context, name, password string) (*models.User, error) {
	var u models.User
	err := s.db.WithContext(ctx).Where("name = ? AND active", name).Take(&u).Error
	if err != nil {
		_ = bcrypt.CompareHashAndPassword(dummyHash, []byte(password))
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, models.ErrInvalidCredentials
		}
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	if !s.passwords.verify(u.Name, password, u.PasswordHash) {
		return nil, models.ErrInvalidCredentials
	}
	return &u, nil
}

// AuthenticateToken finds the active user holding a bearer token.
func (s *Accounts) AuthenticateToken(ctx context.Context, token string) (*models.User, error) {
	var u models.User
	h := HashToken(token)
	err := s.db.WithContext(ctx).Where("token_hash = ? AND active", h).Take(&u).Error
	if err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, models.ErrInvalidCredentials
		}
		return nil, fmt.Errorf("authenticate token: %w", err)
	}
	if u.TokenHash == nil || subtle.ConstantTimeCompare([]byte(*u.TokenHash), []byte(h)) != 1 {
		return nil, models.ErrInvalidCredentials
	}
	return &u, nil
}

// UserNameExists reports whether a user of that name exists (active or not).
func (s *Accounts) UserNameExists(ctx context.Context, name string) (bool, error) {
	var ok bool
	if err := s.db.WithContext(ctx).Raw("SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)", name).Scan(&ok).Error; err != nil {
		return false, fmt.Errorf("look for user %q: %w", name, err)
	}
	return ok, nil
}

// GetUser returns the user with id.
// Every page view calls it (the session's user), so it reads through pgx
// directly rather than GORM.
func (s *Accounts) GetUser(ctx context.Context, id int64) (*models.User, error) {
	var u models.User
	var found bool
	var rb pg.Batch
	pg.QueueRow(&rb, &u, &found, `SELECT * FROM users WHERE id = $1`, id)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("get user %d: %w", id, err)
	}
	if !found {
		return nil, fmt.Errorf("get user %d: %w", id, models.ErrNotFound)
	}
	return &u, nil
}

// ListUsers returns every user by name.
func (s *Accounts) ListUsers(ctx context.Context) ([]models.User, error) {
	var us []models.User
	if err := s.db.WithContext(ctx).Order("name").Find(&us).Error; err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return us, nil
}

// EndSessions invalidates every session cookie the user holds (logout).
func (s *Accounts) EndSessions(ctx context.Context, userID int64) error {
	err := s.db.WithContext(ctx).Exec("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?", userID).Error
	if err != nil {
		return fmt.Errorf("end sessions of user %d: %w", userID, err)
	}
	return nil
}
