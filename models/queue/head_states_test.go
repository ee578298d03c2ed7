package queue_test

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models/queue"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// TestHeadStatesMatchIndexes reads, from the migrated database, every index
// on transactions whose predicate names outbound states (the bond's head:
// transactions_bond_head) and fails when its state list is not
// queue.HeadStates: the migrations repeat the Go definition, and a change to
// one without the other would let a bond have two heads, or none.
func TestHeadStatesMatchIndexes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	var defs []struct{ IndexName, IndexDef string }
	require.NoError(t, db.Raw(`SELECT indexname AS index_name, indexdef AS index_def FROM pg_indexes
		WHERE tablename = 'transactions' AND indexdef ~ 'direction = ''Outbound''' AND indexdef ~ 'state = ANY'
		ORDER BY indexname`).Scan(&defs).Error)
	var want []int
	for _, s := range queue.HeadStates {
		want = append(want, int(s))
	}
	slices.Sort(want)
	list := regexp.MustCompile(`state = ANY \(\(?ARRAY\[([^\]]*)\]`)
	names := []string{}
	for _, d := range defs {
		m := list.FindStringSubmatch(d.IndexDef)
		require.NotNil(t, m, "state list of %s: %s", d.IndexName, d.IndexDef)
		var got []int
		for _, p := range strings.Split(m[1], ",") {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(p), "::smallint")))
			require.NoError(t, err, "%s: %q", d.IndexName, p)
			got = append(got, n)
		}
		slices.Sort(got)
		require.Equal(t, want, got, "%s lists other states than queue.HeadStates: %s", d.IndexName, d.IndexDef)
		names = append(names, d.IndexName)
	}
	require.Contains(t, names, "transactions_bond_head", "the bond head index is checked")
}
