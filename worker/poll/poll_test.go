package poll_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"
	"gorm.io/gorm"

	"unifi/internal/failmode"
	"unifi/internal/sim"
	"unifi/internal/sim/jira"
	"unifi/internal/testdb"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
	"unifi/models/store"
	"unifi/worker/poll"
)

type testBundle struct {
	db      *gorm.DB
	store   *store.Store
	inbound *inbound.Service
	jira    *jira.Sim
	url     string
	agent   sim.Client
	poller  models.Poller
}

// setup is the demo integration on a fresh database with its connection
// pointed at an in-process Jira simulator, and a poller (inactive) of the
// test processor every second.
func setup(t *testing.T) *testBundle {
	t.Helper()
	db := testdb.NewSeeded(t, "demo", func(ctx context.Context, db *gorm.DB) error {
		_, err := store.NewStore(db, account.New(db, &account.Opts{PasswordCost: bcrypt.MinCost}), nil).SeedDemo(ctx,
			store.SeedDemoOpts{PeerURL: "http://127.0.0.1:9"})
		return err
	})
	accounts := account.New(db, nil)
	b := &testBundle{db: db, store: store.NewStore(db, accounts, nil), inbound: inbound.NewService(db, accounts, nil)}
	js, err := jira.New(jira.Opts{Token: "tok", AgentToken: "agent-tok"})
	require.NoError(t, err)
	srv := httptest.NewServer(js.Frame())
	t.Cleanup(srv.Close)
	b.jira, b.url = js, srv.URL
	b.agent = sim.Client{Base: srv.URL, User: "agent@example.com", Secret: "agent-tok"}

	var in models.Integration
	require.NoError(t, db.Where("name = ?", models.DemoIntegrationName).Take(&in).Error)
	require.NoError(t, db.Model(&models.Connection{}).Where("integration_id = ? AND active", in.ID).Updates(map[string]any{
		"endpoint_url": srv.URL, "auth_type": models.AuthBasic, "auth_username": "sim@example.com",
		"auth_secret": b.store.SealSecret("tok")}).Error)
	proc := models.PollProcessor{IntegrationID: in.ID, Name: "issues"}
	require.NoError(t, db.Create(&proc).Error)
	b.poller = models.Poller{IntegrationID: in.ID, ProcessorID: proc.ID, Name: "jira", EveryS: new(1)}
	require.NoError(t, db.Create(&b.poller).Error)
	return b
}

func (b *testBundle) runner(owner string, lease time.Duration) *poll.Runner {
	return poll.New(b.db, b.store, b.inbound, poll.Opts{Owner: owner, Lease: lease, Idle: 50 * time.Millisecond,
		Processor: func(*models.PollProcessor) (poll.Processor, error) { return jiraProcessor{pageSize: 50}, nil }})
}

func (b *testBundle) activate(t *testing.T) {
	t.Helper()
	require.NoError(t, b.db.Exec(`UPDATE pollers SET active = true, next_run_at = now() WHERE id = ?`, b.poller.ID).Error)
}

func (b *testBundle) seed(t *testing.T, n int, from time.Time, stepMS int) {
	t.Helper()
	body, err := json.Marshal(jira.SeedOpts{Count: n, Summary: "Seeded", UpdatedFrom: from, StepMS: stepMS})
	require.NoError(t, err)
	_, err = b.jira.Seed(body)
	require.NoError(t, err)
}

// bonds is every bond of the demo integration: external reference -> our
// ticket's short description.
func (b *testBundle) bonds(t *testing.T) map[string]string {
	t.Helper()
	var rows []struct{ ExternalReference, ShortDescription string }
	require.NoError(t, b.db.Raw(`SELECT b.external_reference, k.short_description FROM bonds b JOIN tickets k ON k.id = b.ticket_id
		JOIN integrations i ON i.id = b.integration_id WHERE i.name = ?`, models.DemoIntegrationName).Scan(&rows).Error)
	out := map[string]string{}
	for _, r := range rows {
		out[r.ExternalReference] = r.ShortDescription
	}
	return out
}

// issues is every issue of the simulator: key -> summary.
func (b *testBundle) issues(t *testing.T) map[string]string {
	t.Helper()
	ans, err := b.agent.Do("GET", "/records", nil)
	require.NoError(t, err)
	var v struct {
		Issues []struct {
			Key    string
			Fields struct{ Summary string }
		}
	}
	require.NoError(t, ans.Decode(&v))
	out := map[string]string{}
	for _, is := range v.Issues {
		out[is.Key] = is.Fields.Summary
	}
	return out
}

func (b *testBundle) requests(t *testing.T) []models.PollRequest {
	t.Helper()
	var prs []models.PollRequest
	require.NoError(t, b.db.Where("poller_id = ?", b.poller.ID).Order("id").Find(&prs).Error)
	return prs
}

func TestRunDue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.seed(t, 230, time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC), 500)
	rn := b.runner("one", 30*time.Second)

	ran, err := rn.RunDue(ctx)
	require.NoError(t, err)
	require.False(t, ran, "an inactive poller is not claimed")

	b.activate(t)
	ran, err = rn.RunDue(ctx)
	require.NoError(t, err)
	require.True(t, ran)
	require.Equal(t, b.issues(t), b.bonds(t))
	prs := b.requests(t)
	require.Len(t, prs, 1)
	pr := prs[0]
	require.Equal(t, models.PollDone, pr.State, pr.Error)
	require.Equal(t, 230, pr.ItemsFound)
	require.Equal(t, 230, pr.ItemsProcessed)
	require.Zero(t, pr.ItemsDuplicate)
	require.Equal(t, 5, pr.HTTPRequests) // pages of 50 overlapping by one: 0, 49, 98, 147, 196
	var stored int64
	require.NoError(t, b.db.Model(&models.HTTPRequest{}).Where("poll_request_id = ?", pr.ID).Count(&stored).Error)
	require.EqualValues(t, 5, stored)
	var auth string
	require.NoError(t, b.db.Raw(`SELECT request_headers->>'Authorization' FROM http_requests WHERE poll_request_id = ? LIMIT 1`,
		pr.ID).Scan(&auth).Error)
	require.Equal(t, "Basic [redacted]", auth)

	var st struct {
		Mark       string
		LeaseOwner *string
		Due        bool
	}
	// Measured from the run's end, not from this query: under load the query can come more than a second later.
	require.NoError(t, b.db.Raw(`SELECT mark::text AS mark, lease_owner,
		next_run_at >= (SELECT finished_at FROM poll_requests WHERE id = ?) + interval '1 second' AS due
		FROM pollers WHERE id = ?`, pr.ID, b.poller.ID).Scan(&st).Error)
	require.Nil(t, st.LeaseOwner, "the lease is released")
	require.True(t, st.Due, "the next run is a second after the run ended")
	require.Contains(t, st.Mark, `"SIM-230"`)

	t.Run("Updates", func(t *testing.T) {
		for _, key := range []string{"SIM-7", "SIM-100", "SIM-229"} {
			ans, err := b.agent.Do("PUT", "/rest/api/2/issue/"+key, map[string]any{"fields": map[string]any{"summary": "Changed " + key}})
			require.NoError(t, err)
			require.Equal(t, 204, ans.Status)
		}
		require.NoError(t, b.db.Exec(`UPDATE pollers SET next_run_at = now() WHERE id = ?`, b.poller.ID).Error)
		ran, err := rn.RunDue(ctx)
		require.NoError(t, err)
		require.True(t, ran)
		require.Equal(t, b.issues(t), b.bonds(t))
		prs := b.requests(t)
		require.Len(t, prs, 2)
		require.Equal(t, models.PollDone, prs[1].State, prs[1].Error)
		require.Equal(t, 3, prs[1].ItemsProcessed)
	})

	t.Run("RateLimit", func(t *testing.T) {
		rate, burst := 2.0, 1
		require.NoError(t, b.jira.Frame().SetControl(sim.Control{RateLimit: &rate, Burst: &burst}))
		t.Cleanup(func() {
			off := 0.0
			_ = b.jira.Frame().SetControl(sim.Control{RateLimit: &off})
		})
		b.seed(t, 120, time.Now().UTC(), 0)
		require.NoError(t, b.db.Exec(`UPDATE pollers SET next_run_at = now() WHERE id = ?`, b.poller.ID).Error)
		// Drain the bucket so the run meets 429 at once.
		for range 3 {
			_, _ = b.agent.Do("GET", "/rest/api/2/myself", nil)
		}
		ran, err := rn.RunDue(ctx)
		require.NoError(t, err)
		require.True(t, ran)
		require.Equal(t, b.issues(t), b.bonds(t))
		prs := b.requests(t)
		last := prs[len(prs)-1]
		require.Equal(t, models.PollDone, last.State, last.Error)
		require.Equal(t, 120, last.ItemsProcessed)
		var limited int64
		require.NoError(t, b.db.Model(&models.HTTPRequest{}).Where("poll_request_id = ? AND response_status = 429", last.ID).
			Count(&limited).Error)
		require.Positive(t, limited, "the run met 429 and waited out Retry-After")
		require.Equal(t, last.HTTPRequests, int(limited)+3)
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.activate(t)
	rn := b.runner("one", 30*time.Second)
	require.NoError(t, b.jira.Frame().SetControl(sim.Control{Control: failmode.Control{Mode: failmode.Fail500}}))
	for want := 1; want <= 2; want++ {
		require.NoError(t, b.db.Exec(`UPDATE pollers SET next_run_at = now() WHERE id = ?`, b.poller.ID).Error)
		ran, err := rn.RunDue(ctx)
		require.NoError(t, err)
		require.True(t, ran)
		var st struct {
			Failures  int
			LastError string
			WaitS     float64
		}
		require.NoError(t, b.db.Raw(`SELECT failures, last_error, extract(epoch FROM next_run_at - now()) AS wait_s
			FROM pollers WHERE id = ?`, b.poller.ID).Scan(&st).Error)
		require.Equal(t, want, st.Failures)
		require.Contains(t, st.LastError, "answered HTTP 500")
		require.InDelta(t, models.PollBackoff(want, time.Second).Seconds(), st.WaitS, 2)
		prs := b.requests(t)
		require.Equal(t, models.PollError, prs[len(prs)-1].State)
		require.Equal(t, st.LastError, prs[len(prs)-1].Error)
	}
	ran, err := rn.RunDue(ctx)
	require.NoError(t, err)
	require.False(t, ran, "a failing poller waits out its back-off")

	require.NoError(t, b.jira.Frame().SetControl(sim.Control{Control: failmode.Control{Mode: failmode.OK}}))
	require.NoError(t, b.db.Exec(`UPDATE pollers SET next_run_at = now() WHERE id = ?`, b.poller.ID).Error)
	ran, err = rn.RunDue(ctx)
	require.NoError(t, err)
	require.True(t, ran)
	var failures int
	require.NoError(t, b.db.Raw(`SELECT failures FROM pollers WHERE id = ?`, b.poller.ID).Scan(&failures).Error)
	require.Zero(t, failures, "a good run ends the back-off")
}

// TestTwoRunners runs the same poller on two runners (as two server
// processes would) while issues are created and changed in the simulator:
// never two runs at once, no item applied twice or even offered twice, none
// missed.
func TestTwoRunners(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	b.seed(t, 300, time.Now().UTC().Add(-time.Hour), 1000)
	b.activate(t)
	r1, r2 := b.runner("one", 5*time.Second), b.runner("two", 5*time.Second)
	require.NoError(t, r1.Start(ctx))
	require.NoError(t, r2.Start(ctx))
	// The seeded issues first: a change to an issue never polled would be an
	// update of an issue not bonded here.
	wait.For(t, 60*time.Second, func() (bool, error) { return len(b.bonds(t)) == 300, nil }, "the seeded issues polled")
	var wg sync.WaitGroup
	wg.Go(func() {
		// A change every 20 ms for 6 s (the pace of people, not a flood).
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		deadline := time.Now().Add(6 * time.Second)
		for i := 0; time.Now().Before(deadline); i++ {
			<-tick.C
			key := fmt.Sprintf("SIM-%d", 1+(i*37)%300)
			_, _ = b.agent.Do("PUT", "/rest/api/2/issue/"+key, map[string]any{"fields": map[string]any{"summary": fmt.Sprintf("Change %d", i)}})
			if i%5 == 0 {
				_, _ = b.agent.Do("POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "SIM"},
					"summary": fmt.Sprintf("New %d", i), "issuetype": map[string]any{"name": "Task"}}})
			}
		}
	})
	wg.Wait()
	want := b.issues(t)
	t.Cleanup(func() {
		if t.Failed() {
			got := b.bonds(t)
			for k, v := range want {
				if got[k] != v {
					t.Logf("%s: here %q, there %q", k, got[k], v)
				}
			}
			for _, pr := range b.requests(t) {
				t.Logf("run %d %s %s found %d processed %d refused %d dup %d %s", pr.ID, pr.Owner, pr.State, pr.ItemsFound,
					pr.ItemsProcessed, pr.ItemsRefused, pr.ItemsDuplicate, pr.Error)
			}
			var refusals []string
			b.db.Raw(`SELECT response_body FROM http_requests WHERE direction = 'Inbound' AND transaction_id IS NULL LIMIT 5`).Scan(&refusals)
			t.Logf("refusals: %v", refusals)
		}
	})
	wait.For(t, 60*time.Second, func() (bool, error) {
		got := b.bonds(t)
		if len(got) != len(want) {
			return false, nil
		}
		for k, v := range want {
			if got[k] != v {
				return false, nil
			}
		}
		return true, nil
	}, "every issue and its last change polled")
	require.NoError(t, r1.Stop(ctx))
	require.NoError(t, r2.Stop(ctx))

	prs := b.requests(t)
	owners := map[string]int{}
	var processed, duplicate int
	for i, pr := range prs {
		owners[pr.Owner]++
		processed += pr.ItemsProcessed
		duplicate += pr.ItemsDuplicate
		if i > 0 && prs[i-1].FinishedAt != nil {
			require.False(t, pr.StartedAt.Before(*prs[i-1].FinishedAt), "run %d started before run %d ended", pr.ID, prs[i-1].ID)
		}
	}
	t.Logf("%d runs (%v), %d items processed", len(prs), owners, processed)
	require.Zero(t, duplicate, "no item was offered twice")
	var inboundTrn int64
	require.NoError(t, b.db.Model(&models.Transaction{}).Where("direction = ?", models.Inbound).Count(&inboundTrn).Error)
	require.EqualValues(t, processed, inboundTrn, "each item processed is one inbound transaction")
}
