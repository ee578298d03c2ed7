package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

const goodKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestLoad(t *testing.T) {
	t.Parallel()
	base := func() map[string]string {
		return map[string]string{"DATABASE_URL": "postgres://u@localhost:5432/unifi", "SESSION_KEY": goodKey,
			"SECRET_KEY": goodKey}
	}
	tests := []struct {
		name    string
		change  map[string]string
		wantErr []string // every problem named
	}{
		{name: "Success"},
		{name: "MissingDatabaseURL", change: map[string]string{"DATABASE_URL": ""}, wantErr: []string{"DATABASE_URL: is not set"}},
		{name: "MalformedDatabaseURL", change: map[string]string{"DATABASE_URL": "postgres://u@local host:5432/x"},
			wantErr: []string{"DATABASE_URL: is not a valid URL"}},
		{name: "WrongScheme", change: map[string]string{"DATABASE_URL": "mysql://u@localhost/x"},
			wantErr: []string{`DATABASE_URL: must start with postgres:// (got scheme "mysql")`}},
		{name: "NoDatabase", change: map[string]string{"DATABASE_URL": "postgres://u@localhost:5432"},
			wantErr: []string{"DATABASE_URL: names no database"}},
		{name: "EveryProblemAtOnce", change: map[string]string{"DATABASE_URL": "x", "WORKERS": "many",
			"LOG_FORMAT": "xml", "SESSION_KEY": "abcd"},
			wantErr: []string{"DATABASE_URL:", "WORKERS: \"many\" is not a whole number from 1 to 256",
				"LOG_FORMAT: \"xml\" is not text or json", "SESSION_KEY: is 2 bytes"}},
		{name: "KeyNotHex", change: map[string]string{"SECRET_KEY": "zz"}, wantErr: []string{"SECRET_KEY: is not hexadecimal"}},
		{name: "BadBaseURL", change: map[string]string{"BASE_URL": "ftp://x"}, wantErr: []string{"BASE_URL:"}},
		{name: "ClockOffsetNotADuration", change: map[string]string{"CLOCK_OFFSET": "90"},
			wantErr: []string{`CLOCK_OFFSET: "90" is not a duration from -24h to 24h`}},
		{name: "PageConcurrencyZero", change: map[string]string{"PAGE_CONCURRENCY": "0"},
			wantErr: []string{`PAGE_CONCURRENCY: "0" is not a whole number from 1 to 1024`}},
		{name: "ClockOffsetTooFar", change: map[string]string{"CLOCK_OFFSET": "-25h"}, wantErr: []string{"CLOCK_OFFSET:"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := base()
			m["DATA_DIR"] = t.TempDir()
			for k, v := range tc.change {
				m[k] = v
			}
			c, err := Load(env(m))
			if len(tc.wantErr) == 0 {
				require.NoError(t, err)
				require.Equal(t, ":8080", c.Addr)
				require.Equal(t, 4, c.Workers)
				require.Equal(t, 200, c.WorkerBatch)
				require.Equal(t, 30*time.Second, c.Lease)
				require.False(t, c.Secure())
				require.Zero(t, c.ClockOffset)
				require.Equal(t, 2*runtime.GOMAXPROCS(0), c.PageConcurrency)
				return
			}
			require.Error(t, err)
			for _, want := range tc.wantErr {
				require.Contains(t, err.Error(), want)
			}
			require.Equal(t, len(tc.wantErr), strings.Count(err.Error(), "\n  "), "one line per problem")
		})
	}
}

func TestClockOffset(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u@h/db", "SESSION_KEY": goodKey,
		"SECRET_KEY": goodKey, "CLOCK_OFFSET": "-90s"}))
	require.NoError(t, err)
	require.Equal(t, -90*time.Second, c.ClockOffset)
}

func TestGeneratedKeyIsKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	m := map[string]string{"DATABASE_URL": "postgres://u@h/db", "DATA_DIR": dir}
	c1, err := Load(env(m))
	require.NoError(t, err)
	require.Len(t, c1.GeneratedKeys, 2)
	c2, err := Load(env(m))
	require.NoError(t, err)
	require.Empty(t, c2.GeneratedKeys)
	require.Equal(t, c1.SessionKey, c2.SessionKey)
	info, err := os.Stat(filepath.Join(dir, "session_key.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}
