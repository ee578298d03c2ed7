package worker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/modelstest"
	"unifi/models/store"
	"unifi/worker"
	"unifi/worker/enginedb"
)

func TestDeliver(t *testing.T) {
	t.Parallel()

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		tk := b.createTicket(t, "Printer on fire")
		tk = b.updateTicket(t, tk, "still burning")
		in := store.TicketInputOf(tk)
		in.State = "Resolved"
		_, err := b.store.UpdateTicket(b.ctx, b.fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		b.pool(t, "a", 2) // started after the changes: the update and the resolve queue behind the create
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 3})

		arr := b.remote.Arrivals(tk.Number)
		require.Len(t, arr, 3)
		require.Equal(t, []string{"CreateIncident", "UpdateIncident", "ResolveIncident"},
			[]string{arr[0].Name, arr[1].Name, arr[2].Name})
		env := arr[0].Envelope
		require.Equal(t, tk.Number, env.Message.SourceReference)
		require.Equal(t, "", env.Message.TargetReference)
		require.Equal(t, "Printer on fire", env.Data["short_description"])
		require.Equal(t, "Low", env.Data["priority"], "value map applied")
		require.Equal(t, "EXT-"+tk.Number, arr[1].Envelope.Message.TargetReference, "later messages carry the remote reference")

		txs := b.bondTransactions(t, tk.ID)
		require.Len(t, txs, 3)
		require.Equal(t, arr[0].SourceID, txs[0].MessageIdent)
		require.Regexp(t, `^TRN\d{7}$`, txs[0].Number)
		require.Regexp(t, `^MSG\d{7}$`, txs[0].MessageIdent)
		require.Equal(t, []int64{1, 2, 3}, []int64{txs[0].Seq, txs[1].Seq, txs[2].Seq})

		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.Equal(t, "EXT-"+tk.Number, bond.ExternalReference)
		require.Equal(t, models.BondClosed, bond.State, "Create opened it, Resolve (synchronous) closed it")
		require.True(t, bond.Owner)

		reqs := b.requests(t, txs[0].ID)
		require.Len(t, reqs, 1)
		require.Equal(t, models.RequestOK, reqs[0].State)
		require.Equal(t, b.url+"/in/create", reqs[0].URL)
		require.Equal(t, 200, *reqs[0].ResponseStatus)
		require.Contains(t, reqs[0].RequestBody, tk.Number)

		var kinds []string
		require.NoError(t, b.db.Model(&models.TransactionLog{}).Where("transaction_id = ?", txs[1].ID).
			Order("id").Pluck("kind", &kinds).Error)
		require.Equal(t, []string{"message send", "transaction next queued", "transaction send"}, kinds)

		in2, err := b.store.GetIntegration(b.ctx, b.fx.Integration.ID)
		require.NoError(t, err)
		require.Equal(t, models.StatusUp, in2.Status)
	})

	t.Run("AuthHeadersRedacted", func(t *testing.T) {
		t.Parallel()
		for _, tc := range []struct {
			name, auth string
			typ        models.AuthType
		}{
			{"basic", "Basic dXNlcjpzM2NyZXQ=", models.AuthBasic},
			{"bearer", "Bearer s3cret", models.AuthBearer},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				b := setup(t, &modelstest.IntegrationOpts{AuthType: &tc.typ, AuthUsername: modelstest.Ptr("user"),
					AuthSecret: modelstest.Ptr("s3cret")})
				b.pool(t, "a", 1)
				tk := b.createTicket(t, "auth")
				b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
				require.Equal(t, tc.auth, b.remote.Arrivals(tk.Number)[0].Header.Get("Authorization"))
				txs := b.bondTransactions(t, tk.ID)
				reqs := b.requests(t, txs[0].ID)
				stored := reqs[0].RequestHeaders.V["Authorization"]
				require.NotContains(t, stored, "s3cret")
				require.NotContains(t, stored, "dXNlcjpzM2NyZXQ=")
				require.Contains(t, stored, "[redacted]")
			})
		}
	})

	t.Run("OAuth2ClientCredentials", func(t *testing.T) {
		t.Parallel()
		var tokens atomic.Int64
		tokenSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tokens.Add(1)
			user, pass, _ := r.BasicAuth()
			if user != "client" || pass != "s3cret" || r.FormValue("grant_type") != "client_credentials" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok-123", "token_type": "Bearer", "expires_in": 3600})
		}))
		t.Cleanup(tokenSrv.Close)
		typ := models.AuthOAuth2
		b := setup(t, &modelstest.IntegrationOpts{AuthType: &typ, AuthUsername: modelstest.Ptr("client"),
			AuthSecret: modelstest.Ptr("s3cret"), OAuthTokenURL: modelstest.Ptr(tokenSrv.URL)})
		b.pool(t, "a", 1)
		tk := b.createTicket(t, "oauth")
		b.updateTicket(t, tk, "again")
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 2})
		for _, a := range b.remote.Arrivals(tk.Number) {
			require.Equal(t, "Bearer tok-123", a.Header.Get("Authorization"))
		}
		require.Equal(t, int64(1), tokens.Load(), "the token is cached per connection")
	})
}

