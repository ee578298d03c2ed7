package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/queue"
)

// A ticket edit is timed by the latency bench from the call to the remote
// receiving its message, and under load every round trip to PostgreSQL waits
// for a core. An edit plans its writes (the changed fields' stamps, the
// messages it fires, their Stages and scripts) from the ticket as it was and
// the process's configuration; read under the ticket's lock, they cost a
// round trip before the writes can be sent (UpdateTicket's second path).
//
// The Store keeps the tickets it last wrote or read (editedTickets), each
// with the xmin of its row version, and the configuration by version
// (changeConfigs). When both are at hand, the edit is planned before it
// reaches the database and sent in one round trip: BEGIN, the locks, the
// checks that the ticket's row is still the one read (its xmin: any writer
// of the row, ours or another process's, makes a new one) and that the
// configuration's version is still the one planned with (expect_unchanged,
// migration 00290), the writes and COMMIT. A failed check rolls back and
// the edit goes the second path. The message's sequence number and time
// stamp on its bond are given in SQL from the locked bond either way
// (outboundTicketBondSQL's greatest()), so no bond is read before.

// ticketCacheSize bounds the tickets an edit may be planned from without
// reading; ticketCacheText leaves out tickets with long texts (a description
// and work notes of up to 32,000 characters each): at most about 8 MB.
const (
	ticketCacheSize = 1024
	ticketCacheText = 8 << 10
)

// editedTickets are the tickets this Store last wrote or read, by id, each
// with its row version's xmin.
type editedTickets struct {
	mu   sync.Mutex
	byID map[int64]editedTicket
}

type editedTicket struct {
	t    models.Ticket
	xmin string
}

// get returns ticket id as kept, when it is kept at version.
func (c *editedTickets) get(id int64, version int) (models.Ticket, string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.byID[id]
	if !ok || e.t.Version != version {
		return models.Ticket{}, "", false
	}
	return e.t, e.xmin, true
}

// put keeps t, read or written as the row version xmin. The kept ticket's
// maps are never changed in place: an edit builds new ones (ValidateCustom,
// StampChanges).
func (c *editedTickets) put(t *models.Ticket, xmin string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.byID == nil {
		c.byID = map[int64]editedTicket{}
	}
	if utf8.RuneCountInString(t.Description)+utf8.RuneCountInString(t.WorkNotes) > ticketCacheText {
		delete(c.byID, t.ID)
		return
	}
	if _, ok := c.byID[t.ID]; !ok && len(c.byID) >= ticketCacheSize {
		for id := range c.byID { // any one: map order is random
			delete(c.byID, id)
			break
		}
	}
	c.byID[t.ID] = editedTicket{t: *t, xmin: xmin}
}

// ticketRow is a ticket read with its row version's xmin (ticketSQL).
type ticketRow struct {
	models.Ticket
	RowXmin string
}

// ticketSQL reads a ticket with its xmin; %s is the condition on t.
const ticketSQL = `SELECT t.*, t.xmin::text AS row_xmin FROM tickets t WHERE %s`

// readTicket reads the ticket the condition cond on t picks with arg, and
// keeps it for an edit (editedTickets).
func (s *Store) readTicket(ctx context.Context, cond string, arg any, what string) (*models.Ticket, error) {
	var row ticketRow
	var found bool
	var rb pg.Batch
	pg.QueueRow(&rb, &row, &found, fmt.Sprintf(ticketSQL, cond), arg)
	if err := rb.Run(ctx, s.db); err != nil {
		return nil, fmt.Errorf("get ticket %s: %w", what, err)
	}
	if !found {
		return nil, pg.NotFound(gorm.ErrRecordNotFound, "get ticket "+what)
	}
	s.editedTickets.put(&row.Ticket, row.RowXmin)
	return &row.Ticket, nil
}

// GetTicket returns the ticket with id.
func (s *Store) GetTicket(ctx context.Context, id int64) (*models.Ticket, error) {
	return s.readTicket(ctx, "t.id = $1", id, fmt.Sprint(id))
}

// GetTicketByNumber returns the ticket numbered number (INC0000001).
func (s *Store) GetTicketByNumber(ctx context.Context, number string) (*models.Ticket, error) {
	return s.readTicket(ctx, "t.number = $1", number, number)
}

