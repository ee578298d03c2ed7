package worker_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/modelstest"
	"unifi/models/store"
)

// failBoom makes the remote refuse every message whose comments are "boom".
func failBoom(env *models.Envelope, _ int) (int, http.Header) {
	if env.Data["comments"] == "boom" {
		return http.StatusInternalServerError, nil
	}
	return 0, nil
}

// brokenBond makes a ticket whose bond holds [Complete, Error, Queued].
func (b *testBundle) brokenBond(t *testing.T, name string) (*models.Ticket, []models.Transaction) {
	t.Helper()
	tk := b.createTicket(t, name)
	tk = b.updateTicket(t, tk, "boom")
	tk = b.updateTicket(t, tk, "after")
	var txs []models.Transaction
	wait.For(t, 10*time.Second, func() (bool, error) {
		txs = b.bondTransactions(t, tk.ID)
		return txs[1].State == models.Error, nil
	}, "the broken transaction in Error")
	require.Equal(t, []models.TransportState{models.Complete, models.Error, models.Queued},
		[]models.TransportState{txs[0].State, txs[1].State, txs[2].State})
	return tk, txs
}

func TestIgnore(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(0)})
	b.remote.SetFail(failBoom)
	b.pool(t, "a", 2)
	tk, txs := b.brokenBond(t, "ignore me")

	t.Run("Forbidden", func(t *testing.T) {
		_, err := b.store.IgnoreTransaction(b.ctx, b.fx.Analyst, txs[1].ID)
		var fe *models.ForbiddenError
		require.ErrorAs(t, err, &fe)
	})
	t.Run("Success", func(t *testing.T) {
		got, err := b.store.IgnoreTransaction(b.ctx, b.fx.Manager, txs[1].ID)
		require.NoError(t, err)
		require.Equal(t, models.Ignored, got.State)
		require.NotNil(t, got.FinishedAt)
		wait.For(t, 10*time.Second, func() (bool, error) {
			return b.tx(t, txs[2].ID).State == models.Complete, nil
		}, "the bond's queue proceeds")
		b.checkDelivery(t, []*models.Ticket{tk})
		var kinds []string
		require.NoError(t, b.db.Model(&models.TransactionLog{}).Where("transaction_id = ? AND kind = ?", txs[2].ID,
			models.LogTransactionQueued).Pluck("kind", &kinds).Error)
		require.Len(t, kinds, 1)
		acts, err := b.store.ListActivity(b.ctx, store.ActivityFilter{RecordType: "transaction", RecordID: txs[1].ID})
		require.NoError(t, err)
		require.Len(t, acts, 1)
		require.Equal(t, "ignore transaction", acts[0].Action)
		require.Equal(t, "Error", acts[0].Before.V["state"])
		require.Equal(t, "Ignored", acts[0].After.V["state"])
	})
	t.Run("Conflict", func(t *testing.T) {
		_, err := b.store.IgnoreTransaction(b.ctx, b.fx.Admin, txs[1].ID)
		var ce *models.ConflictError
		require.ErrorAs(t, err, &ce)
		require.Equal(t, "This transaction is already Ignored.", ce.Reason)
		_, err = b.store.IgnoreTransaction(b.ctx, b.fx.Admin, txs[0].ID)
		require.ErrorAs(t, err, &ce)
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := b.store.IgnoreTransaction(b.ctx, b.fx.Admin, 999999)
		require.ErrorIs(t, err, models.ErrNotFound)
	})
}

