package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models"
)

func TestMain(m *testing.M) { testdb.Main(m) }

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestBadConfigurationStopsStartup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"MalformedDatabaseURL", map[string]string{"DATABASE_URL": "postgres://u@bad host/x"},
			[]string{"DATABASE_URL: is not a valid URL"}},
		{"MissingDatabaseURL", map[string]string{}, []string{"DATABASE_URL: is not set"}},
		{"SeveralProblems", map[string]string{"DATABASE_URL": "mysql://x/y", "ADDR": ":0", "WORKERS": "0"},
			[]string{"DATABASE_URL: must start with postgres://", "WORKERS:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.env["DATA_DIR"] = t.TempDir()
			var out, errOut bytes.Buffer
			err := run(context.Background(), []string{"serve"}, envOf(tc.env), &out, &errOut)
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"frobnicate"}, envOf(nil), &out, &errOut)
	require.EqualError(t, err, `unknown command "frobnicate"`)
	require.Contains(t, errOut.String(), "Usage: unifi")
}

func TestMigrateAndUserAdd(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{"DATABASE_URL": testdb.URL(t), "DATA_DIR": t.TempDir()})
	ctx := context.Background()
	var out bytes.Buffer
	require.NoError(t, run(ctx, []string{"migrate"}, env, &out, &out))
	require.Contains(t, out.String(), "the database is up to date")

	out.Reset()
	require.NoError(t, run(ctx, []string{"user", "add", "--name", "ops1", "--role", "manager", "--password", "long-enough-1"}, env, &out, &out))
	require.Equal(t, "created user ops1 (manager)\n", out.String())

	var errOut bytes.Buffer
	err := run(ctx, []string{"user", "add", "--name", "ops2", "--role", "boss", "--password", "short"}, env, &out, &errOut)
	var ve *models.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Contains(t, ve.Fields["role"], "Choose one of admin, manager, analyst or integration")
	require.Contains(t, ve.Fields["password"], "at least 8 characters")

	err = run(ctx, []string{"user", "add", "--name", "ops1", "--role", "analyst", "--password", "long-enough-1"}, env, &out, &errOut)
	require.ErrorContains(t, err, `A user named "ops1" already exists.`)
}

func TestServeStartsAndStops(t *testing.T) {
	t.Parallel()
	env := envOf(map[string]string{"DATABASE_URL": testdb.URL(t), "DATA_DIR": t.TempDir(), "ADDR": "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- cmdServe(ctx, env, io.Discard, func(a string) { addrc <- a }) }()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatalf("serve ended early: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start")
	}
	res, err := http.Get("http://" + addr + "/readyz")
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "graceful shutdown")
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}
