package designer_test

import (
	"testing"

	"unifi/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }
