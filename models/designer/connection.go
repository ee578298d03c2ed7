package designer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/pg"
)

// Connections lists an integration's connections, the active one first.
// Secrets stay sealed: nothing here shows them.
func (d *Designer) Connections(ctx context.Context, integrationID int64) ([]models.Connection, error) {
	var out []models.Connection
	if err := d.store.DB(ctx).Where("integration_id = ?", integrationID).Order("active DESC, name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list connections of integration %d: %w", integrationID, err)
	}
	return out, nil
}

// Connection returns one connection, its secret still sealed.
func (d *Designer) Connection(ctx context.Context, id int64) (*models.Connection, error) {
	var c models.Connection
	if err := d.store.DB(ctx).Take(&c, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("connection %d", id))
	}
	return &c, nil
}

// CheckEndpoint refuses an address whose host resolves to a link-local or
// metadata address (Forbidden), unless the operator allows it. A host that
// does not resolve now is accepted: it may resolve where the engine runs,
// and the engine's dialer checks again on every connection.
func (d *Designer) CheckEndpoint(ctx context.Context, raw string) string {
	if d.opts.AllowLinkLocal {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	var ips []net.IP
	if ip := net.ParseIP(host); ip != nil {
		ips = []net.IP{ip}
	} else {
		rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupIPAddr(rctx, host)
		if err != nil {
			return ""
		}
		for _, a := range addrs {
			ips = append(ips, a.IP)
		}
	}
	for _, ip := range ips {
		if Forbidden(ip) {
			return fmt.Sprintf("%s resolves to %s, a link-local or cloud metadata address; such endpoints are refused unless the operator sets ALLOW_LINK_LOCAL_ENDPOINTS=true.", host, ip)
		}
	}
	return ""
}

// checkAddresses runs CheckEndpoint on the connection's addresses.
func (d *Designer) checkAddresses(ctx context.Context, c *models.Connection) error {
	var ve models.ValidationError
	if msg := d.CheckEndpoint(ctx, c.EndpointURL); msg != "" {
		ve.Add("endpoint_url", msg)
	}
	if c.AuthType == models.AuthOAuth2 {
		if msg := d.CheckEndpoint(ctx, c.OAuthTokenURL); msg != "" {
			ve.Add("oauth_token_url", msg)
		}
	}
	return ve.Err()
}

// connectionNameTaken turns a unique violation into the message next to the name.
func connectionNameTaken(err error, name string) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("This integration already has a connection named %q.", name)}}
	}
	return err
}

// CreateConnection adds a connection to an integration. The first
// connection of an integration becomes its active one.
func (d *Designer) CreateConnection(ctx context.Context, actor models.Actor, integrationID int64, f ConnectionForm) (*models.Connection, error) {
	c := &models.Connection{IntegrationID: integrationID}
	secret, _, err := ParseConnection(f, c, false)
	if err != nil {
		return nil, err
	}
	if err := d.checkAddresses(ctx, c); err != nil {
		return nil, err
	}
	c.AuthSecret = d.store.SealSecret(secret)
	err = d.Tx(ctx, func(tx *gorm.DB) error {
		var in models.Integration
		if err := tx.Take(&in, integrationID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", integrationID))
		}
		var active int64
		if err := tx.Model(&models.Connection{}).Where("integration_id = ? AND active", integrationID).Count(&active).Error; err != nil {
			return fmt.Errorf("count active connections: %w", err)
		}
		c.Active = active == 0
		return connectionNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, c) }), c.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("create connection: %w", err)
	}
	return c, nil
}

// UpdateConnection saves an edited connection at version base. An empty
// secret keeps the stored one.
func (d *Designer) UpdateConnection(ctx context.Context, actor models.Actor, id int64, base int, f ConnectionForm) (*models.Connection, error) {
	var c models.Connection
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&c, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("connection %d", id))
		}
		secret, keep, err := ParseConnection(f, &c, c.AuthSecret != "")
		if err != nil {
			return err
		}
		if err := d.checkAddresses(ctx, &c); err != nil {
			return err
		}
		switch {
		case c.AuthType == models.AuthNone:
			c.AuthSecret = ""
		case !keep:
			c.AuthSecret = d.store.SealSecret(secret)
		}
		return connectionNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &c) }), c.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("update connection %d: %w", id, err)
	}
	return &c, nil
}

// activateSQL makes $1 the only active connection of integration $2 in one
// statement: the one-active constraint is deferrable, so it is checked when
// the statement ends (migration 00170). Only rows that change are touched.
const activateSQL = `UPDATE connections SET active = (id = ?), version = version + 1, updated_at = now()
	WHERE integration_id = ? AND (active OR id = ?) AND active <> (id = ?)
	RETURNING id, name, active, version`

