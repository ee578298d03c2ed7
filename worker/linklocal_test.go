package worker_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/modelstest"
)

// TestEngineRefusesLinkLocal: a connection whose endpoint is the cloud
// metadata address (stored by SQL, past the Designer's check) is never
// dialled by the engine: the attempt fails at once with the reason, and the
// transaction ends in Error.
func TestEngineRefusesLinkLocal(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(0),
		EndpointURL: "http://169.254.169.254/latest/meta-data"})
	b.pool(t, "a", 1)
	tk := b.createTicket(t, "metadata")
	var tr models.Transaction
	wait.For(t, 10*time.Second, func() (bool, error) {
		err := b.db.Where("ticket_id = ?", tk.ID).Take(&tr).Error
		return err == nil && tr.State == models.Error, err
	}, "the transaction ends in Error")
	var req models.HTTPRequest
	require.NoError(t, b.db.Where("transaction_id = ?", tr.ID).Take(&req).Error)
	require.Contains(t, req.Error, "link-local or cloud metadata address")
	require.Nil(t, req.ResponseStatus)
}
