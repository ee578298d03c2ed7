package worker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/worker"
	"unifi/worker/enginedb"
)

// TestOwedReceipt: a receipt is owed until the remote answers it (docs/inbound.md,
// "After a crash: duplicates and owed receipts"): past the retry limit it is
// sent again while the remote does not answer, fails, or asks us to come back,
// with the wait capped at half the async timeout; it is done when the remote
// says it finished the transaction; a refusal that will not mend keeps the
// limit, and so does any message that is not a receipt.
func TestOwedReceipt(t *testing.T) {
	t.Parallel()
	type answer struct {
		status int
		body   map[string]string
	}
	processed := func(state string) answer {
		return answer{http.StatusConflict, map[string]string{"error": "Error processing request: Transaction Error: Request rejected; the transaction has been processed already",
			"detail": "MSG0000001 is " + state}}
	}
	cases := []struct {
		name    string
		receipt bool
		answer  answer
		want    enginedb.Outcome
	}{
		{"StillBeingSent", true, answer{http.StatusConflict, map[string]string{"error": "The initiating transaction is still being sent"}}, enginedb.OutcomeRetry},
		{"ServerError", true, answer{http.StatusServiceUnavailable, nil}, enginedb.OutcomeRetry},
		{"ProcessedAlreadyComplete", true, processed("Complete"), enginedb.OutcomeDelivered},
		{"ProcessedAlreadyIgnored", true, processed("Ignored"), enginedb.OutcomeDelivered},
		{"ProcessedAlreadyError", true, processed("Error"), enginedb.OutcomeRetry},
		{"ProcessedAlreadyNoDetail", true, answer{http.StatusConflict, map[string]string{"error": processed("").body["error"]}}, enginedb.OutcomeFailed},
		{"NotFound", true, answer{http.StatusNotFound, map[string]string{"error": "Initiating transaction not found for inbound receipt"}}, enginedb.OutcomeFailed},
		{"NotAReceipt", false, answer{http.StatusServiceUnavailable, nil}, enginedb.OutcomeFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.answer.status)
				_ = json.NewEncoder(w).Encode(c.answer.body)
			}))
			defer srv.Close()
			state := models.Sending
			if c.receipt {
				state = models.SendingReceipt
			}
			w := &enginedb.Work{
				Transaction: models.Transaction{ID: 1, MessageIdent: "MSG0000002", ExternalMessageID: "MSG0000001", State: state, Attempts: 7},
				Integration: &models.Integration{ID: 1, RetryLimit: 2, RetryDelayS: 60, SyncTimeoutS: 5, AsyncTimeoutS: 10},
				Connection:  &models.Connection{EndpointURL: srv.URL, AuthType: models.AuthNone},
				Message:     &models.Message{ID: 1, Name: "UpdateIncident", Async: true},
				Ticket:      "INC0000001",
			}
			res, err := worker.AttemptOnce(context.Background(), srv.Client(), w)
			require.NoError(t, err)
			require.Equal(t, c.want, res.Outcome, res.Error)
			if res.Outcome == enginedb.OutcomeRetry {
				require.LessOrEqual(t, res.RetryDelay, 5*time.Second,
					"the wait is capped at half the async timeout (5 s), not the doubled retry delay: %s", res.RetryDelay)
				require.Contains(t, res.Error, "The receipt is owed")
			}
		})
	}
}
