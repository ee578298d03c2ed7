package configpkg_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/configpkg"
)

// TestScriptsTravel: a message's scripts and a connection's variables are in
// the package, come back byte for byte from an import into an empty instance,
// and a changed script is a new version of it there; a script that does not
// compile is refused before anything is stored.
func TestScriptsTravel(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a, b := setup(t, true), setup(t, false)
	require.NoError(t, a.db.Exec(`INSERT INTO message_scripts (message_id, point, source)
		SELECT id, 'stage_to_request', 'return {method: "PATCH", path: "/x/" + bond.external_reference};' FROM messages WHERE name = 'UpdateIncident'`).Error)
	require.NoError(t, a.db.Exec(`INSERT INTO connection_variables (connection_id, name, value) SELECT id, 'group', 'Service Desk' FROM connections`).Error)
	docA := export(t, a, models.DemoIntegrationName)
	require.Contains(t, string(docA), `"stage_to_request": "return {method: \"PATCH\"`)
	require.Contains(t, string(docA), `"group": "Service Desk"`)

	d, err := configpkg.DecodeBytes(docA)
	require.NoError(t, err)
	_, err = b.pkg.ApplyPlanned(ctx, admin, d)
	require.NoError(t, err)
	require.Equal(t, string(docA), string(export(t, b, models.DemoIntegrationName)))

	for i := range d.Messages {
		if d.Messages[i].Name == "UpdateIncident" {
			d.Messages[i].Scripts["stage_to_request"] = "return {method: 'PUT'};"
		}
	}
	plan, err := b.pkg.Plan(ctx, d)
	require.NoError(t, err)
	require.Equal(t, 1, plan.Count(configpkg.Change), "%+v", plan.Steps)
	_, err = b.pkg.Apply(ctx, admin, d, plan.Digest)
	require.NoError(t, err)
	var sc models.MessageScript
	require.NoError(t, b.db.Take(&sc).Error)
	require.Equal(t, "return {method: 'PUT'};", sc.Source)
	require.EqualValues(t, 2, sc.Version, "a changed script is a new version: every process compiles it again")

	for i := range d.Messages {
		if d.Messages[i].Name == "UpdateIncident" {
			d.Messages[i].Scripts["stage_to_request"] = "return {a: };"
			d.Messages[i].Scripts["nonsense"] = "return 1;"
		}
	}
	raw, err := configpkg.Encode(d)
	require.NoError(t, err)
	_, err = configpkg.DecodeBytes(raw)
	var perr *configpkg.Error
	require.ErrorAs(t, err, &perr)
	require.Contains(t, perr.Error(), `scripts["nonsense"]: "nonsense" is not a script point`)
	require.Contains(t, perr.Error(), `Script "UpdateIncident / Stage to Request" line 1`)
}
