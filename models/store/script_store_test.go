package store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/modelstest"
	"unifi/models/script"
	"unifi/models/store"
)

func TestMessageScripts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (*store.Store, *modelstest.Fixture) {
		db := testdb.New(t)
		fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})
		return store.NewStore(db, account.New(db, nil), nil), fx
	}

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		msgID := fx.Messages["CreateIncident"].ID
		sc, err := s.SaveMessageScript(ctx, fx.Admin, msgID, script.StageToRequest, "return {method: 'POST'};\n")
		require.NoError(t, err)
		require.EqualValues(t, 1, sc.Version)
		sc, err = s.SaveMessageScript(ctx, fx.Admin, msgID, script.StageToRequest, "return {method: 'PUT'};")
		require.NoError(t, err)
		require.EqualValues(t, 2, sc.Version)
		list, err := s.ListMessageScripts(ctx, fx.Manager, msgID)
		require.NoError(t, err)
		require.Len(t, list, 1)
		require.Equal(t, "return {method: 'PUT'};", list[0].Source)
		var n int64
		require.NoError(t, s.DB(ctx).Model(&models.ActivityLog{}).Where("action = 'save message script'").Count(&n).Error)
		require.EqualValues(t, 2, n)

		// An empty source removes the script.
		_, err = s.SaveMessageScript(ctx, fx.Admin, msgID, script.StageToRequest, "  ")
		require.NoError(t, err)
		list, err = s.ListMessageScripts(ctx, fx.Admin, msgID)
		require.NoError(t, err)
		require.Empty(t, list)
	})

	t.Run("SyntaxRefused", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		_, err := s.SaveMessageScript(ctx, fx.Admin, fx.Messages["CreateIncident"].ID, script.SourceToStage,
			"const a = 1;\nreturn {a: };")
		var verr *models.ValidationError
		require.ErrorAs(t, err, &verr)
		require.Contains(t, verr.Fields["source"], `Script "CreateIncident / Source to Stage" line 2:`)
	})

	t.Run("Forbidden", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		_, err := s.SaveMessageScript(ctx, fx.Manager, fx.Messages["CreateIncident"].ID, script.SourceToStage, "return {};")
		var ferr *models.ForbiddenError
		require.ErrorAs(t, err, &ferr)
		_, err = s.ListMessageScripts(ctx, fx.Analyst, fx.Messages["CreateIncident"].ID)
		require.ErrorAs(t, err, &ferr)
		require.ErrorAs(t, s.SetConnectionVariables(ctx, fx.Manager, fx.Connection.ID, map[string]string{"a": "b"}), &ferr)
	})

	t.Run("Variables", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		require.NoError(t, s.SetConnectionVariables(ctx, fx.Admin, fx.Connection.ID,
			map[string]string{"project": "OPS", "group_id": "42"}))
		vars, err := s.ConnectionVariables(ctx, fx.Connection.ID)
		require.NoError(t, err)
		require.Equal(t, map[string]string{"project": "OPS", "group_id": "42"}, vars)
		var verr *models.ValidationError
		require.ErrorAs(t, s.SetConnectionVariables(ctx, fx.Admin, fx.Connection.ID, map[string]string{"1bad": "x"}), &verr)
	})
}
