package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

func TestConnectionSecretSealedAtRest(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	key := bytes.Repeat([]byte{42}, 32)
	st := store.NewStore(db, account.New(db, nil), &store.StoreOpts{SecretKey: key})
	_, err := st.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	in, err := st.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)

	var raw string
	require.NoError(t, db.Raw("SELECT auth_secret FROM connections WHERE integration_id = ?", in.ID).Scan(&raw).Error)
	require.NotContains(t, raw, models.DemoPeerToken, "the token is not stored in clear")
	require.Regexp(t, `^v1:`, raw)

	conn, err := st.ActiveConnection(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, models.DemoPeerToken, conn.AuthSecret)

	other := store.NewStore(db, account.New(db, nil), &store.StoreOpts{SecretKey: bytes.Repeat([]byte{7}, 32)})
	_, err = other.ActiveConnection(ctx, in.ID)
	require.ErrorContains(t, err, "was SECRET_KEY changed?")
}
