package inboundbench_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/inboundbench"
	"unifi/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// TestRunSmall runs the bench at a small size: every message accepted once,
// every duplicate refused, nothing lost.
func TestRunSmall(t *testing.T) {
	t.Parallel()
	res, err := inboundbench.Run(context.Background(), testdb.New(t), inboundbench.Opts{Bonds: 20, Updates: 200,
		Clients: 4, DuplicateOf: 0.1})
	require.NoError(t, err)
	require.EqualValues(t, 200, res.Accepted)
	require.EqualValues(t, 20, res.DuplicatesSent)
	require.Equal(t, res.DuplicatesSent, res.DuplicatesFound)
	require.EqualValues(t, 220, res.Transactions)
	require.Len(t, res.Lines(), 7)
	require.Positive(t, res.AppCPU, "CPU per message is measured")
	require.Positive(t, res.DBCPU)
}
