package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/pgcluster"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/pg"
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
	require.Contains(t, docA, `"format": 3`)
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

// TestPackageCommandsPrivateDatabase: with DATABASE_URL unset the commands
// use the private database of `make run` in DATA_DIR: the running cluster
// when there is one (left running), and a clear error when there is none.
func TestPackageCommandsPrivateDatabase(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin := filepath.Join(t.TempDir(), "unifi")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	env := func(dataDir string) []string {
		var e []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "DATABASE_URL=") {
				e = append(e, kv)
			}
		}
		return append(e, "DATA_DIR="+dataDir)
	}

	empty := t.TempDir()
	cmd := exec.Command(bin, "package", "export", "demo")
	cmd.Env = env(empty)
	out, err = cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "DATABASE_URL is not set and there is no private database of 'make run' in "+filepath.Join(empty, "pg"))

	dataDir := t.TempDir()
	cl, err := pgcluster.Start(ctx, pgcluster.Opts{Dir: filepath.Join(dataDir, "pg"), Database: "unifi", Fast: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cl.Remove(context.Background()) })
	db, err := pg.Open(ctx, cl.URL, 2)
	require.NoError(t, err)
	_, err = pg.Migrate(ctx, db)
	require.NoError(t, err)
	_, err = store.NewStore(db, account.New(db, nil), nil).SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://127.0.0.1:1"})
	require.NoError(t, err)
	sqlDB, _ := db.DB()
	require.NoError(t, sqlDB.Close())

	cmd = exec.Command(bin, "package", "export", "demo")
	cmd.Env = env(dataDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), stderr.String())
	require.Contains(t, stdout.String(), `"name": "demo"`)
	_, running := pgcluster.Running(filepath.Join(dataDir, "pg"), "unifi")
	require.True(t, running, "the running cluster of make run is used and left running")
}
