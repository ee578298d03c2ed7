package designer_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/designer"
	"unifi/models/script"
	"unifi/models/store"
)

func TestScriptDesigner(t *testing.T) {
	t.Parallel()
	newDesigner := func(b *bundle) *designer.Designer {
		return designer.New(store.NewStore(b.db, account.New(b.db, nil), nil), nil)
	}

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		msgID := b.f.Messages["CreateIncident"].ID
		v1, err := designer.ConfigVersion(b.ctx, b.db)
		require.NoError(t, err)
		sc, err := d.SaveScript(b.ctx, b.f.Admin, msgID, script.StageToRequest, 0, "return {method: 'POST'};\n")
		require.NoError(t, err)
		require.EqualValues(t, 1, sc.Version)
		v2, err := designer.ConfigVersion(b.ctx, b.db)
		require.NoError(t, err)
		require.Greater(t, v2, v1, "a saved script notifies unifi_config: every server drops its cached configuration")
		sc, err = d.SaveScript(b.ctx, b.f.Admin, msgID, script.StageToRequest, 1, "return {method: 'PUT'};")
		require.NoError(t, err)
		require.EqualValues(t, 2, sc.Version)
		set, err := d.Scripts(b.ctx, b.f.Integration.ID)
		require.NoError(t, err)
		require.Equal(t, "return {method: 'PUT'};", set.Scripts[msgID][script.StageToRequest].Source)

		// Audited as the Designer audits: create, then the changed source and version.
		var acts []models.ActivityLog
		require.NoError(t, b.db.Where("record_type = 'message_script'").Order("id").Find(&acts).Error)
		require.Len(t, acts, 2)
		require.Equal(t, "create message_script", acts[0].Action)
		require.Equal(t, "CreateIncident / Stage to Request", acts[1].RecordLabel)
		require.Equal(t, "return {method: 'POST'};", acts[1].Before.V["source"])
		require.Equal(t, "return {method: 'PUT'};", acts[1].After.V["source"])

		// An edit of version 1 is refused now: someone saved version 2.
		_, err = d.SaveScript(b.ctx, b.f.Admin, msgID, script.StageToRequest, 1, "return {method: 'GET'};")
		var stale *designer.StaleVersionError
		require.ErrorAs(t, err, &stale)
		require.Equal(t, 2, stale.Current)
		require.Equal(t, []string{"source"}, fieldNames(stale.Changes))

		// A blank source removes the script.
		_, err = d.SaveScript(b.ctx, b.f.Admin, msgID, script.StageToRequest, 2, "  \n")
		require.NoError(t, err)
		set, err = d.Scripts(b.ctx, b.f.Integration.ID)
		require.NoError(t, err)
		require.Empty(t, set.Scripts[msgID])
		// ... and an edit of the removed one is refused, not re-created.
		_, err = d.SaveScript(b.ctx, b.f.Admin, msgID, script.StageToRequest, 2, "return {};")
		require.ErrorAs(t, err, &stale)
	})

	t.Run("SyntaxRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := newDesigner(b).SaveScript(b.ctx, b.f.Admin, b.f.Messages["CreateIncident"].ID, script.SourceToStage, 0,
			"const a = 1;\nreturn {a: };")
		var verr *models.ValidationError
		require.ErrorAs(t, err, &verr)
		require.Contains(t, verr.Fields["source"], `Script "CreateIncident / Source to Stage" line 2:`)
		var n int64
		require.NoError(t, b.db.Model(&models.MessageScript{}).Count(&n).Error)
		require.Zero(t, n)
	})

	t.Run("Variables", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		d := newDesigner(b)
		vars, err := designer.ParseVariables("project = OPS\n\ngroup_id=42\n")
		require.NoError(t, err)
		v1, err := designer.ConfigVersion(b.ctx, b.db)
		require.NoError(t, err)
		require.NoError(t, d.SetVariables(b.ctx, b.f.Admin, b.f.Connection.ID, nil, vars))
		v2, err := designer.ConfigVersion(b.ctx, b.db)
		require.NoError(t, err)
		require.Greater(t, v2, v1, "saved variables notify unifi_config")
		set, err := d.Scripts(b.ctx, b.f.Integration.ID)
		require.NoError(t, err)
		require.Len(t, set.Variables, 2)
		require.Equal(t, "group_id", set.Variables[0].Name)

		// Change one, drop the other, based on what was read.
		base := map[string]int{"group_id": 1, "project": 1}
		require.NoError(t, d.SetVariables(b.ctx, b.f.Admin, b.f.Connection.ID, base, map[string]string{"project": "SEC"}))
		// The same edit again is stale: project is at version 2, group_id is gone.
		err = d.SetVariables(b.ctx, b.f.Admin, b.f.Connection.ID, base, map[string]string{"project": "NET"})
		var stale *designer.StaleVersionError
		require.ErrorAs(t, err, &stale)
		set, err = d.Scripts(b.ctx, b.f.Integration.ID)
		require.NoError(t, err)
		require.Len(t, set.Variables, 1)
		require.Equal(t, "SEC", set.Variables[0].Value)
		require.Equal(t, 2, set.Variables[0].Version)

		for _, bad := range []string{"1bad=x", "noequals", "a=1\na=2"} {
			_, err := designer.ParseVariables(bad)
			var verr *models.ValidationError
			require.ErrorAs(t, err, &verr, bad)
			require.NotEmpty(t, verr.Fields["variables"])
		}
	})
}

func fieldNames(cs []designer.FieldChange) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Field
	}
	return out
}
