package inbound

import (
	"context"
	"fmt"
	"time"

	"unifi/models"
	"unifi/models/inbound/inboundsql"
	"unifi/models/pg"
)

// A page of messages received together inside the caller's database
// transaction: a poll page (worker/poll), whose items commit with the
// poller's high-water mark. One at a time, a Create costs ten round trips
// (savepoint, configuration, lock, "already bonded?", numbers, ticket, bond,
// write, release) and its item a millisecond of PostgreSQL; a page of them
// took most of a poll's time (bench -only poll). So a Page reads the
// configuration once, holds back consecutive Creates and writes them
// together: a handful of statements for the lot. The outcome of each
// message is the one it would have had alone:
//   - in order: anything but a Create (an update, a receipt, a refusal of
//     the configuration) first writes the Creates held before it, then is
//     received as ReceiveMessage receives it; so does a Create whose
//     message ID or remote ticket a held Create already has (the second is
//     then a repeat, or "already bonded", as alone), and a findBond of a
//     held Create's remote ticket (Page.Lookups);
//   - the same checks: the remote tickets are locked as one Create locks
//     its own, then duplicates by message ID and tickets already bonded are
//     refused with the same texts, a message whose fields do not make a
//     ticket is refused as alone;
//   - should the batch fail (a copy of a message received at the same
//     moment by another path: the unique index), it is rolled back to its
//     savepoint and its messages are received one at a time.
//
// The configuration is read once per page, in the page's transaction: an
// edit made while a page is applied counts from the next page.

// PageDone receives a message's outcome, as ReceiveMessage returns it, when
// it is known: at once, or when the held Creates are written. An error it
// returns ends the page (Receive or Flush return it).
type PageDone func(res *Result, err error) error

// Page receives the messages of one page; see above.
type Page struct {
	s           *Service // inside the page's transaction
	integration string
	caller      *models.User
	cfgs        map[string]*inboundConfig // by message name, Seen unset
	defs        []models.ProcessField     // the process's own fields, once a message maps one
	held        []pageCreate
	heldIDs     map[string]bool // the held Creates' message IDs
	heldRefs    map[string]bool // and remote tickets
}

type pageCreate struct {
	rc   *inboundCall
	done PageDone
}

// NewPage starts a page of messages caller sends to the integration named
// integration; s must work inside the page's transaction (InTx).
func (s *Service) NewPage(integration string, caller *models.User) *Page {
	return &Page{s: s, integration: integration, caller: caller, cfgs: map[string]*inboundConfig{},
		heldIDs: map[string]bool{}, heldRefs: map[string]bool{}}
}

// config is the integration's configuration for a message name, read once
// per page. A refusal is not kept: the next message asks again.
func (p *Page) config(ctx context.Context, name string) (*inboundConfig, error) {
	if cfg := p.cfgs[name]; cfg != nil {
		return cfg, nil
	}
	cfg, err := p.s.loadInboundConfig(ctx, p.integration, name, "")
	if err != nil {
		return nil, err
	}
	p.cfgs[name] = cfg
	return cfg, nil
}

// Receive receives one message of the page (its body raw, an envelope).
func (p *Page) Receive(ctx context.Context, raw []byte, meta RequestMeta, done PageDone) error {
	env, problems, perr := parseEnvelope(raw)
	name := ""
	if perr == nil {
		name = env.Name
	}
	cfg, err := p.config(ctx, name)
	if err != nil {
		if ferr := p.Flush(ctx); ferr != nil {
			return ferr
		}
		return done(nil, err)
	}
	// A Create whose scripts logged lines the transaction log keeps is
	// received alone (the batch writes one log line a message).
	scriptLogs := meta.Scripted != nil && len(meta.Scripted.Logs) > 0 && cfg.Integration.AttachLogs
	if perr == nil && cfg.Message != nil && cfg.Message.Type == models.MessageCreate && cfg.allows(p.caller) == nil &&
		!scriptLogs {
		rc := &inboundCall{s: p.s, cfg: cfg, in: &cfg.Integration, msg: cfg.Message, caller: p.caller, env: env,
			raw: raw, meta: meta}
		if err := rc.checkMessage(problems); err != nil {
			return done(nil, err) // refused on its own words: nothing to keep in order
		}
		if p.heldIDs[env.SourceID] || p.heldRefs[env.SourceReference] {
			if err := p.Flush(ctx); err != nil {
				return err
			}
		}
		p.held = append(p.held, pageCreate{rc: rc, done: done})
		p.heldIDs[env.SourceID], p.heldRefs[env.SourceReference] = true, true
		return nil
	}
	if err := p.Flush(ctx); err != nil {
		return err
	}
	one := *cfg
	if perr == nil && env.SourceID != "" && cfg.Message != nil &&
		(cfg.Message.Type == models.MessageCreate || cfg.Message.Type == models.MessageUpdate) {
		if err := p.s.pool().QueryRowContext(ctx, inboundsql.PageSeen, cfg.Integration.ID, env.SourceID).Scan(&one.Seen); err != nil {
			return fmt.Errorf("find message %q: %w", env.SourceID, err)
		}
	}
	res, err := p.s.receiveChecked(ctx, &one, p.caller, env, problems, perr, raw, meta)
	return done(res, err)
}

