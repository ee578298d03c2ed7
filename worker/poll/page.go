package poll

import (
	"context"
	"encoding/json"
	"fmt"

	"gorm.io/gorm"

	"unifi/models/inbound"
	"unifi/models/webhook"
)

// deliverPage receives a page's items on the inbound path inside the page's
// transaction, together (inbound.Page: the configuration read once, the
// Creates written in a few statements, each item's outcome the one it has
// alone): translated by the integration's inbound scripts as Deliver does,
// their findBond seeing the Creates held back before them.
func (r *run) deliverPage(ctx context.Context, tx *gorm.DB, page *Page, meta inbound.RequestMeta,
	translate webhook.TranslateFunc, n *counts) error {
	in := r.rn.inbound.InTx(tx)
	p := in.NewPage(r.integration.Name, &r.caller)
	lookups := p.Lookups()
	for i, it := range page.Items {
		d := Delivery{Integration: &r.integration, Caller: &r.caller, Body: it.Body, Meta: meta, Inbound: r.rn.inbound,
			Translate: translate}
		settle := func(_ *inbound.Result, err error) error {
			out, err := Settle(ctx, in, d, err)
			if err != nil {
				return fmt.Errorf("item %d of the page: %w", i+1, err)
			}
			n.add(out)
			return nil
		}
		body := it.Body
		if translate != nil {
			env, err := translate(ctx, lookups, inbound.Request{Integration: r.integration.Name, JSON: true, Body: it.Body,
				Meta: meta})
			if err != nil {
				if err := settle(nil, err); err != nil {
					return err
				}
				continue
			}
			if body, err = json.Marshal(env); err != nil {
				return fmt.Errorf("item %d of the page: encode the translated item: %w", i+1, err)
			}
		}
		if err := p.Receive(ctx, body, meta, settle); err != nil {
			return err
		}
	}
	return p.Flush(ctx)
}

// deliverEach applies a page's items one at a time through Opts.Deliver.
func (r *run) deliverEach(ctx context.Context, tx *gorm.DB, page *Page, meta inbound.RequestMeta,
	translate webhook.TranslateFunc, n *counts) error {
	for i, it := range page.Items {
		out, err := r.rn.deliver(ctx, tx, Delivery{Integration: &r.integration, Caller: &r.caller, Body: it.Body,
			Meta: meta, Inbound: r.rn.inbound, Translate: translate})
		if err != nil {
			return fmt.Errorf("item %d of the page: %w", i+1, err)
		}
		n.add(out)
	}
	return nil
}

// add counts one item's outcome.
func (n *counts) add(out Outcome) {
	switch out {
	case Processed:
		n.processed++
	case Duplicate:
		n.duplicate++
	default:
		n.refused++
	}
}