// UpdateTicket changes ticket id when it is still at version (optimistic
// locking) and, in the same database transaction, creates the outbound
// transactions the change triggers: "resolve" when it moves to Resolved,
// "update" otherwise.
//
// It takes one round trip when the Store holds the ticket at version and
// the process's configuration (planned ahead, above), else two: one batch
// begins the database transaction, locks the ticket's bonds and the ticket
// and reads it with the configuration's version (a third reads the
// process's configuration when that version is new to the Store); the second
// writes the ticket, its activity, each outbound transaction and commits.
// Sent statement by statement it took eight, and under the latency bench's
// load each round trip waited for a core (docs/engine.md, "Third round").
func (s *Store) UpdateTicket(ctx context.Context, actor models.Actor, id int64, version int, in TicketInput) (*models.Ticket, error) {
	if err := models.RoleMay(actor.Role, models.ActionWorkTickets); err != nil {
		return nil, err
	}
	in.normalize()
	if err := in.validate(); err != nil {
		return nil, err
	}
	taker := s.takerNow()
	defer editing(taker)()
	e := ticketEdit{actor: actor, in: in}
	e.leaseOwner, e.leaseSeconds = leaseOf(taker)
	err := pg.OnConn(ctx, s.db, func(c *pgx.Conn) error {
		if old, xmin, ok := s.editedTickets.get(id, version); ok {
			if cfg := s.changeConfigs.latest(old.ProcessID); cfg != nil {
				err := s.sendEdit(ctx, c, &e, &old, xmin, cfg, true)
				if errors.Is(err, errNotPlanned) {
					// A refusal (a custom value, a required field) may come
					// from a configuration changed since: planned again
					// from what the lock reads, it stands or goes.
					return s.readAndSendEdit(ctx, c, &e, id, version)
				}
				if !errors.Is(err, errStale) {
					return err
				}
				// Changed since kept: plan again from what the lock reads.
				s.plannedAhead.stale.Add(1)
				if _, err := c.Exec(ctx, sqlRollback); err != nil {
					return fmt.Errorf("roll back the edit planned ahead: %w", err)
				}
				e.handed = nil
			}
		}
		return s.readAndSendEdit(ctx, c, &e, id, version)
	})
	if err != nil {
		return nil, fmt.Errorf("update ticket %d: %w", id, err)
	}
	handOver(taker, e.handed)
	return &e.t, nil
}

// ticketEdit is one UpdateTicket call: what it was given, and what it wrote.
type ticketEdit struct {
	actor        models.Actor
	in           TicketInput
	leaseOwner   string         // the engine of this process, or ""
	leaseSeconds float64        // its lease
	t            models.Ticket  // the ticket as written
	handed       []queue.Handed // transactions written leased to the engine of this process
}

// readAndSendEdit is an edit's second path: BEGIN, the locks and the reads
// in one round trip, the configuration when its version is new to the
// Store, then the writes (sendEdit).
func (s *Store) readAndSendEdit(ctx context.Context, c *pgx.Conn, e *ticketEdit, id int64, version int) error {
	var read pg.Batch
	var found bool
	var row ticketRow
	var configVersion string
	pg.QueueExec(&read, sqlBegin)
	pg.QueueExec(&read, sqlGenericPlans)
	pg.QueueRow(&read, &row, &found, lockTicketSQL, id)
	queueVersion(&read, &configVersion)
	if err := read.Send(ctx, c); err != nil {
		return fmt.Errorf("lock and read the ticket: %w", err)
	}
	if !found {
		return pg.NotFound(gorm.ErrRecordNotFound, "find ticket")
	}
	cfg := s.changeConfigs.get(row.ProcessID, configVersion)
	if cfg == nil {
		cfg = &changeConfig{}
		var rb pg.Batch
		queueChangeConfig(&rb, cfg, "$1", row.ProcessID)
		if err := rb.Send(ctx, c); err != nil {
			return fmt.Errorf("read the process's fields and outbound messages: %w", err)
		}
		s.changeConfigs.put(row.ProcessID, cfg)
	}
	if row.Version != version {
		return &models.ConflictError{Reason: fmt.Sprintf("This ticket was changed by someone else meanwhile (it is at version %d, you edited version %d). Reload it and make your change again.", row.Version, version)}
	}
	return s.sendEdit(ctx, c, e, &row.Ticket, row.RowXmin, cfg, false)
}