func TestReplay(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(0)})
	b.remote.SetFail(failBoom)
	b.pool(t, "a", 2)
	tk, txs := b.brokenBond(t, "replay me")

	t.Run("ManagerForbiddenOnQueued", func(t *testing.T) {
		_, err := b.store.ReplayTransaction(b.ctx, b.fx.Manager, txs[2].ID)
		var fe *models.ForbiddenError
		require.ErrorAs(t, err, &fe)
		require.Contains(t, fe.Reason, "Managers may replay only Complete, Error or Ignored transactions")
	})
	t.Run("TakesTheOriginalsPlace", func(t *testing.T) {
		b.remote.SetFail(nil) // the remote is fixed
		r1, err := b.store.ReplayTransaction(b.ctx, b.fx.Admin, txs[1].ID)
		require.NoError(t, err)
		require.Equal(t, txs[1].Number+".1", r1.Number)
		require.Equal(t, txs[1].MessageIdent+".1", r1.MessageIdent)
		require.Equal(t, txs[1].Seq, r1.Seq)
		require.Equal(t, txs[1].ID, *r1.ReplayOfID)
		require.Equal(t, models.Sending, r1.State)
		require.Equal(t, models.Ignored, b.tx(t, txs[1].ID).State)
		wait.For(t, 10*time.Second, func() (bool, error) {
			return b.tx(t, txs[2].ID).State == models.Complete, nil
		}, "the bond's queue proceeds after the replay")
		got := b.remote.Arrivals(tk.Number)
		require.Len(t, got, 3)
		require.Equal(t, []string{txs[0].MessageIdent, r1.MessageIdent, txs[2].MessageIdent},
			[]string{got[0].SourceID, got[1].SourceID, got[2].SourceID}, "the replay went in the original's place")
		require.Equal(t, "boom", got[1].Envelope.Data["comments"], "replayed from the original's Stage data")

		// A manager replays the replay (Complete): the root's count continues.
		require.Equal(t, models.Complete, b.tx(t, r1.ID).State)
		r2, err := b.store.ReplayTransaction(b.ctx, b.fx.Manager, r1.ID)
		require.NoError(t, err)
		require.Equal(t, txs[1].Number+".2", r2.Number)
		require.Equal(t, r1.ID, *r2.ReplayOfID)
		require.Equal(t, 2, b.tx(t, txs[1].ID).ReplayCount)
		wait.For(t, 10*time.Second, func() (bool, error) {
			return b.tx(t, r2.ID).State == models.Complete, nil
		}, "the second replay Complete")
		require.Equal(t, models.Ignored, b.tx(t, r1.ID).State)
	})
	t.Run("NotFound", func(t *testing.T) {
		_, err := b.store.ReplayTransaction(b.ctx, b.fx.Admin, 987654)
		require.ErrorIs(t, err, models.ErrNotFound)
	})
}

func TestRepair(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(0)})
	b.remote.SetFail(failBoom)
	b.pool(t, "a", 2)
	var tickets []*models.Ticket
	var broken []models.Transaction
	for _, n := range []string{"r1", "r2", "r3"} {
		tk, txs := b.brokenBond(t, n)
		tickets = append(tickets, tk)
		broken = append(broken, txs[1])
	}
	// One of them ran out of time waiting for a receipt instead.
	require.NoError(t, b.db.Exec(`UPDATE transactions SET state = ?, receipt_due_at = now() WHERE id = ?`,
		models.TimedOut, broken[2].ID).Error)

	_, err := b.store.RepairIntegration(b.ctx, b.fx.Manager, b.fx.Integration.ID)
	var fe *models.ForbiddenError
	require.ErrorAs(t, err, &fe, "Repair is for admins")

	b.remote.SetFail(nil)
	job, err := b.store.RepairIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	require.NoError(t, err)
	require.Equal(t, 3, job.Total)
	wait.For(t, 20*time.Second, func() (bool, error) {
		job, err = b.store.GetBulkJob(b.ctx, job.ID)
		require.NoError(t, err)
		return job.State == models.BulkComplete, fmt.Errorf("job %+v", job)
	}, "the repair job complete")
	require.Equal(t, 3, job.Done)
	require.Zero(t, job.Failed)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 9, models.Ignored: 3})
	b.checkDelivery(t, tickets)
	for i, tk := range tickets {
		got := b.remote.Arrivals(tk.Number)
		require.Equal(t, broken[i].MessageIdent+".1", got[1].SourceID, "the repair went before the queued update")
	}
	_, err = b.store.RepairIntegration(b.ctx, b.fx.Admin, b.fx.Integration.ID)
	var ce *models.ConflictError
	require.ErrorAs(t, err, &ce, "nothing left to repair")
}

