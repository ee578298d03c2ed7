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

func TestMessageScriptDryRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	setup := func(t *testing.T) (*store.Store, *modelstest.Fixture) {
		db := testdb.New(t)
		fx := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})
		return store.NewStore(db, account.New(db, nil), nil), fx
	}

	t.Run("TestButton", func(t *testing.T) {
		t.Parallel()
		s, fx := setup(t)
		require.NoError(t, s.DB(ctx).Create(&models.ConnectionVariable{ConnectionID: fx.Connection.ID, Name: "project", Value: "OPS"}).Error)
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
