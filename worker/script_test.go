package worker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/designer"
	"unifi/models/modelstest"
	"unifi/models/script"
	"unifi/models/store"
)

// jiraLike answers POST /rest/api/2/issue like Jira's REST v2 create
// (201 {"id", "key", "self"}), or 200 with errorMessages when told to.
type jiraLike struct {
	mu       sync.Mutex
	bodies   []map[string]any
	paths    []string
	failWith string
}

func (j *jiraLike) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	j.mu.Lock()
	j.bodies = append(j.bodies, body)
	j.paths = append(j.paths, r.Method+" "+r.URL.RequestURI())
	n, fail := len(j.bodies), j.failWith
	j.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if fail != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"errorMessages": []string{fail}})
		return
	}
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]any{"id": "1000" + string(rune('0'+n)), "key": "OPS-" + string(rune('0'+n))})
}

func (j *jiraLike) seen() ([]string, []map[string]any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]string(nil), j.paths...), append([]map[string]any(nil), j.bodies...)
}

const jiraRequest = `log("creating in", vars.project);
return {method: "POST", path: "/rest/api/2/issue", query: {notifyUsers: false},
        headers: {"X-Atlassian-Token": "no-check"},
        body: {fields: {project: {key: vars.project}, summary: stage.summary, priority: {name: stage.priority}}}};`

const jiraResponse = `if (response.body && response.body.errorMessages) {
  return {outcome: "error", error: "Jira refused: " + response.body.errorMessages.join("; ")};
}
log("created", response.body.key);
return {outcome: "success", external_reference: response.body.key};`

func scriptedSetup(t *testing.T) (*testBundle, *jiraLike) {
	t.Helper()
	j := &jiraLike{}
	srv := httptest.NewServer(j)
	t.Cleanup(srv.Close)
	b := setup(t, &modelstest.IntegrationOpts{EndpointURL: srv.URL})
	require.NoError(t, designer.New(b.store, nil).SetVariables(b.ctx, b.fx.Admin, b.fx.Connection.ID, nil, map[string]string{"project": "OPS"}))
	create := b.fx.Messages["CreateIncident"].ID
	for point, src := range map[script.Point]string{
		script.SourceToStage:  `return {summary: ticket.short_description.toUpperCase(), priority: stage.priority};`,
		script.StageToRequest: jiraRequest,
		script.Response:       jiraResponse,
	} {
		_, err := designer.New(b.store, nil).SaveScript(b.ctx, b.fx.Admin, create, point, 0, src)
		require.NoError(t, err)
	}
	return b, j
}

func TestScriptedDelivery(t *testing.T) {
	t.Parallel()

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b, j := scriptedSetup(t)
		tk := b.createTicket(t, "Printer on fire")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Complete: 1})

		paths, bodies := j.seen()
		require.Equal(t, []string{"POST /rest/api/2/issue?notifyUsers=false"}, paths)
		require.Equal(t, map[string]any{"fields": map[string]any{"project": map[string]any{"key": "OPS"},
			"summary": "PRINTER ON FIRE", "priority": map[string]any{"name": "Low"}}}, bodies[0])

		txs := b.bondTransactions(t, tk.ID)
		var bond models.Bond
		require.NoError(t, b.db.Take(&bond, txs[0].BondID).Error)
		require.Equal(t, "OPS-1", bond.ExternalReference, "the Response script took the remote key")
		require.Equal(t, models.BondOpen, bond.State)

		var lines []string
		require.NoError(t, b.db.Model(&models.TransactionLog{}).Where("transaction_id = ? AND kind = ?", txs[0].ID,
			models.LogScript).Order("id").Pluck("line", &lines).Error)
		require.Equal(t, []string{"creating in OPS", "created OPS-1"}, lines)
	})

	t.Run("ResponseDecidesError", func(t *testing.T) {
		t.Parallel()
		b, j := scriptedSetup(t)
		j.failWith = "Field 'priority' is not valid"
		tk := b.createTicket(t, "Printer on fire")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})
		tr := b.bondTransactions(t, tk.ID)[0]
		require.Equal(t, "Jira refused: Field 'priority' is not valid", tr.Error)
		require.Equal(t, 1, tr.Attempts, "a decided error is not retried")
	})

	t.Run("ScriptErrorIsTheTransactionsError", func(t *testing.T) {
		t.Parallel()
		b, j := scriptedSetup(t)
		_, err := designer.New(b.store, nil).SaveScript(b.ctx, b.fx.Admin, b.fx.Messages["CreateIncident"].ID, script.StageToRequest, 1,
			"const f = stage.fields;\nreturn {body: f.summary};")
		require.NoError(t, err)
		tk := b.createTicket(t, "Printer on fire")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})
		tr := b.bondTransactions(t, tk.ID)[0]
		require.Regexp(t, `^Script "CreateIncident / Stage to Request" line 2: TypeError: Cannot read property 'summary' of undefined`, tr.Error)
		paths, _ := j.seen()
		require.Empty(t, paths, "nothing was sent")
	})

	t.Run("SourceToStageTimeout", func(t *testing.T) {
		t.Parallel()
		b, j := scriptedSetup(t)
		_, err := designer.New(b.store, nil).SaveScript(b.ctx, b.fx.Admin, b.fx.Messages["CreateIncident"].ID, script.SourceToStage, 1,
			"let n = 0;\nwhile (true) { n++; }")
		require.NoError(t, err)
		tk := b.createTicket(t, "Printer on fire")
		b.pool(t, "a", 1)
		b.waitStates(t, 10*time.Second, map[models.TransportState]int64{models.Error: 1})
		tr := b.bondTransactions(t, tk.ID)[0]
		require.Regexp(t, `^Script "CreateIncident / Source to Stage" line 2: ran longer than the limit of 50ms and was stopped`, tr.Error)
		paths, _ := j.seen()
		require.Empty(t, paths)
	})

	t.Run("TriggerCondition", func(t *testing.T) {
		t.Parallel()
		b := setup(t, nil)
		_, err := designer.New(b.store, nil).SaveScript(b.ctx, b.fx.Admin, b.fx.Messages["UpdateIncident"].ID, script.TriggerCondition, 0,
			"return ticket.priority !== previous.priority && ticket.state !== 'Closed';")
		require.NoError(t, err)
		tk := b.createTicket(t, "Printer on fire")
		tk = b.updateTicket(t, tk, "only notes: not sent")
		in := store.TicketInputOf(tk)
		in.Priority = 1
		_, err = b.store.UpdateTicket(b.ctx, b.fx.Analyst, tk.ID, tk.Version, in)
		require.NoError(t, err)
		txs := b.bondTransactions(t, tk.ID)
		require.Len(t, txs, 2, "the create and the priority change; the notes-only update was skipped")
		require.Equal(t, b.fx.Messages["UpdateIncident"].ID, txs[1].MessageID)
	})
}