func TestAdminOnly(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.pool(t, "a", 1)
	tk := b.createTicket(t, "roles")
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
	txs := b.bondTransactions(t, tk.ID)
	reqs := b.requests(t, txs[0].ID)
	id := b.fx.Integration.ID
	var fe *models.ForbiddenError
	for name, op := range map[string]func(models.Actor) error{
		"pause":          func(a models.Actor) error { _, err := b.store.PauseIntegration(b.ctx, a, id); return err },
		"resume":         func(a models.Actor) error { _, err := b.store.ResumeIntegration(b.ctx, a, id); return err },
		"repair":         func(a models.Actor) error { _, err := b.store.RepairIntegration(b.ctx, a, id); return err },
		"replay request": func(a models.Actor) error { _, err := b.store.ReplayHTTPRequest(b.ctx, a, reqs[0].ID); return err },
	} {
		for _, actor := range []models.Actor{b.fx.Manager, b.fx.Analyst} {
			err := op(actor)
			require.ErrorAs(t, err, &fe, "%s as %s", name, actor.Role)
		}
	}
	_, err := b.store.ReplayTransaction(b.ctx, b.fx.Analyst, txs[0].ID)
	require.ErrorAs(t, err, &fe)
	_, err = b.store.StartBulk(b.ctx, b.fx.Analyst, models.BulkIgnore, []int64{txs[0].ID})
	require.ErrorAs(t, err, &fe)
	require.Equal(t, map[models.TransportState]int64{models.Complete: 1}, b.states(t), "nothing changed")
	in, err := b.store.GetIntegration(b.ctx, id)
	require.NoError(t, err)
	require.Equal(t, models.IntegrationActive, in.State)
}

func TestReplayHTTPRequest(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	b.pool(t, "a", 1)
	tk := b.createTicket(t, "resend")
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
	txs := b.bondTransactions(t, tk.ID)
	orig := b.requests(t, txs[0].ID)[0]

	got, err := b.store.ReplayHTTPRequest(b.ctx, b.fx.Admin, orig.ID)
	require.NoError(t, err)
	require.Equal(t, models.RequestReady, got.State)
	require.Equal(t, orig.ID, *got.ReplayOfID)
	wait.For(t, 10*time.Second, func() (bool, error) {
		got, err = b.store.GetHTTPRequest(b.ctx, got.ID)
		require.NoError(t, err)
		return got.State != models.RequestReady, nil
	}, "the replayed request sent")
	require.Equal(t, orig.RequestBody, got.RequestBody)
	require.NotNil(t, got.ResponseStatus)
	require.Equal(t, http.StatusConflict, *got.ResponseStatus, "the remote already had it")
	require.Equal(t, int64(2), b.remote.Requests())
	require.Equal(t, models.Complete, b.tx(t, txs[0].ID).State, "a replayed request does not move its transaction")
}

func TestBulk(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(0)})
	b.remote.SetFail(failBoom)
	b.pool(t, "a", 2)
	var errs, queued []int64
	var tickets []*models.Ticket
	for _, n := range []string{"b1", "b2", "b3", "b4"} {
		tk, txs := b.brokenBond(t, n)
		tickets = append(tickets, tk)
		errs = append(errs, txs[1].ID)
		queued = append(queued, txs[2].ID)
	}
	// A manager may not replay Queued transactions: those items fail with the reason.
	job, err := b.store.StartBulk(b.ctx, b.fx.Manager, models.BulkReplay, append([]int64{queued[0]}, errs[:2]...))
	require.NoError(t, err)
	require.Equal(t, 3, job.Total)
	b.remote.SetFail(nil)
	wait.For(t, 20*time.Second, func() (bool, error) {
		job, err = b.store.GetBulkJob(b.ctx, job.ID)
		require.NoError(t, err)
		return job.State == models.BulkComplete, nil
	}, "the bulk job complete")
	require.Equal(t, 2, job.Done)
	require.Equal(t, 1, job.Failed)
	failed, err := b.store.ListBulkJobItems(b.ctx, job.ID, true, 10)
	require.NoError(t, err)
	require.Len(t, failed, 1)
	require.Contains(t, failed[0].Error, "Managers may replay only")

	job, err = b.store.StartBulk(b.ctx, b.fx.Manager, models.BulkIgnore, errs[2:])
	require.NoError(t, err)
	wait.For(t, 20*time.Second, func() (bool, error) {
		job, err = b.store.GetBulkJob(b.ctx, job.ID)
		require.NoError(t, err)
		return job.State == models.BulkComplete, nil
	}, "the bulk job complete")
	require.Equal(t, 2, job.Done)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 10, models.Ignored: 4})
	b.checkDelivery(t, tickets)
}
