package designer_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/designer"
	"unifi/models/modelstest"
)

func TestDiff(t *testing.T) {
	t.Parallel()
	a := models.Connection{Name: "Prod", EndpointURL: "http://a", AuthSecret: "v1:old", Active: true}
	tests := []struct {
		name         string
		change       func(c *models.Connection)
		before, afer map[string]any
	}{
		{"NoChange", func(*models.Connection) {}, nil, nil},
		{"Plain", func(c *models.Connection) { c.EndpointURL = "http://b" },
			map[string]any{"endpoint_url": "http://a"}, map[string]any{"endpoint_url": "http://b"}},
		{"SecretShownAsChanged", func(c *models.Connection) { c.AuthSecret = "v1:new" },
			map[string]any{"auth_secret": "changed"}, map[string]any{"auth_secret": "changed"}},
		{"PointerAndBool", func(c *models.Connection) { c.InboundUserID = modelstest.Ptr[int64](7); c.Active = false },
			map[string]any{"inbound_user_id": nil, "active": true}, map[string]any{"inbound_user_id": int64(7), "active": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := a
			tc.change(&b)
			before, after := designer.Diff(&a, &b)
			require.Equal(t, tc.before, before)
			require.Equal(t, tc.afer, after)
		})
	}
	snap := designer.Snapshot(&a)
	require.Equal(t, "set", snap["auth_secret"])
	require.NotContains(t, snap, "id")
}

type bundle struct {
	ctx context.Context
	db  *gorm.DB
	f   *modelstest.Fixture
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	db := testdb.New(t)
	return &bundle{ctx: ctx, db: db, f: modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})}
}

func TestUpdate(t *testing.T) {
	t.Parallel()
	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		in := b.f.Integration
		require.Equal(t, 1, in.Version)
		in.RetryLimit, in.Description = 7, "new words"
		require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &in) }))
		require.Equal(t, 2, in.Version)
		var got models.Integration
		require.NoError(t, b.db.Take(&got, in.ID).Error)
		require.Equal(t, 7, got.RetryLimit)
		require.Equal(t, 2, got.Version)
		require.True(t, got.UpdatedAt.After(b.f.Integration.UpdatedAt), "updated_at moves: the engine's OAuth2 token source follows it")
		var logs []models.ActivityLog
		require.NoError(t, b.db.Where("record_type = 'integration' AND record_id = ?", in.ID).Find(&logs).Error)
		require.Len(t, logs, 1)
		require.Equal(t, "update integration", logs[0].Action)
		require.Equal(t, b.f.Admin.Name, logs[0].UserName)
		require.Equal(t, "127.0.0.1", logs[0].RemoteAddr)
		require.Equal(t, map[string]any{"retry_limit": float64(3), "description": "", "version": float64(1)}, logs[0].Before.V)
		require.Equal(t, map[string]any{"retry_limit": float64(7), "description": "new words", "version": float64(2)}, logs[0].After.V)
	})
	t.Run("NoChangeWritesNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		in := b.f.Integration
		require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &in) }))
		require.Equal(t, 1, in.Version)
		var n int64
		require.NoError(t, b.db.Model(&models.ActivityLog{}).Where("record_type = 'integration'").Count(&n).Error)
		require.Zero(t, n)
	})
	t.Run("Stale", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		theirs, yours := b.f.Integration, b.f.Integration
		theirs.RetryLimit = 9
		require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &theirs) }))
		yours.RetryLimit, yours.Description = 5, "mine"
		err := b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &yours) })
		var se *designer.StaleVersionError
		require.ErrorAs(t, err, &se)
		require.True(t, errors.Is(err, models.ErrConflict))
		require.Equal(t, 1, se.Base)
		require.Equal(t, 2, se.Current)
		require.Equal(t, []designer.FieldChange{{Field: "retry_limit", Theirs: "9", Yours: "5"}}, se.Changes)
		var got models.Integration
		require.NoError(t, b.db.Take(&got, theirs.ID).Error)
		require.Equal(t, 9, got.RetryLimit)
		require.Empty(t, got.Description, "nothing of the refused edit is stored")
	})
	t.Run("StaleSecretNeverShown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		theirs, yours := b.f.Connection, b.f.Connection
		theirs.AuthSecret = "v1:their-sealed-secret"
		require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &theirs) }))
		yours.AuthSecret = "v1:my-sealed-secret"
		err := b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &yours) })
		var se *designer.StaleVersionError
		require.ErrorAs(t, err, &se)
		require.Equal(t, []designer.FieldChange{{Field: "auth_secret", Theirs: "changed", Yours: "(not shown)"}}, se.Changes)
		require.NotContains(t, se.Error(), "sealed")
		var logs []models.ActivityLog
		require.NoError(t, b.db.Where("record_type = 'connection'").Find(&logs).Error)
		require.Len(t, logs, 1)
		require.Equal(t, "changed", logs[0].After.V["auth_secret"])
	})
	t.Run("Deleted", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.f.Connection
		require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Delete(tx, b.f.Admin, 1, &c) }))
		c.Name = "again"
		err := b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &c) })
		var se *designer.StaleVersionError
		require.ErrorAs(t, err, &se)
		require.Zero(t, se.Current)
		require.Contains(t, se.Error(), "deleted")
	})
}

func TestCreateDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	c := models.Connection{IntegrationID: b.f.Integration.ID, Name: "Second", Environment: "Test",
		EndpointURL: "http://127.0.0.1:9", AuthType: models.AuthBearer, AuthSecret: "v1:sealed"}
	require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Create(tx, b.f.Admin, &c) }))
	require.NotZero(t, c.ID)
	require.Equal(t, 1, c.Version)
	err := b.db.Transaction(func(tx *gorm.DB) error { return designer.Delete(tx, b.f.Admin, 3, &c) })
	var se *designer.StaleVersionError
	require.ErrorAs(t, err, &se)
	require.NoError(t, b.db.Transaction(func(tx *gorm.DB) error { return designer.Delete(tx, b.f.Admin, 1, &c) }))
	var logs []models.ActivityLog
	require.NoError(t, b.db.Where("record_type = 'connection' AND record_id = ?", c.ID).Order("id").Find(&logs).Error)
	require.Len(t, logs, 2)
	require.Equal(t, "create connection", logs[0].Action)
	require.Equal(t, "set", logs[0].After.V["auth_secret"])
	require.Equal(t, "delete connection", logs[1].Action)
	require.Equal(t, "Second", logs[1].Before.V["name"])
}

// TestConfigVersion: every statement changing configuration counts the
// version up and notifies ConfigChannel, whoever runs it.
func TestConfigVersion(t *testing.T) {
	t.Parallel()
	b := setup(t)
	v1, err := designer.ConfigVersion(b.ctx, b.db)
	require.NoError(t, err)
	require.NoError(t, b.db.Exec(`UPDATE integrations SET retry_limit = 1`).Error)
	v2, err := designer.ConfigVersion(b.ctx, b.db)
	require.NoError(t, err)
	require.Equal(t, v1+1, v2)
	require.NoError(t, b.db.Exec(`UPDATE integrations SET status = 'Up'`).Error)
	v3, err := designer.ConfigVersion(b.ctx, b.db)
	require.NoError(t, err)
	require.Equal(t, v2, v3, "an integration's status is not configuration")
	// A process's own fields are configuration (migration 00210).
	require.NoError(t, b.db.Exec(`INSERT INTO process_fields (process_id, name, label, type)
		SELECT id, 'risk', 'Risk', 'text' FROM processes ORDER BY id LIMIT 1`).Error)
	v4, err := designer.ConfigVersion(b.ctx, b.db)
	require.NoError(t, err)
	require.Equal(t, v3+1, v4, "a process field change notifies")
}

// TestUpdateConcurrent: edits based on the same version, saved at once,
// from separate connections: exactly one is stored; every other is told
// the record changed meanwhile.
func TestUpdateConcurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			in := b.f.Integration
			in.RetryLimit = 10 + i
			errs <- b.db.Transaction(func(tx *gorm.DB) error { return designer.Update(tx, b.f.Admin, 1, &in) })
		}()
	}
	won, stale := 0, 0
	for range n {
		err := <-errs
		var se *designer.StaleVersionError
		switch {
		case err == nil:
			won++
		case errors.As(err, &se):
			stale++
			require.Equal(t, "retry_limit", se.Changes[0].Field)
		default:
			t.Fatalf("unexpected error: %v", err)
		}
	}
	require.Equal(t, 1, won)
	require.Equal(t, n-1, stale)
	var got models.Integration
	require.NoError(t, b.db.Take(&got, b.f.Integration.ID).Error)
	require.Equal(t, 2, got.Version)
	var entries int64
	require.NoError(t, b.db.Model(&models.ActivityLog{}).Where("record_type = 'integration'").Count(&entries).Error)
	require.Equal(t, int64(1), entries)
}
