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

	t.Run("TestButton", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		require.NoError(t, s.SetConnectionVariables(ctx, fx.Admin, fx.Connection.ID, map[string]string{"project": "OPS"}))
		tk, err := s.CreateTicket(ctx, fx.Analyst, store.TicketInput{ShortDescription: "Disk full", Priority: 1})
		require.NoError(t, err)
		var tr models.Transaction
		require.NoError(t, s.DB(ctx).Where("ticket_id = ?", tk.ID).Take(&tr).Error)
		var before int64
		require.NoError(t, s.DB(ctx).Model(&models.HTTPRequest{}).Count(&before).Error)

		res, err := s.TestMessageScript(ctx, fx.Admin, fx.Messages["CreateIncident"].ID, script.StageToRequest,
			"log('for', ticket.number);\nreturn {path: '/issue', body: {summary: stage.short_description, project: vars.project}};", tr.Number)
		require.NoError(t, err)
		require.Empty(t, res.Error)
		require.JSONEq(t, `{"path": "/issue", "body": {"summary": "Disk full", "project": "OPS"}}`, res.Result)
		require.Equal(t, []string{"for " + tk.Number}, res.Logs)
		require.Positive(t, res.Duration)

		res, err = s.TestMessageScript(ctx, fx.Admin, fx.Messages["CreateIncident"].ID, script.StageToRequest,
			"let x = 1;\nwhile (true) { x++; }", tr.Number)
		require.NoError(t, err)
		require.Contains(t, res.Error, `Script "CreateIncident / Stage to Request" line 2: ran longer than the limit`)

		var after int64
		require.NoError(t, s.DB(ctx).Model(&models.HTTPRequest{}).Count(&after).Error)
		require.Equal(t, before, after, "a dry run stores nothing")
		var scripts int64
		require.NoError(t, s.DB(ctx).Model(&models.MessageScript{}).Count(&scripts).Error)
		require.Zero(t, scripts)

		_, err = s.TestMessageScript(ctx, fx.Manager, fx.Messages["CreateIncident"].ID, script.StageToRequest, "return {};", tr.Number)
		var ferr *models.ForbiddenError
		require.ErrorAs(t, err, &ferr)
	})
}
