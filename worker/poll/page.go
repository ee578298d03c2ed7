package poll

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/inbound"
	"unifi/models/webhook"
)

// translated is one item translated ahead of its turn, and the remote
// tickets its scripts' findBond asked about; ready is closed once it is.
type translated struct {
	env      *models.Envelope
	scripted *inbound.Scripted // a Stage to Target's rejection and the scripts' log lines
	err      error
	looked   []string
	ready    chan struct{}
}

// translateAhead starts translating a page's items with the integration's
// inbound scripts in parallel, outside the page's transaction, so that the
// scripts (most of an item's CPU) run while PostgreSQL writes the items
// before them; their findBond reads the bonds as committed. deliverPage
// keeps a translation when no earlier item of the page may have changed a
// bond it looked up, and translates the item again, seeing the page,
// otherwise. wait returns once every worker is done.
func (r *run) translateAhead(ctx context.Context, page *Page, meta inbound.RequestMeta,
	translate webhook.TranslateFunc) (out []translated, wait func()) {
	if translate == nil || len(page.Items) == 0 {
		return nil, func() {}
	}
	out = make([]translated, len(page.Items))
	next := make(chan int, len(page.Items))
	for i := range out {
		out[i].ready = make(chan struct{})
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(page.Items)) {
		wg.Go(func() {
			for i := range next {
				t := &out[i]
				lookups := r.rn.inbound.NotingLookups(func(ref string) { t.looked = append(t.looked, ref) })
				t.env, t.scripted, t.err = translate(ctx, lookups, inbound.Request{Integration: r.integration.Name, JSON: true,
					Body: page.Items[i].Body, Meta: meta})
				close(t.ready)
			}
		})
	}
	return out, wg.Wait
}

// deliverPage receives a page's items on the inbound path inside the page's
// transaction, together (inbound.Page: the configuration read once, the
// Creates written in a few statements, each item's outcome the one it has
// alone), in order. Each is translated as Deliver does: ahead (pre) unless
// an earlier item of the page may have changed what its findBond read, else
// now, its findBond seeing the page's earlier items.
func (r *run) deliverPage(ctx context.Context, tx *gorm.DB, page *Page, meta inbound.RequestMeta,
	translate webhook.TranslateFunc, pre []translated, n *counts) error {
	in := r.rn.inbound.InTx(tx)
	p := in.NewPage(r.integration.Name, &r.caller)
	lookups := p.Lookups()
	changed, changedAll := map[string]bool{}, false // remote tickets whose bonds earlier items may have changed
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
		body, itemMeta := it.Body, meta
		if translate != nil {
			<-pre[i].ready
			env, scripted, err := pre[i].env, pre[i].scripted, pre[i].err
			if changedAll || slices.ContainsFunc(pre[i].looked, func(ref string) bool { return changed[ref] }) {
				env, scripted, err = translate(ctx, lookups, inbound.Request{Integration: r.integration.Name, JSON: true,
					Body: it.Body, Meta: meta})
			}
			if err != nil {
				if err := settle(nil, err); err != nil {
					return err
				}
				continue
			}
			ref, all := p.Affects(ctx, env)
			changed[ref], changedAll = true, changedAll || all
			if body, err = json.Marshal(env); err != nil {
				return fmt.Errorf("item %d of the page: encode the translated item: %w", i+1, err)
			}
			itemMeta.Scripted = scripted // as Deliver does
		}
		if err := p.Receive(ctx, body, itemMeta, settle); err != nil {
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