// Lookups is the service whose FindBond (inbound scripts' findBond) sees
// the held Creates: a held Create of the remote ticket asked about is
// written first.
func (p *Page) Lookups() *Service {
	c := *p.s
	c.page = p
	return &c
}

// Affects is what receiving env may change of what FindBond reads: the
// bonds of the remote ticket ref, or (all) perhaps any bond of the
// integration (an update or a receipt that names only our ticket or
// transaction). A message that would be refused changes nothing.
func (p *Page) Affects(ctx context.Context, env *models.Envelope) (ref string, all bool) {
	cfg, err := p.config(ctx, env.Message.Name)
	if err != nil {
		return "", true // unknown: assume the worst
	}
	if cfg.Message == nil {
		return "", false
	}
	switch cfg.Message.Type {
	case models.MessageCreate:
		return env.Message.SourceReference, false
	case models.MessageUpdate:
		return env.Message.SourceReference, env.Message.SourceReference == ""
	case models.MessageReceipt:
		return "", true
	}
	return "", false
}

// Flush writes the held Creates and gives each its outcome; the page's
// transaction must not commit before it.
func (p *Page) Flush(ctx context.Context) error {
	if len(p.held) == 0 {
		return nil
	}
	held := p.held
	p.held, p.heldIDs, p.heldRefs = nil, map[string]bool{}, map[string]bool{}
	tx := p.s.db.WithContext(ctx)
	if err := tx.SavePoint(inboundsql.PageSavepoint).Error; err != nil {
		return fmt.Errorf("inbound page: %w", err)
	}
	outcomes, err := p.createAll(ctx, held)
	if err != nil {
		if rerr := tx.RollbackTo(inboundsql.PageSavepoint).Error; rerr != nil {
			return fmt.Errorf("inbound page: %w (after %w)", rerr, err)
		}
		for _, h := range held { // one at a time, as alone
			c := *h.rc.cfg
			c.Seen = true // the duplicate check looks for itself
			h.rc.cfg = &c
			res, err := h.rc.message(ctx)
			if err := h.done(res, err); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := pg.Exec(tx, inboundsql.PageRelease); err != nil {
		return fmt.Errorf("inbound page: %w", err)
	}
	for i, h := range held {
		if err := h.done(outcomes[i].res, outcomes[i].err); err != nil {
			return err
		}
	}
	return nil
}

type pageOutcome struct {
	res *Result
	err error
}

// createAll checks and writes held Creates (all of one integration) in a
// few statements: the remote tickets locked, then duplicates and tickets
// already bonded read, then the numbers, the tickets, the bonds and what
// write stores for each message.
func (p *Page) createAll(ctx context.Context, held []pageCreate) ([]pageOutcome, error) {
	c := p.s.pool()
	in := held[0].rc.in
	ids, refs := make([]string, len(held)), make([]string, len(held))
	for i, h := range held {
		ids[i], refs[i] = h.rc.env.SourceID, h.rc.env.SourceReference
	}
	if _, err := c.ExecContext(ctx, inboundsql.PageLock, pg.Array(refs), in.ID); err != nil {
		return nil, fmt.Errorf("lock remote references: %w", err)
	}
	seen, bonded := map[string]bool{}, map[string]string{}
	rows, err := c.QueryContext(ctx, inboundsql.PageChecks, in.ID, pg.Array(ids), pg.Array(refs))
	if err != nil {
		return nil, fmt.Errorf("find received messages and bonds: %w", err)
	}
	for rows.Next() {
		var kind, key, internal string
		if err := rows.Scan(&kind, &key, &internal); err != nil {
			rows.Close()
			return nil, err
		}
		if kind == "seen" {
			seen[key] = true
		} else {
			bonded[key] = internal
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	now := p.s.now()
	out := make([]pageOutcome, len(held))
	var creating []int // the messages that create, by index in held
	tickets := []models.Ticket{}
	for i, h := range held {
		rc := h.rc
		switch {
		case seen[rc.env.SourceID]:
			out[i].err = rc.duplicate(ctx)
			continue
		case bonded[rc.env.SourceReference] != "":
			out[i].err = rc.bondedElsewhere(bonded[rc.env.SourceReference])
			continue
		}
		var defs []models.ProcessField // as createTx: read only for a message that maps a process field
		if mapsCustom(rc.cfg.Fields) {
			if p.defs == nil {
				if p.defs, err = processFieldsFor(p.s.db.WithContext(ctx), in.ProcessID, rc.cfg.Fields); err != nil {
					return nil, err
				}
			}
			defs = p.defs
		}
		t, err := rc.newTicket(defs, now)
		if err != nil {
			out[i].err = err
			continue
		}
		creating = append(creating, i)
		tickets = append(tickets, t)
	}
	if len(creating) == 0 {
		return out, nil
	}
	nums := make([][3]int64, 0, len(creating))
	rows, err = c.QueryContext(ctx, inboundsql.PageNumbers, len(creating))
	if err != nil {
		return nil, fmt.Errorf("number tickets: %w", err)
	}
	for rows.Next() {
		var n [3]int64
		if err := rows.Scan(&n[0], &n[1], &n[2]); err != nil {
			rows.Close()
			return nil, err
		}
		nums = append(nums, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(nums) != len(creating) {
		return nil, fmt.Errorf("number tickets: %d of %d: %w", len(nums), len(creating), err)
	}
	for j := range tickets {
		tickets[j].Number = fmt.Sprintf("%s%07d", held[creating[j]].rc.cfg.NumberPrefix, nums[j][0])
	}
	// GORM on purpose, as createTx: a ticket's columns are models.Ticket's.
	// One multi-row INSERT, its ids returned in the rows' order.
	if err := p.s.db.WithContext(ctx).Create(&tickets).Error; err != nil {
		return nil, fmt.Errorf("create tickets: %w", err)
	}
	return out, p.bondAll(ctx, held, creating, tickets, nums, out, now)
}

// bondAll writes the bonds of the new tickets and their messages'
// transactions (inboundsql.GroupWrite, the group commit's statement) and sets
// each one's result.
func (p *Page) bondAll(ctx context.Context, held []pageCreate, creating []int, tickets []models.Ticket, nums [][3]int64,
	out []pageOutcome, now time.Time) error {
	c := p.s.pool()
	n := len(creating)
	w := newGroupWrite(n)
	items := make([]*inboundItem, n)
	targets := make([]inboundTarget, n)
	recs := make([]*inboundRecord, n)
	var bTicket []int64
	var bInternal, bExternal, bState, bHistory []string
	var bLast []time.Time
	accepted := inboundOutcome{process: models.ProcessAccepted, applied: true}
	for j, i := range creating {
		rc := held[i].rc
		targets[j] = inboundTarget{InternalReference: tickets[j].Number, ExternalReference: rc.env.SourceReference,
			BondState: rc.newBondState(), TicketID: tickets[j].ID, Trn: nums[j][1], Msg: nums[j][2], newBond: true}
		rec, _, err := rc.record(&targets[j], accepted, nil, now, &tickets[j])
		if err != nil {
			return err
		}
		recs[j] = rec
		bTicket = append(bTicket, tickets[j].ID)
		bInternal = append(bInternal, tickets[j].Number)
		bExternal = append(bExternal, rc.env.SourceReference)
		bState = append(bState, string(targets[j].BondState))
		bHistory = append(bHistory, inboundHistoryLine(now, rec.what))
		bLast = append(bLast, rc.env.TimeStamp)
	}
	in := held[0].rc.in
	bonds := make(map[int64]int64, n) // by ticket
	rows, err := c.QueryContext(ctx, inboundsql.PageBonds, in.ID, now, pg.Array(bTicket), pg.Array(bInternal),
		pg.Array(bExternal), pg.Array(bState), pg.Array(bHistory), pg.Array(bLast))
	if err != nil {
		return fmt.Errorf("create bonds: %w", err)
	}
	for rows.Next() {
		var id, ticket int64
		if err := rows.Scan(&id, &ticket); err != nil {
			rows.Close()
			return err
		}
		bonds[ticket] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("create bonds: %w", err)
	}
	for j, i := range creating {
		targets[j].BondID = bonds[tickets[j].ID]
		items[j] = &inboundItem{rc: held[i].rc}
		w.addMessage(items[j], &targets[j], recs[j], accepted, 1) // the bond's first
	}
	rows, err = c.QueryContext(ctx, inboundsql.GroupWrite, w.args(now)...)
	if err != nil {
		return fmt.Errorf("store transactions: %w", err)
	}
	w.ids = make(map[string]int64, n)
	for rows.Next() {
		var id, notified int64
		var ident string
		if err := rows.Scan(&id, &ident, &notified); err != nil {
			rows.Close()
			return err
		}
		w.ids[ident] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store transactions: %w", err)
	}
	w.finish(now)
	for j, i := range creating {
		out[i].res = items[j].res
	}
	return nil
}
