package poll_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/script"
	"unifi/models/webhook"
	"unifi/worker/poll"
)

// fixedPage answers one page of fixed items, whatever the remote says.
type fixedPage struct{ items []map[string]any }

func (f fixedPage) Setup(context.Context, poll.Call) (map[string]any, error) {
	return map[string]any{}, nil
}

func (f fixedPage) Request(context.Context, poll.Call) (*poll.Request, error) {
	return &poll.Request{Method: "GET", Path: "/rest/api/2/search",
		Query: map[string]string{"jql": `updated >= "1970-01-01 00:00" ORDER BY updated ASC`}}, nil
}

func (f fixedPage) Response(context.Context, poll.Call, *poll.Response) (*poll.Page, error) {
	p := &poll.Page{}
	for _, it := range f.items {
		body, err := json.Marshal(it)
		if err != nil {
			return nil, err
		}
		p.Items = append(p.Items, poll.Item{Body: body})
	}
	return p, nil
}

// TestPageTranslatedAheadSeesEarlierItems: a page's items are translated by
// the integration's inbound scripts ahead of their turn, in parallel, their
// findBond reading the bonds as committed before the page; an item whose
// lookup an earlier item of the page may have changed is translated again
// in its turn. Here one remote issue comes twice in a page: ahead, both
// look like a new issue (findBond null: CreateIncident); in its turn the
// second must see the bond the first made and be an UpdateIncident.
func TestPageTranslatedAheadSeesEarlierItems(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t)
	var msgs []models.Message
	require.NoError(t, b.db.Where("integration_id = ? AND name IN ?", b.poller.IntegrationID,
		[]string{"CreateIncident", "UpdateIncident"}).Order("id").Find(&msgs).Error)
	require.Len(t, msgs, 2)
	for _, m := range msgs {
		for point, src := range map[script.Point]string{
			script.Identify:        `return findBond(request.body.key) === null ? "CreateIncident" : "UpdateIncident";`,
			script.ReferenceLookup: `return {source_reference: request.body.key, message_id: request.body.key + "@" + request.body.v};`,
			script.PayloadToStage:  `return {short_description: request.body.summary};`,
		} {
			require.NoError(t, b.db.Create(&models.MessageScript{MessageID: m.ID, Point: string(point), Source: src, Version: 1}).Error)
		}
	}
	scripts := script.NewEngine(script.Limits{Timeout: 5 * time.Second})
	items := []map[string]any{
		{"key": "K-1", "v": 1, "summary": "first"},
		{"key": "K-2", "v": 1, "summary": "other"},
		{"key": "K-1", "v": 2, "summary": "second"},
	}
	rn := poll.New(b.db, b.store, b.inbound, poll.Opts{Owner: "one", Lease: time.Minute, Webhook: webhook.New(b.db, b.inbound, scripts),
		Processor: func(*models.PollProcessor) (poll.Processor, error) { return fixedPage{items: items}, nil }})
	b.activate(t)
	ran, err := rn.RunDue(ctx)
	require.NoError(t, err)
	require.True(t, ran)

	reqs := b.requests(t)
	require.Equal(t, models.PollDone, reqs[0].State, reqs[0].Error)
	require.Equal(t, map[string]string{"K-1": "second", "K-2": "other"}, b.bonds(t))
	var kinds []string
	require.NoError(t, b.db.Raw(`SELECT m.name FROM transactions t JOIN messages m ON m.id = t.message_id
		WHERE t.direction = 'Inbound' ORDER BY t.id`).Scan(&kinds).Error)
	require.Equal(t, []string{"CreateIncident", "CreateIncident", "UpdateIncident"}, kinds)
}
