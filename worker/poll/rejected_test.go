package poll_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/designer"
	"unifi/models/script"
	"unifi/models/webhook"
	"unifi/worker/poll"
)

// TestPollItemRejected: polled items translated by the integration's inbound
// scripts, whose Stage to Target rejects some. A rejected update is a
// Rejected transaction with the process error on it and on the bond (the
// ticket unchanged) and the script's log line in its log; a rejected create
// is refused ("Message rejected: ...") and recorded as a refused request.
// Both are behind the mark: the next run does not offer them again.
func TestPollItemRejected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var in models.Integration
	require.NoError(t, b.db.Where("name = ?", models.DemoIntegrationName).Take(&in).Error)
	msgs := map[string]models.Message{}
	for _, name := range []string{"CreateIncident", "UpdateIncident"} {
		var m models.Message
		require.NoError(t, b.db.Where("integration_id = ? AND name = ?", in.ID, name).Take(&m).Error)
		msgs[name] = m
	}
	// The test processor's items are our envelope; the scripts read it as a
	// remote's own shape would be read.
	lookup := "const m = request.body.message;\nreturn {source_reference: m.source_reference, message_id: m.source_id};"
	d := designer.New(b.store, nil)
	for _, sc := range []struct {
		msg    string
		point  script.Point
		source string
	}{
		{"CreateIncident", script.Identify, "return request.body.message.name;"},
		{"CreateIncident", script.ReferenceLookup, lookup},
		{"CreateIncident", script.PayloadToStage, "return request.body.data;"},
		{"CreateIncident", script.StageToTarget, "if (stage.short_description.startsWith('Bad')) { reject('No bad issues here'); return; }\nreturn stage;"},
		{"UpdateIncident", script.ReferenceLookup, lookup},
		{"UpdateIncident", script.PayloadToStage, "return request.body.data;"},
		{"UpdateIncident", script.StageToTarget, "log('target', stage.short_description);\n" +
			"if (stage.short_description.startsWith('Bad')) { reject('Summaries starting with Bad are refused'); return; }\nreturn stage;"},
	} {
		_, err := d.SaveScript(ctx, models.SystemActor, msgs[sc.msg].ID, sc.point, 0, sc.source)
		require.NoError(t, err)
	}
	wh := webhook.New(b.db, b.inbound, b.store.Scripts())
	rn := poll.New(b.db, b.store, b.inbound, poll.Opts{Owner: "one", Lease: 30 * time.Second, Webhook: wh,
		Processor: func(*models.PollProcessor) (poll.Processor, error) { return jiraProcessor{pageSize: 50}, nil }})
	runOnce := func() models.PollRequest {
		t.Helper()
		require.NoError(t, b.db.Exec(`UPDATE pollers SET active = true, next_run_at = now() WHERE id = ?`, b.poller.ID).Error)
		ran, err := rn.RunDue(ctx)
		require.NoError(t, err)
		require.True(t, ran)
		prs := b.requests(t)
		pr := prs[len(prs)-1]
		require.Equal(t, models.PollDone, pr.State, pr.Error)
		return pr
	}

	b.seed(t, 3, time.Now().UTC().Add(-time.Hour), 1000)
	pr := runOnce()
	require.Equal(t, 3, pr.ItemsProcessed)
	before := b.bonds(t)
	require.Len(t, before, 3)

	ans, err := b.agent.Do("PUT", "/rest/api/2/issue/SIM-2", map[string]any{"fields": map[string]any{"summary": "Bad change"}})
	require.NoError(t, err)
	require.Equal(t, 204, ans.Status)
	ans, err = b.agent.Do("POST", "/rest/api/2/issue", map[string]any{"fields": map[string]any{"project": map[string]any{"key": "SIM"},
		"summary": "Bad new", "issuetype": map[string]any{"name": "Task"}}})
	require.NoError(t, err)
	require.Equal(t, 201, ans.Status)
	pr = runOnce()
	require.Equal(t, 2, pr.ItemsFound)
	require.Equal(t, 1, pr.ItemsProcessed, "the rejected update is processed: a Rejected transaction")
	require.Equal(t, 1, pr.ItemsRefused, "the rejected create is refused: no ticket to hold it")
	require.Equal(t, before, b.bonds(t), "nothing applied, no ticket created")

	var bond models.Bond
	require.NoError(t, b.db.Where("integration_id = ? AND external_reference = 'SIM-2'", in.ID).Take(&bond).Error)
	require.Equal(t, "Summaries starting with Bad are refused", bond.ProcessError)
	var tr models.Transaction
	require.NoError(t, b.db.Where("bond_id = ? AND direction = ?", bond.ID, models.Inbound).Order("id DESC").Take(&tr).Error)
	require.Equal(t, msgs["UpdateIncident"].ID, tr.MessageID)
	require.Equal(t, models.ProcessRejected, tr.ProcessState)
	require.Equal(t, "Summaries starting with Bad are refused", tr.ProcessError)
	var logs []string
	require.NoError(t, b.db.Model(&models.TransactionLog{}).Where("transaction_id = ? AND kind = ?", tr.ID, models.LogScript).
		Order("id").Pluck("line", &logs).Error)
	require.Equal(t, []string{"target Bad change"}, logs, "the Stage to Target's log line in the transaction's log")

	var refusal string
	require.NoError(t, b.db.Raw(`SELECT response_body FROM http_requests WHERE integration_id = ? AND direction = 'Inbound'
		AND transaction_id IS NULL ORDER BY id DESC LIMIT 1`, in.ID).Scan(&refusal).Error)
	require.Contains(t, refusal, "Message rejected: No bad issues here")

	pr = runOnce()
	require.Zero(t, pr.ItemsFound, fmt.Sprintf("the rejected items are behind the mark: %+v", pr))
}
