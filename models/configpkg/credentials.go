package configpkg

import (
	"context"
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// maxSecret bounds a secret's length (an OAuth client secret or a JWT fits).
const maxSecret = 4000

// Credentials are what a package leaves out of a connection: the outbound
// secret (password, token or client secret), the inbound account the remote
// system calls us with, and whether the connection is the active one.
type Credentials struct {
	Secret        string // "" keeps the stored secret
	InboundUserID int64  // 0 keeps the stored account
	Activate      bool
}

// ConnectionStatus is a connection as the credentials page shows it.
type ConnectionStatus struct {
	Connection  models.Connection // AuthSecret is blanked: never shown back
	HasSecret   bool
	InboundUser string // the inbound account's name, or ""
}

// NeedsSecret reports whether the connection's auth type needs a secret it
// does not have yet.
func (c ConnectionStatus) NeedsSecret() bool {
	return c.Connection.AuthType != models.AuthNone && !c.HasSecret
}

// Connections lists an integration's connections for the credentials page.
func (s *Service) Connections(ctx context.Context, integrationID int64) ([]ConnectionStatus, error) {
	var conns []models.Connection
	if err := s.db.WithContext(ctx).Where("integration_id = ?", integrationID).Order("name").Find(&conns).Error; err != nil {
		return nil, fmt.Errorf("list connections of integration %d: %w", integrationID, err)
	}
	out := make([]ConnectionStatus, len(conns))
	for i, c := range conns {
		out[i] = ConnectionStatus{Connection: c, HasSecret: c.AuthSecret != ""}
		out[i].Connection.AuthSecret = ""
		if c.InboundUserID != nil {
			var u models.User
			if err := s.db.WithContext(ctx).Select("name").Take(&u, *c.InboundUserID).Error; err == nil {
				out[i].InboundUser = u.Name
			}
		}
	}
	return out, nil
}

// InboundAccounts lists the accounts a connection may take as its inbound
// account: active integration users.
func (s *Service) InboundAccounts(ctx context.Context) ([]models.User, error) {
	var out []models.User
	if err := s.db.WithContext(ctx).Select("id, name").Where("role = ? AND active", models.RoleIntegration).
		Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list inbound accounts: %w", err)
	}
	return out, nil
}

// SetCredentials gives a connection its secret and inbound account and, when
// asked, makes it the integration's active connection (the others become
// inactive in the same database transaction). The activity log says which
// changed, never the secret.
func (s *Service) SetCredentials(ctx context.Context, actor models.Actor, connectionID int64, c Credentials) (*models.Connection, error) {
	var conn *models.Connection
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		conn, err = s.setCredentialsTx(tx, actor, connectionID, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

func (s *Service) setCredentialsTx(tx *gorm.DB, actor models.Actor, connectionID int64, c Credentials) (*models.Connection, error) {
	var conn models.Connection
	if err := tx.Take(&conn, connectionID).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("connection %d", connectionID))
	}
	ve := &models.ValidationError{}
	if p := models.TextProblem(c.Secret); p != "" {
		ve.Add("secret", p)
	} else if len(c.Secret) > maxSecret {
		ve.Add("secret", fmt.Sprintf("The secret is longer than %d characters.", maxSecret))
	}
	if c.InboundUserID != 0 {
		var n int64
		if err := tx.Model(&models.User{}).Where("id = ? AND role = ? AND active", c.InboundUserID, models.RoleIntegration).
			Count(&n).Error; err != nil {
			return nil, fmt.Errorf("check inbound account: %w", err)
		}
		if n == 0 {
			ve.Add("inbound_user_id", "Choose an active integration account.")
		}
	}
	if c.Activate && conn.AuthType != models.AuthNone && c.Secret == "" && conn.AuthSecret == "" {
		ve.Add("secret", fmt.Sprintf("This connection uses %s authentication: give its secret before activating it.", conn.AuthType))
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	after := map[string]any{}
	cols := map[string]any{"updated_at": now}
	if c.Secret != "" {
		cols["auth_secret"] = s.seal(c.Secret)
		after["secret"] = "changed"
	}
	if c.InboundUserID != 0 && (conn.InboundUserID == nil || *conn.InboundUserID != c.InboundUserID) {
		cols["inbound_user_id"] = c.InboundUserID
		after["inbound_user_id"] = c.InboundUserID
	}
	if c.Activate && !conn.Active {
		// Two statements: the unique index on the active connection is
		// checked row by row, so the old one goes first.
		if err := tx.Model(&models.Connection{}).Where("integration_id = ? AND active", conn.IntegrationID).
			Updates(map[string]any{"active": false, "updated_at": now}).Error; err != nil {
			return nil, fmt.Errorf("deactivate connections: %w", err)
		}
		cols["active"] = true
		after["active"] = true
	}
	if len(after) == 0 {
		return nil, &models.ValidationError{Fields: map[string]string{"secret": "Nothing to save: give a secret, choose an inbound account or activate the connection."}}
	}
	if err := tx.Model(&conn).Updates(cols).Error; err != nil {
		return nil, fmt.Errorf("set credentials of connection %d: %w", conn.ID, err)
	}
	if err := pg.LogActivity(tx, actor, "set connection credentials", "connection", conn.ID, conn.Name, nil, after); err != nil {
		return nil, err
	}
	conn.AuthSecret = ""
	return &conn, nil
}

// ConnectionIntegration returns the id of the integration a connection
// belongs to.
func (s *Service) ConnectionIntegration(ctx context.Context, connectionID int64) (int64, error) {
	var c models.Connection
	if err := s.db.WithContext(ctx).Select("integration_id").Take(&c, connectionID).Error; err != nil {
		return 0, pg.NotFound(err, fmt.Sprintf("connection %d", connectionID))
	}
	return c.IntegrationID, nil
}
