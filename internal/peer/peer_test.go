package peer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"unifi/internal/peer"
	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/inbound"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// receiver stands in for our inbound endpoint: it records receipts and can fail.
type receiver struct {
	mu       sync.Mutex
	receipts []models.Envelope
	failNext int // answer 500 to this many receipts first
	auth     []string
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.auth = append(r.auth, req.Header.Get("Authorization"))
	if r.failNext > 0 {
		r.failNext--
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	var env models.Envelope
	_ = json.NewDecoder(req.Body).Decode(&env)
	r.receipts = append(r.receipts, env)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"message":{"name":"Response"}}`))
}

func (r *receiver) got() []models.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]models.Envelope(nil), r.receipts...)
}

type bundle struct {
	peer *peer.Peer
	srv  *httptest.Server
	recv *receiver
}

func setup(t *testing.T, o peer.Opts) *bundle {
	t.Helper()
	recv := &receiver{}
	rs := httptest.NewServer(recv)
	t.Cleanup(rs.Close)
	if o.ReceiptURL == "" {
		o.ReceiptURL = rs.URL + "/api/v1/integrations/demo/messages"
	}
	o.ReceiptToken = "receipt-token"
	p := peer.New(o)
	srv := httptest.NewServer(p)
	t.Cleanup(func() { p.Close(); srv.Close() })
	return &bundle{peer: p, srv: srv, recv: recv}
}

func send(t *testing.T, url string, env models.Envelope, token string) (int, map[string]any, error) {
	t.Helper()
	b, _ := json.Marshal(env)
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1/integrations/demo/messages", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{Timeout: 2 * time.Second}
	res, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	var out map[string]any
	body, _ := io.ReadAll(res.Body)
	_ = json.Unmarshal(body, &out)
	return res.StatusCode, out, nil
}

func msg(name, sourceID, ref string, ts time.Time) models.Envelope {
	return models.Envelope{Message: models.EnvelopeHeader{Name: name, TimeStamp: ts, SourceReference: ref,
		SourceID: sourceID}, Data: map[string]any{"short_description": "x"}}
}

func TestPeerAnswersAndSendsReceipts(t *testing.T) {
	t.Parallel()
	b := setup(t, peer.Opts{Token: "tok", ReceiptDelay: 20 * time.Millisecond, RejectShare: 0.5})
	t0 := time.Now()
	status, out, err := send(t, b.srv.URL, msg("CreateIncident", "MSG1", "INC1", t0), "tok")
	require.NoError(t, err)
	require.Equal(t, 200, status)
	head := out["message"].(map[string]any)
	require.Equal(t, "PEER0000001", head["source_reference"])
	require.Equal(t, "INC1", head["target_reference"])
	require.Equal(t, "MSG1", head["target_id"])

	for i, id := range []string{"MSG2", "MSG3"} {
		status, _, err := send(t, b.srv.URL, msg("UpdateIncident", id, "INC1", t0.Add(time.Duration(i+1)*time.Second)), "tok")
		require.NoError(t, err)
		require.Equal(t, 200, status)
	}
	wait.For(t, 10*time.Second, func() (bool, error) { return len(b.recv.got()) == 3, nil }, "three receipts")
	states := map[string]string{}
	for _, r := range b.recv.got() {
		require.Equal(t, "Receipt", r.Message.Name)
		require.Equal(t, "PEER0000001", r.Message.SourceReference)
		states[r.Message.TargetID] = r.Status.ProcessState
	}
	require.Equal(t, "Accepted", states["MSG1"], "creates are never rejected")
	require.Equal(t, "Rejected", states["MSG3"], "a share of 0.5 rejects every second update")
	require.Equal(t, "Bearer receipt-token", b.recv.auth[0])
	// The peer counts a receipt once its request returns, just after the receiver saw it.
	wait.For(t, 10*time.Second, func() (bool, error) { return b.peer.Stats().ReceiptsSent == 3, nil }, "three receipts counted")
	st := b.peer.Stats()
	require.EqualValues(t, 3, st.Received)
	require.EqualValues(t, 1, st.Rejected)
	require.EqualValues(t, 3, st.ReceiptsSent)
	arr := b.peer.Bond("INC1")
	require.Len(t, arr, 3)
	require.Equal(t, []string{"MSG1", "MSG2", "MSG3"}, []string{arr[0].SourceID, arr[1].SourceID, arr[2].SourceID})
}

func TestPeerDuplicatesAndOrder(t *testing.T) {
	t.Parallel()
	b := setup(t, peer.Opts{})
	t0 := time.Now()
	_, _, err := send(t, b.srv.URL, msg("UpdateIncident", "M2", "INC1", t0.Add(time.Second)), "")
	require.NoError(t, err)
	status, out, err := send(t, b.srv.URL, msg("UpdateIncident", "M2", "INC1", t0.Add(time.Second)), "")
	require.NoError(t, err)
	require.Equal(t, 409, status)
	require.Equal(t, inbound.TextDuplicate, out["error"])
	_, _, err = send(t, b.srv.URL, msg("UpdateIncident", "M1", "INC1", t0), "")
	require.NoError(t, err)
	st := b.peer.Stats()
	require.EqualValues(t, 1, st.Duplicates)
	require.EqualValues(t, 1, st.OutOfOrder)
}

func TestPeerModes(t *testing.T) {
	t.Parallel()
	b := setup(t, peer.Opts{})
	m := msg("CreateIncident", "M1", "INC1", time.Now())

	require.NoError(t, b.peer.SetMode(peer.ModeFail500))
	status, _, err := send(t, b.srv.URL, m, "")
	require.NoError(t, err)
	require.Equal(t, 500, status)

	require.NoError(t, b.peer.SetMode(peer.ModeFail401))
	status, _, err = send(t, b.srv.URL, m, "")
	require.NoError(t, err)
	require.Equal(t, 401, status)

	require.NoError(t, b.peer.SetMode(peer.ModeRefuse))
	_, _, err = send(t, b.srv.URL, m, "")
	require.Error(t, err, "the connection is dropped")

	require.NoError(t, b.peer.SetMode(peer.ModeStall))
	_, _, err = send(t, b.srv.URL, m, "")
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	require.True(t, ne.Timeout(), "a stalled peer makes the caller time out")

	// The control API works whatever the mode, and "for_seconds" ends a mode by itself.
	res, err := http.Post(b.srv.URL+"/control", "application/json", bytes.NewReader([]byte(`{"mode":"fail500","for_seconds":0.05}`)))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	wait.For(t, 10*time.Second, func() (bool, error) { return b.peer.ControlState().Mode == peer.ModeOK, nil }, "the mode to end")
	status, _, err = send(t, b.srv.URL, m, "")
	require.NoError(t, err)
	require.Equal(t, 200, status)
	require.EqualValues(t, 4, b.peer.Stats().Failed)

	res, err = http.Post(b.srv.URL+"/control", "application/json", bytes.NewReader([]byte(`{"mode":"sideways"}`)))
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 422, res.StatusCode)
}

func TestPeerFlaky(t *testing.T) {
	t.Parallel()
	b := setup(t, peer.Opts{Mode: peer.ModeFlaky, FailShare: 0.5, Seed: 42})
	fails := 0
	for i := range 200 {
		status, _, err := send(t, b.srv.URL, msg("UpdateIncident", "M"+string(rune('A'+i%26))+time.Now().String(), "INC1", time.Now()), "")
		require.NoError(t, err)
		if status == 500 {
			fails++
		}
	}
	require.InDelta(t, 100, fails, 30)
}

func TestPeerRetriesReceipts(t *testing.T) {
	t.Parallel()
	b := setup(t, peer.Opts{})
	b.recv.mu.Lock()
	b.recv.failNext = 2
	b.recv.mu.Unlock()
	_, _, err := send(t, b.srv.URL, msg("CreateIncident", "M1", "INC1", time.Now()), "")
	require.NoError(t, err)
	wait.For(t, 10*time.Second, func() (bool, error) { return len(b.recv.got()) == 1, nil }, "the receipt")
	// The peer counts a receipt once its request returns, just after the receiver saw it.
	wait.For(t, 10*time.Second, func() (bool, error) { return b.peer.Stats().ReceiptsSent == 1, nil }, "the receipt counted")
	st := b.peer.Stats()
	require.EqualValues(t, 2, st.ReceiptRetries)
	require.EqualValues(t, 1, st.ReceiptsSent)
}

func TestPeerServeStops(t *testing.T) {
	t.Parallel()
	p := peer.New(peer.Opts{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Serve(ctx, ln) }()
	require.NoError(t, p.SetMode(peer.ModeStall))
	go func() {
		_, _, _ = send(t, "http://"+ln.Addr().String(), msg("CreateIncident", "M1", "INC1", time.Now()), "")
	}()
	wait.For(t, 10*time.Second, func() (bool, error) { return p.Stats().Failed == 1, nil }, "the stalled request")
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
