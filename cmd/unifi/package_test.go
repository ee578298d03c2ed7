package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// TestPackageCommands runs the built binary: export from instance A, a dry
// run and an import into an empty B, export from B gives the same bytes; a
// broken document is refused with its place named and nothing stored.
func TestPackageCommands(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "unifi")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	urlA, urlB := testdb.URL(t), testdb.URL(t)
	dbA := testdb.Open(t, urlA)
	_, err = store.NewStore(dbA, account.New(dbA, nil), nil).SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	dataDir := t.TempDir()
	unifi := func(dbURL string, args ...string) (string, string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "DATABASE_URL="+dbURL, "DATA_DIR="+dataDir)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	docA, errOut, err := unifi(urlA, "package", "export", models.DemoIntegrationName)
	require.NoError(t, err, errOut)
	require.Contains(t, docA, `"format": 1`)
	file := filepath.Join(t.TempDir(), "demo.json")
	require.NoError(t, os.WriteFile(file, []byte(docA), 0o600))

	planOut, errOut, err := unifi(urlB, "package", "import", "--dry-run", file)
	require.NoError(t, err, errOut)
	require.Contains(t, planOut, "create  integration demo")
	require.Contains(t, planOut, "create  message CreateIncident")
	require.Contains(t, planOut, "Dry run: nothing was stored.")
	dbB := testdb.Open(t, urlB)
	var n int64
	require.NoError(t, dbB.Table("integrations").Count(&n).Error)
	require.Zero(t, n)

	importOut, errOut, err := unifi(urlB, "package", "import", file)
	require.NoError(t, err, errOut)
	require.Contains(t, importOut, "Imported integration demo:")
	require.Contains(t, importOut, "stay inactive until their credentials are given")
	docB, errOut, err := unifi(urlB, "package", "export", models.DemoIntegrationName)
	require.NoError(t, err, errOut)
	require.Equal(t, docA, docB, "export B = export A")

	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, bytes.Replace([]byte(docA), []byte(`"name": "demo"`), []byte(`"name": "other", "colour": 1`), 1), 0o600))
	_, errOut, err = unifi(urlB, "package", "import", bad)
	require.Error(t, err)
	require.Contains(t, errOut, "integration.colour: unknown key")
	require.NoError(t, dbB.Table("integrations").Count(&n).Error)
	require.EqualValues(t, 1, n, "nothing stored")

	_, errOut, err = unifi(urlB, "package", "export", "nope")
	require.Error(t, err)
	require.Contains(t, errOut, `there is no integration called "nope"`)
}
