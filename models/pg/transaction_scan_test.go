package pg

import (
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm/schema"

	"unifi/models"
)

// TestTransactionColumns checks that TransactionColumns and TransactionFields
// cover every column GORM maps for Transaction, in the same order.
func TestTransactionColumns(t *testing.T) {
	t.Parallel()
	sch, err := schema.Parse(&models.Transaction{}, &sync.Map{}, schema.NamingStrategy{})
	require.NoError(t, err)
	var want []string
	for _, f := range sch.Fields {
		want = append(want, f.DBName)
	}
	var got []string
	for _, c := range strings.Split(TransactionColumns, ",") {
		got = append(got, strings.TrimSpace(c))
	}
	require.Equal(t, want, got)

	var tr models.Transaction
	targets := TransactionFields(nil, &tr)
	require.Len(t, targets, len(sch.Fields))
	for i, f := range sch.Fields {
		addr := reflect.ValueOf(&tr).Elem().FieldByIndex(f.StructField.Index).Addr().Interface()
		require.True(t, addr == targets[i], "target %d is not field %s", i, f.Name)
	}
}
