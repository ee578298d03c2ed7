package worker_test

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/modelstest"
)

// The response actions of the Designer (docs/designer-messages.md, "Response
// actions"): what an answer sets besides retrying, applied by the engine.
func TestResponseActionEffects(t *testing.T) {
	t.Parallel()

	t.Run("CompleteRejectedWithNote", func(t *testing.T) {
		t.Parallel()
		// Async messages: Complete means no receipt is awaited.
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(5), Async: modelstest.Ptr(true)})
		complete, rejected := models.Complete, models.ProcessRejected
		msgID := b.fx.Messages["CreateIncident"].ID
		require.NoError(t, b.db.Create(&models.ResponseAction{IntegrationID: &b.fx.Integration.ID, MessageID: &msgID,
			StatusCode: http.StatusConflict, SetTransactionState: &complete, SetProcessState: &rejected,
			BondNote: "the remote has this ticket already", Description: "exists at the remote"}).Error)
		b.remote.SetFail(func(env *models.Envelope, _ int) (int, http.Header) {
			if env.Message.Name == "CreateIncident" {
				return http.StatusConflict, nil
			}
			return 0, nil
		})
		tk := b.createTicket(t, "duplicate")
		b.updateTicket(t, tk, "more") // queued behind the create: released when the create completes
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1, models.AwaitingReceipt: 1})

		txs := b.bondTransactions(t, tk.ID)
		require.Equal(t, models.Complete, txs[0].State, "the 409 counts as delivered; no receipt awaited")
		require.Equal(t, models.ProcessRejected, txs[0].ProcessState)
		require.Equal(t, models.AwaitingReceipt, txs[1].State, "the next on the bond went out")
		require.Equal(t, models.ProcessPending, txs[1].ProcessState)
		reqs := b.requests(t, txs[0].ID)
		require.Len(t, reqs, 1, "not retried")
		require.Equal(t, "exists at the remote", reqs[0].ResponseAction)
		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.Regexp(t, `(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  `+txs[0].MessageIdent+
			`: the remote has this ticket already \(response action for 409\)$`, bond.History)
	})

	t.Run("ErrorAndPause", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(5)})
		paused := models.IntegrationPaused
		require.NoError(t, b.db.Create(&models.ResponseAction{IntegrationID: &b.fx.Integration.ID,
			StatusCode: http.StatusServiceUnavailable, SetIntegrationState: &paused, BondNote: "remote in maintenance"}).Error)
		b.remote.SetFail(func(*models.Envelope, int) (int, http.Header) { return http.StatusServiceUnavailable, nil })
		tk := b.createTicket(t, "maintenance")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})

		txs := b.bondTransactions(t, tk.ID)
		require.Equal(t, models.ProcessPending, txs[0].ProcessState, "no process state set by this action")
		reqs := b.requests(t, txs[0].ID)
		require.Len(t, reqs, 1, "not retried")
		require.Equal(t, "503: retry false; the integration is paused", reqs[0].ResponseAction)
		in, err := b.store.GetIntegration(b.ctx, b.fx.Integration.ID)
		require.NoError(t, err)
		require.Equal(t, models.IntegrationPaused, in.State)
		require.NotNil(t, in.PausedAt)
		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.Contains(t, bond.History, txs[0].MessageIdent+": remote in maintenance (response action for 503)")

		// Paused by the engine: a new ticket's transaction queues.
		tk2 := b.createTicket(t, "after the pause")
		require.Equal(t, models.Queued, b.bondTransactions(t, tk2.ID)[0].State)
	})

	t.Run("RetriedAnswerSetsNothing", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(1)})
		rejected := models.ProcessRejected
		require.NoError(t, b.db.Create(&models.ResponseAction{IntegrationID: &b.fx.Integration.ID,
			StatusCode: http.StatusTooManyRequests, Retry: true, SetProcessState: &rejected, BondNote: "slow down"}).Error)
		var fails atomic.Int32
		b.remote.SetFail(func(*models.Envelope, int) (int, http.Header) {
			if fails.Add(1) == 1 {
				return http.StatusTooManyRequests, nil
			}
			return 0, nil
		})
		tk := b.createTicket(t, "busy")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
		txs := b.bondTransactions(t, tk.ID)
		require.Equal(t, models.ProcessPending, txs[0].ProcessState)
		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.NotContains(t, bond.History, "slow down")
	})
}