func TestRetry(t *testing.T) {
	t.Parallel()

	t.Run("StopsAtLimit", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(3)})
		b.remote.SetFail(func(*models.Envelope, int) (int, http.Header) { return http.StatusInternalServerError, nil })
		tk := b.createTicket(t, "fails")
		tk = b.updateTicket(t, tk, "queued behind the failure")
		b.pool(t, "a", 2)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1, models.Queued: 1})

		txs := b.bondTransactions(t, tk.ID)
		require.Equal(t, models.Error, txs[0].State)
		require.Equal(t, 4, txs[0].Attempts)
		require.Contains(t, txs[0].Error, "500 Internal Server Error")
		require.Contains(t, txs[0].Error, "Gave up after 4 attempts")
		reqs := b.requests(t, txs[0].ID)
		require.Len(t, reqs, 4, "the first attempt and 3 retries")
		for i, r := range reqs {
			require.Equal(t, models.RequestError, r.State)
			require.Equal(t, i+1, r.Attempt)
			require.Equal(t, 500, *r.ResponseStatus)
		}
		require.Equal(t, int64(4), b.remote.Requests())
		require.Equal(t, models.Queued, txs[1].State, "a later transaction on the bond stays Queued")
		require.Empty(t, b.requests(t, txs[1].ID))
	})

	t.Run("401NotRetried", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(5)})
		b.remote.SetFail(func(*models.Envelope, int) (int, http.Header) { return http.StatusUnauthorized, nil })
		tk := b.createTicket(t, "no entry")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})
		txs := b.bondTransactions(t, tk.ID)
		require.Contains(t, txs[0].Error, "credentials")
		reqs := b.requests(t, txs[0].ID)
		require.Len(t, reqs, 1)
		require.Contains(t, reqs[0].ResponseAction, "401")
		in, err := b.store.GetIntegration(b.ctx, b.fx.Integration.ID)
		require.NoError(t, err)
		require.Equal(t, models.StatusDown, in.Status)
	})

	t.Run("ResponseActionAllowsRetryOf401", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(2)})
		require.NoError(t, b.db.Create(&models.ResponseAction{IntegrationID: &b.fx.Integration.ID, StatusCode: 401,
			Retry: true, Description: "this remote's 401s are transient"}).Error)
		b.remote.SetFail(func(_ *models.Envelope, _ int) (int, http.Header) { return http.StatusUnauthorized, nil })
		tk := b.createTicket(t, "flaky auth")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})
		reqs := b.requests(t, b.bondTransactions(t, tk.ID)[0].ID)
		require.Len(t, reqs, 3)
		require.Equal(t, "this remote's 401s are transient", reqs[0].ResponseAction)
	})

	t.Run("RetryAfterHonoured", func(t *testing.T) {
		t.Parallel()
		b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(3), RetryDelayS: modelstest.Ptr(1)})
		b.remote.SetFail(func(_ *models.Envelope, _ int) (int, http.Header) {
			if b.remote.Requests() == 1 {
				return http.StatusServiceUnavailable, http.Header{"Retry-After": {"120"}}
			}
			return 0, nil
		})
		tk := b.createTicket(t, "busy remote")
		p := b.pool(t, "a", 1)
		var tr *models.Transaction
		wait.For(t, 10*time.Second, func() (bool, error) {
			tr = &b.bondTransactions(t, tk.ID)[0]
			return tr.Attempts == 1, nil
		}, "the first attempt recorded")
		require.Equal(t, models.Sending, tr.State)
		reqs := b.requests(t, tr.ID)
		require.Len(t, reqs, 2)
		require.Equal(t, models.RequestError, reqs[0].State)
		require.Equal(t, models.RequestPending, reqs[1].State, "the retry waits as a Pending request")
		require.Equal(t, 2, reqs[1].Attempt)
		wait := time.Until(*reqs[1].SendAfter) - 0 // relative to real time; the clock is not advanced yet
		require.InDelta(t, 120, wait.Seconds(), 5, "Retry-After (120 s) beats the retry delay (1 s)")
		require.WithinDuration(t, *reqs[1].SendAfter, tr.NextAttemptAt, time.Millisecond)

		// Not due yet: nothing to claim, however often the engine looks.
		p.Notify(b.ctx)
		w, err := enginedb.New(b.store).ClaimWork(b.ctx, enginedb.ClaimOpts{Owner: "probe", Limit: 10, Lease: time.Second})
		require.NoError(t, err)
		require.Empty(t, w)

		b.passTime(t, 121*time.Second)
		p.Notify(b.ctx)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})
		reqs = b.requests(t, tr.ID)
		require.Len(t, reqs, 2)
		require.Equal(t, models.RequestOK, reqs[1].State)
		require.Equal(t, int64(2), b.remote.Requests())
	})
}

