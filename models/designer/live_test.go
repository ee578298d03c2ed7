package designer_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/testdb"
	"unifi/models/designer"
	"unifi/models/modelstest"
)

// TestWatch: a change to configuration made by anyone (here plain SQL)
// reaches Watch's callbacks within a second of its commit. (That a change
// of what is not configuration notifies nothing is TestConfigVersion.)
func TestWatch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := testdb.URL(t)
	db := testdb.Open(t, url)
	f := modelstest.Integration(ctx, t, db, &modelstest.IntegrationOpts{EndpointURL: "http://127.0.0.1:9"})
	changes := make(chan struct{}, 16)
	wctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		designer.Watch(wctx, url, designer.WatchOpts{OnChange: []func(context.Context){func(context.Context) { changes <- struct{}{} }}})
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	select { // the (re)connection itself counts as a change: anything may have been missed
	case <-changes:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch never connected")
	}
	require.NoError(t, db.Exec(`UPDATE integrations SET retry_limit = 9 WHERE id = ?`, f.Integration.ID).Error)
	start := time.Now()
	select {
	case <-changes:
		t.Logf("notified %v after the commit", time.Since(start))
	case <-time.After(time.Second):
		t.Fatal("no notification within a second of the change")
	}
}
