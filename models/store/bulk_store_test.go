package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/fixture"
	"unifi/internal/testdb"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// pausedDemo is a database with the demo integration, paused by its admin.
func pausedDemo(t *testing.T) (*gorm.DB, *store.Store, *models.Integration, models.Actor) {
	t.Helper()
	db := testdb.New(t)
	st := store.NewStore(db, account.New(db, nil), nil)
	in := fixture.Demo(t, st)
	admin := models.ActorOf(fixture.User(t, db, models.RoleAdmin), "test")
	_, err := st.PauseIntegration(context.Background(), admin, in.ID)
	require.NoError(t, err)
	return db, st, in, admin
}

// TestResumeReleasesBondsInOrder: a resume step walks the job's items in
// order and releases each bond once, for its first item; a full pass (which
// re-releases bonds left stranded) stays within the items walked so far.
func TestResumeReleasesBondsInOrder(t *testing.T) {
	db, st, in, admin := pausedDemo(t)
	ctx := context.Background()

	bonds := make([]*models.Bond, 6)
	for i := range bonds {
		bonds[i] = fixture.Bond(t, db, in.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil)
	}
	// Items in this order (positions 1..8): bonds 2, 0, 2, 1, 0, 3, 4, 5.
	var txs []*models.Transaction
	for _, b := range []int{2, 0, 2, 1, 0, 3, 4, 5} {
		txs = append(txs, fixture.Transaction(t, db, bonds[b], &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)}))
	}
	defer store.SetResumeChunk(3)()
	job, err := st.ResumeIntegration(ctx, admin, in.ID)
	require.NoError(t, err)
	require.Equal(t, 8, job.Total)
	_, err = st.ClaimBulkJob(ctx, "test", time.Minute)
	require.NoError(t, err)

	sending := func() []int {
		var out []int
		for i, tr := range txs {
			got, err := st.GetTransaction(ctx, tr.ID)
			require.NoError(t, err)
			if got.State == models.Sending {
				out = append(out, i)
			}
		}
		return out
	}
	// Items 1-3: bonds 2 and 0, each its first transaction.
	_, err = st.StepBulkJob(ctx, "test", job.ID, time.Minute, false, false)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1}, sending())
	// Items 4-6 with a full pass: bonds 1 and 3, not yet 4 and 5.
	_, err = st.StepBulkJob(ctx, "test", job.ID, time.Minute, true, false)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 3, 5}, sending())
	got, err := st.GetBulkJob(ctx, job.ID)
	require.NoError(t, err)
	require.Equal(t, 6, got.ReleasedThrough)
	// Items 7-8: bonds 4 and 5.
	_, err = st.StepBulkJob(ctx, "test", job.ID, time.Minute, true, true)
	require.NoError(t, err)
	require.Equal(t, []int{0, 1, 3, 5, 6, 7}, sending())
	require.Equal(t, models.BulkRunning, got.State, "the job runs until its transactions finish")
}

// TestCancelledResumeLeavesItems: a resume cancelled by a new Pause, or
// superseded by a later Resume, gives its open items back: the engine no
// longer settles them.
func TestCancelledResumeLeavesItems(t *testing.T) {
	db, st, in, admin := pausedDemo(t)
	ctx := context.Background()
	open := func(jobID int64) (n int64) {
		require.NoError(t, db.Raw("SELECT count(*) FROM bulk_job_items WHERE job_id = ? AND state = 'acted'", jobID).
			Scan(&n).Error)
		return n
	}
	for range 3 {
		b := fixture.Bond(t, db, in.ID, fixture.Ticket(t, db, in.ProcessID, nil), nil)
		fixture.Transaction(t, db, b, &fixture.TransactionOpts{State: fixture.Ptr(models.Queued)})
	}
	first, err := st.ResumeIntegration(ctx, admin, in.ID)
	require.NoError(t, err)
	require.EqualValues(t, 3, open(first.ID))

	// Paused again before the job ran: its next step cancels it.
	_, err = st.PauseIntegration(ctx, admin, in.ID)
	require.NoError(t, err)
	_, err = st.ClaimBulkJob(ctx, "test", time.Minute)
	require.NoError(t, err)
	job, err := st.StepBulkJob(ctx, "test", first.ID, time.Minute, false, true)
	require.NoError(t, err)
	require.Equal(t, models.BulkCancelled, job.State)
	require.Zero(t, open(first.ID))

	// A Resume supersedes a resume still running.
	second, err := st.ResumeIntegration(ctx, admin, in.ID)
	require.NoError(t, err)
	_, err = st.PauseIntegration(ctx, admin, in.ID)
	require.NoError(t, err)
	third, err := st.ResumeIntegration(ctx, admin, in.ID)
	require.NoError(t, err)
	got, err := st.GetBulkJob(ctx, second.ID)
	require.NoError(t, err)
	require.Equal(t, models.BulkCancelled, got.State)
	require.Zero(t, open(second.ID))
	require.EqualValues(t, 3, open(third.ID))
}
