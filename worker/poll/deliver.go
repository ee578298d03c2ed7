package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/inbound"
	"unifi/models/webhook"
)

// Outcome is what the inbound path made of one polled item.
type Outcome int

// Outcomes.
const (
	Processed Outcome = iota // an inbound transaction (applied, or rejected with a process error)
	Duplicate                // its message ID was received before: nothing done, as for any repeat
	Refused                  // refused as a whole (recorded as a refused inbound request)
)

// Delivery is one polled item for the inbound path.
type Delivery struct {
	Integration *models.Integration
	Caller      *models.User // the poller's user: as if it had sent the item
	Body        []byte
	Meta        inbound.RequestMeta
	Inbound     *inbound.Service
	// Translate is the integration's inbound scripts (Identify message,
	// Reference lookup, Payload to Stage, Stage to Target; webhook.Translator),
	// nil when it has none: the item is then our envelope.
	Translate webhook.TranslateFunc
}

// DeliverFunc applies one polled item on the inbound path inside tx (a
// refusal stores nothing but its record; an error fails the page).
type DeliverFunc func(ctx context.Context, tx *gorm.DB, d Delivery) (Outcome, error)

// Deliver receives an item on the inbound path inside the page's
// transaction: translated by the integration's inbound scripts into our
// envelope (as the raw webhook route does), then the inbound API's
// ReceiveMessage, as if the poller's user had sent it.
func Deliver(ctx context.Context, tx *gorm.DB, d Delivery) (Outcome, error) {
	in := d.Inbound.InTx(tx)
	body, meta := d.Body, d.Meta
	if d.Translate != nil {
		env, scripted, err := d.Translate(ctx, in, inbound.Request{Integration: d.Integration.Name, JSON: true, Body: d.Body, Meta: d.Meta})
		if err != nil {
			return Settle(ctx, in, d, err)
		}
		if body, err = json.Marshal(env); err != nil {
			return Refused, fmt.Errorf("encode the translated item: %w", err)
		}
		meta.Scripted = scripted // a Stage to Target's rejection and the scripts' log lines
	}
	_, err := in.ReceiveMessage(ctx, d.Integration.Name, d.Caller, body, meta)
	return Settle(ctx, in, d, err)
}

// Settle turns the inbound path's answer to an item into its outcome,
// recording a refusal (but not a repeat) as the inbound API records one.
func Settle(ctx context.Context, in *inbound.Service, d Delivery, err error) (Outcome, error) {
	if err == nil {
		return Processed, nil
	}
	var ref *inbound.Refusal
	var ve *models.ValidationError
	switch {
	case errors.As(err, &ref) && ref.Kind == inbound.RefusalDuplicate:
		return Duplicate, nil
	case errors.As(err, &ref), errors.As(err, &ve):
		body, _ := json.Marshal(map[string]string{"error": err.Error()})
		if rerr := in.RecordInboundRefusal(ctx, d.Integration.Name, d.Meta, d.Body, http.StatusUnprocessableEntity, body); rerr != nil {
			return Refused, rerr
		}
		return Refused, nil
	}
	return Refused, fmt.Errorf("inbound: %w", err)
}

// itemMeta is how a polled item shows in its inbound HTTP Request record:
// the poll's request it came in the answer to.
func itemMeta(resp *Response) inbound.RequestMeta {
	m := inbound.RequestMeta{Method: "POLL", URL: "poll", Header: http.Header{}, Started: time.Now()}
	if resp != nil && resp.request != "" {
		m.URL = resp.request
	}
	return m
}