func TestReceiptTimesOut(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{Async: modelstest.Ptr(true), AsyncTimeoutS: modelstest.Ptr(600)})
	p := b.pool(t, "a", 1)
	tk := b.createTicket(t, "waiting for a receipt")
	b.updateTicket(t, tk, "behind it")
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.AwaitingReceipt: 1, models.Queued: 1})
	txs := b.bondTransactions(t, tk.ID)
	require.WithinDuration(t, time.Now().Add(600*time.Second), *txs[0].ReceiptDueAt, 10*time.Second) // database time is real time here

	b.passTime(t, 601*time.Second)
	p.Notify(b.ctx)
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.TimedOut: 1, models.Queued: 1})
	txs = b.bondTransactions(t, tk.ID)
	require.True(t, strings.HasPrefix(txs[0].Error, "No receipt arrived by"), txs[0].Error)
	require.Equal(t, models.Queued, txs[1].State)
}

// TestSentLogLine: the engine's "sent" line shows the remote's status as a
// number, not the address of the field holding it.
func TestSentLogLine(t *testing.T) {
	t.Parallel()
	b := setup(t, &modelstest.IntegrationOpts{RetryLimit: modelstest.Ptr(0)})
	b.remote.SetFail(func(*models.Envelope, int) (int, http.Header) { return http.StatusUnauthorized, nil })
	logs := &syncBuffer{}
	p := worker.New(worker.Opts{Store: b.store, DatabaseURL: b.dbURL, Instance: "log", Workers: 1, Batch: 20,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Lease:  5 * time.Second, PollInterval: 20 * time.Millisecond, SoftStopTimeout: 5 * time.Second})
	require.NoError(t, p.Start(b.ctx))
	t.Cleanup(func() { _ = p.Stop(context.Background()) })
	b.createTicket(t, "refused")
	b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})
	require.NoError(t, p.Stop(context.Background()))
	out := logs.String()
	require.Contains(t, out, "msg=sent")
	require.Contains(t, out, "status=401", out)
	require.NotContains(t, out, "status=0x", out)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The fault tests recognise a sync timeout's stored error by
// IsSyncTimeoutError; it must know the text the sender stores, and nothing
// else.
func TestIsSyncTimeoutError(t *testing.T) {
	require.True(t, worker.IsSyncTimeoutError(worker.SyncTimeoutError("127.0.0.1:8080", 2*time.Second)))
	require.False(t, worker.IsSyncTimeoutError("Could not reach 127.0.0.1:8080: connection refused"))
	require.False(t, worker.IsSyncTimeoutError(""))
}
