package account

import (
	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// SetUserRole changes a user's role. Admins cannot demote themselves, so there
// is always someone who can manage users.
func (s *Accounts) SetUserRole(ctx context.Context, actor models.Actor, id int64, role models.Role) (*models.User, error) {
	if err := models.RoleMay(actor.Role, models.ActionManageUsers); err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, &models.ValidationError{Fields: map[string]string{"role": "Choose admin, manager, analyst or integration."}}
	}
	if id == actor.UserID && role != models.RoleAdmin {
		return nil, &models.ConflictError{Reason: "You cannot take the Admin role from yourself; ask another admin."}
	}
	var u models.User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&u, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("user %d", id))
		}
		before := u.Role
		if before == role {
			return nil
		}
		// Bumping the session epoch logs the user out everywhere: the new role applies at once.
		if err := tx.Model(&u).Updates(map[string]any{"role": role, "session_epoch": gorm.Expr("session_epoch + 1"),
			"updated_at": gorm.Expr("now()")}).Error; err != nil {
			return err
		}
		u.Role = role
		return pg.LogActivity(tx, actor, "set role", "user", u.ID, u.Name, map[string]any{"role": before},
			map[string]any{"role": role})
	})
	if err != nil {
		return nil, fmt.Errorf("set role of user %d: %w", id, err)
	}
	return &u, nil
}

// ResetPassword sets a new password for a user and ends their sessions.
func (s *Accounts) ResetPassword(ctx context.Context, actor models.Actor, id int64, password string) error {
	if err := models.RoleMay(actor.Role, models.ActionManageUsers); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return &models.ValidationError{Fields: map[string]string{"password": err.Error()}}
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var u models.User
		if err := tx.Take(&u, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("user %d", id))
		}
		if err := tx.Model(&u).Updates(map[string]any{"password_hash": string(hash),
			"session_epoch": gorm.Expr("session_epoch + 1"), "updated_at": gorm.Expr("now()")}).Error; err != nil {
			return err
		}
		return pg.LogActivity(tx, actor, "reset password", "user", u.ID, u.Name, nil, nil)
	})
	if err != nil {
		return fmt.Errorf("reset password of user %d: %w", id, err)
	}
	return nil
}

// SetUserActive enables or disables a user's login.
func (s *Accounts) SetUserActive(ctx context.Context, actor models.Actor, id int64, active bool) (*models.User, error) {
	if err := models.RoleMay(actor.Role, models.ActionManageUsers); err != nil {
		return nil, err
	}
	if id == actor.UserID && !active {
		return nil, &models.ConflictError{Reason: "You cannot disable your own account."}
	}
	var u models.User
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := tx.Take(&u, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("user %d", id))
		}
		if u.Active == active {
			return nil
		}
		if err := tx.Model(&u).Updates(map[string]any{"active": active, "session_epoch": gorm.Expr("session_epoch + 1"),
			"updated_at": gorm.Expr("now()")}).Error; err != nil {
			return err
		}
		u.Active = active
		action := "disable user"
		if active {
			action = "enable user"
		}
		return pg.LogActivity(tx, actor, action, "user", u.ID, u.Name, map[string]any{"active": !active},
			map[string]any{"active": active})
	})
	if err != nil {
		return nil, fmt.Errorf("set user %d active: %w", id, err)
	}
	return &u, nil
}