// ActivateConnection makes a connection (at version base) its
// integration's active one, deactivating the others in the same statement.
// The engine and the inbound API of every server use it from their next
// transaction.
func (d *Designer) ActivateConnection(ctx context.Context, actor models.Actor, id int64, base int) (*models.Connection, error) {
	var c models.Connection
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Take(&c, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("connection %d", id))
		}
		if c.Version != base {
			return stale(tx, "connection", c.Name, id, base, &c, &c)
		}
		if c.Active {
			return &models.ConflictError{Reason: fmt.Sprintf("Connection %s is already the active one.", c.Name)}
		}
		var rows []struct {
			ID      int64
			Name    string
			Active  bool
			Version int
		}
		if err := tx.Raw(activateSQL, id, c.IntegrationID, id, id).Scan(&rows).Error; err != nil {
			return fmt.Errorf("activate: %w", err)
		}
		for _, r := range rows {
			if err := pg.LogActivity(tx, actor, "update connection", "connection", r.ID, r.Name,
				map[string]any{"active": !r.Active, "version": r.Version - 1}, map[string]any{"active": r.Active, "version": r.Version}); err != nil {
				return err
			}
			if r.ID == id {
				c.Active, c.Version = r.Active, r.Version
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("activate connection %d: %w", id, err)
	}
	return &c, nil
}

// DeleteConnection deletes a connection that is not the active one.
func (d *Designer) DeleteConnection(ctx context.Context, actor models.Actor, id int64, base int) error {
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var c models.Connection
		if err := tx.Take(&c, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("connection %d", id))
		}
		if c.Active {
			return &models.ConflictError{Reason: fmt.Sprintf("Connection %s is the active one: activate another connection first, so the integration keeps working.", c.Name)}
		}
		return Delete(tx, actor, base, &c)
	})
	if err != nil {
		return fmt.Errorf("delete connection %d: %w", id, err)
	}
	return nil
}

var unsafeUserName = regexp.MustCompile(`[^A-Za-z0-9_.@-]`)

// newToken is a fresh bearer token: 32 random bytes, URL-safe.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return "unifi_" + base64.RawURLEncoding.EncodeToString(b)
}

// RotateInboundToken gives the connection's inbound account (created on
// first use: an integration-role user the remote system calls us as) a new
// bearer token and returns it. Only its hash is stored: the caller shows
// the token once. The old token stops working when this commits, on every
// server (the inbound configuration version and the user cache follow the
// users table).
func (d *Designer) RotateInboundToken(ctx context.Context, actor models.Actor, id int64, base int) (string, *models.Connection, error) {
	token := newToken()
	hash := account.HashToken(token)
	var c models.Connection
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&c, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("connection %d", id))
		}
		if c.Version != base {
			return stale(tx, "connection", c.Name, id, base, &c, &c)
		}
		if c.InboundUserID != nil {
			var u models.User
			if err := tx.Take(&u, *c.InboundUserID).Error; err != nil {
				return pg.NotFound(err, fmt.Sprintf("inbound account of connection %d", id))
			}
			if err := tx.Model(&u).Updates(map[string]any{"token_hash": hash, "active": true}).Error; err != nil {
				return fmt.Errorf("rotate token: %w", err)
			}
			return pg.LogActivity(tx, actor, "rotate inbound token", "connection", c.ID, c.Name,
				map[string]any{"inbound_token": SecretSet}, map[string]any{"inbound_token": SecretChanged, "inbound_account": u.Name})
		}
		var in models.Integration
		if err := tx.Take(&in, c.IntegrationID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", c.IntegrationID))
		}
		name := unsafeUserName.ReplaceAllString(fmt.Sprintf("%s-%s-inbound", in.Name, strings.ToLower(c.Name)), "-")
		if len(name) > 52 {
			name = name[:52]
		}
		name = fmt.Sprintf("%s-%d", name, c.ID)
		// The password hash "!" matches no password: the account can only use its token.
		u := models.User{Name: name, Role: models.RoleIntegration, PasswordHash: "!", TokenHash: &hash, Active: true}
		if err := tx.Create(&u).Error; err != nil {
			if pg.IsUniqueViolation(err) {
				return &models.ConflictError{Reason: fmt.Sprintf("A user named %s already exists; rename it and try again.", name)}
			}
			return fmt.Errorf("create inbound account: %w", err)
		}
		if err := pg.LogActivity(tx, actor, "create user", "user", u.ID, u.Name, nil, map[string]any{"role": u.Role}); err != nil {
			return err
		}
		c.InboundUserID = &u.ID
		if err := Update(tx, actor, base, &c); err != nil {
			return err
		}
		return pg.LogActivity(tx, actor, "rotate inbound token", "connection", c.ID, c.Name,
			map[string]any{"inbound_token": SecretEmpty}, map[string]any{"inbound_token": SecretSet, "inbound_account": u.Name})
	})
	if err != nil {
		return "", nil, fmt.Errorf("rotate inbound token of connection %d: %w", id, err)
	}
	return token, &c, nil
}

// InboundAccount names the connection's inbound account, or "".
func (d *Designer) InboundAccount(ctx context.Context, c *models.Connection) (string, error) {
	if c.InboundUserID == nil {
		return "", nil
	}
	var u models.User
	if err := d.store.DB(ctx).Select("name").Take(&u, *c.InboundUserID).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return "", nil
		}
		return "", fmt.Errorf("inbound account of connection %d: %w", c.ID, err)
	}
	return u.Name, nil
}