// sendEdit plans the edit of old (at row version xmin) with cfg and sends
// its writes and COMMIT in one round trip. ahead: nothing is sent yet, so
// the batch begins the database transaction, takes the locks and checks
// that the configuration is still at cfg's version; errStale when the
// ticket or the configuration changed since they were read, errNotPlanned
// when the plan failed before anything was sent.
func (s *Store) sendEdit(ctx context.Context, c *pgx.Conn, e *ticketEdit, old *models.Ticket, xmin string, cfg *changeConfig, ahead bool) error {
	t := *old
	before := ticketSnapshot(old)
	change := models.TicketChange{Event: models.TriggerUpdate}
	if e.in.State == "Resolved" && old.State != "Resolved" {
		change.Event = models.TriggerResolve
	}
	e.in.apply(&t)
	notPlanned := func(err error) error {
		if ahead {
			return fmt.Errorf("%w: %w", errNotPlanned, err)
		}
		return err
	}
	if err := applyCustom(cfg.fields, &t, e.in); err != nil {
		return notPlanned(err)
	}
	change.Changed = models.ChangedFields(old, &t)
	t.Version++
	// Each changed field gets this change's stamp: the application's clock
	// is the sender's time the other side compares (docs/domain.md,
	// "Concurrent edits converge").
	models.StampChanges(old, &t, s.now(), e.actor.Name)
	outs, err := s.planOutbound(cfg.targets, &t, old, change)
	if err != nil {
		return notPlanned(err)
	}
	var write pg.Batch
	if ahead {
		pg.QueueExec(&write, sqlBegin)
		pg.QueueExec(&write, sqlGenericPlans)
		pg.QueueExec(&write, lockTicketSQL, t.ID)
		pg.QueueExec(&write, expectConfigSQL, cfg.version)
	}
	var written ticketRow
	var found bool
	pg.QueueRow(&write, &written, &found, updateTicketSQL, t.ID, t.ShortDescription, t.Description, t.State, t.Priority,
		t.Urgency, t.Impact, t.AssignmentGroup, t.WorkNotes, t.Custom, t.Version, t.FieldStamps, xmin, old.Version)
	pg.QueueActivity(&write, e.actor, "update ticket", "ticket", t.ID, t.Number, before, ticketSnapshot(&t))
	for _, n := range outs {
		n.LeaseOwner, n.LeaseSeconds = e.leaseOwner, e.leaseSeconds
		pg.QueueScan(&write, collectHanded(&e.handed), n.sql(), n.args()...)
	}
	pg.QueueExec(&write, sqlCommit)
	if err := write.Send(ctx, c); err != nil {
		if pgErr := (*pgconn.PgError)(nil); errors.As(err, &pgErr) && pgErr.Code == staleCode {
			return fmt.Errorf("%w: %s", errStale, pgErr.Message)
		}
		return fmt.Errorf("write the ticket and its outbound transactions: %w", err)
	}
	t.UpdatedAt = written.UpdatedAt
	e.t = t
	s.editedTickets.put(&t, written.RowXmin)
	if ahead {
		s.plannedAhead.sent.Add(1)
	}
	return nil
}

// errStale is an edit planned ahead whose ticket or configuration changed
// since the Store read them; staleCode is expect_unchanged's SQLSTATE.
// errNotPlanned is an edit whose plan ahead failed.
var (
	errStale      = errors.New("changed since it was read")
	errNotPlanned = errors.New("not planned ahead")
)

const staleCode = "UF001"

// sqlBegin, sqlCommit and sqlRollback delimit UpdateTicket's database
// transaction, sent in its batches.
const (
	sqlBegin    = `BEGIN`
	sqlCommit   = `COMMIT`
	sqlRollback = `ROLLBACK`
)

// sqlGenericPlans makes the edit's statements run on the plan kept with each
// prepared statement, for its database transaction only. Planned afresh, the
// outbound statement alone planned for 0.7 ms and executed in 0.5 ms (EXPLAIN
// ANALYZE in BenchmarkUpdateTicket's database); with this setting the edit
// took 1.63 ms against 1.85 ms (BenchmarkUpdateTicket, means of four
// alternating runs). Each statement finds its rows by key: a generic plan
// reads what a custom one does.
const sqlGenericPlans = `SELECT set_config('plan_cache_mode', 'force_generic_plan', true)`

// lockTicketSQL locks the bonds of ticket $1 in id order, then the ticket,
// and reads the ticket with its xmin: one statement for what were two. Lock
// order is bonds, then the ticket, as in inbound processing, so a UI edit
// and an inbound update of the same ticket cannot deadlock: the bonds are
// locked by a materialized CTE whose count is a one-time filter, evaluated
// before the ticket's row is read and locked (EXPLAIN: InitPlan, One-Time
// Filter, under the ticket's LockRows). The ticket lock is NO KEY UPDATE: a
// receipt that moves a transaction of this ticket twice in its database
// transaction re-checks the foreign key to tickets (FOR KEY SHARE), which
// FOR UPDATE would block while this transaction waits for that receipt's
// bond: a deadlock the crash test found under load.
const lockTicketSQL = `WITH b AS MATERIALIZED (SELECT id FROM bonds WHERE ticket_id = $1 ORDER BY id FOR UPDATE)
	SELECT t.*, t.xmin::text AS row_xmin FROM tickets t WHERE t.id = $1 AND (SELECT count(*) FROM b) >= 0
	FOR NO KEY UPDATE OF t`

// expectConfigSQL checks that the configuration is at version $1.
const expectConfigSQL = `SELECT expect_unchanged(version::text = $1, 'the configuration') FROM inbound_config_version`

// updateTicketSQL writes a ticket change on the row version $13 (xmin, read
// under the ticket's lock or kept by the Store) at ticket version $14 and
// returns the new one's xmin and time; another row version is errStale. The
// ticket is locked: under READ COMMITTED the update would see a change
// committed meanwhile, which the xmin refuses (and the version: an xmin is
// 32 bits, which wrap around).
const updateTicketSQL = `WITH u AS (UPDATE tickets SET short_description = $2, description = $3, state = $4,
		priority = $5, urgency = $6, impact = $7, assignment_group = $8, work_notes = $9, custom = $10, version = $11,
		field_stamps = $12, updated_at = now() WHERE id = $1 AND xmin = $13::xid AND version = $14
		RETURNING xmin::text AS row_xmin, updated_at)
	SELECT u.row_xmin, u.updated_at FROM (SELECT) one LEFT JOIN u ON true
	WHERE expect_unchanged(u.row_xmin IS NOT NULL, 'the ticket')`
