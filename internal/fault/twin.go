package fault

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/pgcluster"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/pg"
	"unifi/models/store"
)

// TwinOpts configures two instances of the product bonded to each other
// (see internal/pair): each a `unifi serve` process with its own database,
// its demo integration pointing at the other's inbound API.
type TwinOpts struct {
	SyncTimeoutS  int // both demo integrations [2]
	RetryLimit    int // [3]
	RetryDelayS   int // [1]
	AsyncTimeoutS int // [300]
	Env           map[string]string
	EnvA, EnvB    map[string]string // one instance's environment, over Env
	// Proxy puts a Proxy in front of each instance: each one's demo
	// connection points at the other's proxy, so a test can stall and cut
	// the network between them.
	Proxy bool
	// OwnCluster gives each instance's database a private PostgreSQL
	// cluster, so that a test can stop one side's database alone.
	OwnCluster bool
}

// Twin is one of the two instances: its database, a Store on it (in the
// test process), its demo integration and its server process.
type Twin struct {
	Name        string
	DBURL       string
	DB          *gorm.DB
	Store       *store.Store
	Integration *models.Integration
	Server      *Server
	Proxy       *Proxy             // with TwinOpts.Proxy: the way in to this instance
	Cluster     *pgcluster.Cluster // with TwinOpts.OwnCluster: this instance's PostgreSQL
}

// NewTwins sets up instances A and B, seeded with the demo (each one's
// connection points at the other), and starts both servers; everything is
// stopped at cleanup.
func NewTwins(t testing.TB, o TwinOpts) (a, b *Twin) {
	t.Helper()
	ctx := context.Background()
	bin := Binary(t)
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.SyncTimeoutS, 2)
	def(&o.RetryLimit, 3)
	def(&o.RetryDelayS, 1)
	def(&o.AsyncTimeoutS, 300)
	a, b = &Twin{Name: "A"}, &Twin{Name: "B"}
	addr := map[*Twin]string{a: FreeAddr(t), b: FreeAddr(t)}
	other := map[*Twin]*Twin{a: b, b: a}
	way := map[*Twin]string{a: addr[a], b: addr[b]} // the address the other instance sends to
	if o.Proxy {
		for _, tw := range []*Twin{a, b} {
			tw.Proxy = NewProxy(t, addr[tw])
			way[tw] = tw.Proxy.Addr()
		}
	}
	key := hex.EncodeToString(SecretKey)
	for _, tw := range []*Twin{a, b} {
		if o.OwnCluster {
			tw.Cluster, tw.DBURL = ownCluster(t)
		} else {
			tw.DBURL = testdb.URL(t)
		}
		db, err := pg.Open(ctx, tw.DBURL, 10)
		if err != nil {
			t.Fatalf("fault: %v", err)
		}
		t.Cleanup(func() {
			if sqlDB, err := db.DB(); err == nil {
				_ = sqlDB.Close()
			}
		})
		tw.DB = db
		tw.Store = store.NewStore(db, account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost}),
			&store.StoreOpts{SecretKey: SecretKey})
		if _, err := tw.Store.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://" + way[other[tw]]}); err != nil {
			t.Fatalf("fault: %v", err)
		}
		if err := db.Exec(`UPDATE integrations SET sync_timeout_s = ?, retry_limit = ?, retry_delay_s = ?, async_timeout_s = ?
			WHERE name = ?`, o.SyncTimeoutS, o.RetryLimit, o.RetryDelayS, o.AsyncTimeoutS, models.DemoIntegrationName).Error; err != nil {
			t.Fatalf("fault: %v", err)
		}
		if tw.Integration, err = tw.Store.GetIntegrationByName(ctx, models.DemoIntegrationName); err != nil {
			t.Fatalf("fault: %v", err)
		}
		env := map[string]string{"DATABASE_URL": tw.DBURL, "ADDR": addr[tw], "BASE_URL": "http://" + addr[tw],
			"SESSION_KEY": key, "SECRET_KEY": key, "LEASE_SECONDS": "2", "POLL_INTERVAL_MS": "200",
			"LOG_FORMAT": "json", "LOG_LEVEL": "info", "DB_MAX_CONNS": "20", "WORKERS": "4", "WORKER_BATCH": "20"}
		own := map[*Twin]map[string]string{a: o.EnvA, b: o.EnvB}[tw]
		for _, extra := range []map[string]string{o.Env, own} {
			for k, v := range extra {
				env[k] = v
			}
		}
		s := &Server{Name: "twin" + tw.Name, Addr: addr[tw], bin: bin, env: env, dataDir: t.TempDir()}
		tw.Server = s
		t.Cleanup(func() {
			s.cleanup()
			if t.Failed() {
				t.Logf("fault: last output of %s:\n%s", s.Name, tail(s.Logs(), 4000))
			}
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, tw := range []*Twin{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = tw.Server.start() }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("fault: %v", err)
		}
	}
	return a, b
}

// ownCluster starts a private PostgreSQL cluster with a migrated database,
// removed at cleanup.
func ownCluster(t testing.TB) (*pgcluster.Cluster, string) {
	t.Helper()
	ctx := context.Background()
	cl, err := pgcluster.Start(ctx, pgcluster.Opts{Fast: true, Database: "unifi"})
	if err != nil {
		t.Fatalf("fault: %v", err)
	}
	t.Cleanup(func() { _ = cl.Remove(context.Background()) })
	db, err := pg.Open(ctx, cl.URL, 2)
	if err != nil {
		t.Fatalf("fault: %v", err)
	}
	defer func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	}()
	if _, err := pg.Migrate(ctx, db); err != nil {
		t.Fatalf("fault: %v", err)
	}
	return cl, cl.URL
}

// States counts the twin's transactions of the demo integration in one
// direction by state.
func (tw *Twin) States(t testing.TB, dir models.Direction) map[models.TransportState]int64 {
	t.Helper()
	var rows []struct {
		State models.TransportState
		N     int64
	}
	if err := tw.DB.Raw(`SELECT state, count(*) AS n FROM transactions WHERE integration_id = ? AND direction = ?
		GROUP BY state`, tw.Integration.ID, dir).Scan(&rows).Error; err != nil {
		t.Fatalf("fault: count states of %s: %v", tw.Name, err)
	}
	out := map[models.TransportState]int64{}
	for _, r := range rows {
		out[r.State] = r.N
	}
	return out
}

// String names the twin.
func (tw *Twin) String() string { return fmt.Sprintf("instance %s", tw.Name) }
