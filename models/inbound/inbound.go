package inbound

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/converge"
	"unifi/models/inbound/envelope"
	"unifi/models/inbound/httprecord"
	"unifi/models/inbound/inboundsql"
	"unifi/models/pg"
	"unifi/models/queue"
)

// The inbound side of the protocol (docs/domain.md, "Transaction states" and "The wire protocol"): a remote system posts an
// envelope to /api/v1/integrations/{name}/messages. ReceiveMessage checks and
// applies it in one database transaction, together with its HTTP Request
// record; a refusal rolls everything back and the caller records the refused
// request on its own with RecordInboundRefusal. docs/inbound.md has the rules.

// Result is what an accepted inbound request did.
type Result struct {
	// Transaction is the new inbound transaction, or for a receipt the outbound
	// transaction it completed; nil for a heartbeat.
	Transaction *models.Transaction
	Response    models.Envelope // the synchronous answer
	Body        []byte          // Response encoded, exactly as stored in the HTTP Request record
	Applied     bool            // the message changed the ticket (false: rejected, stale, receipt or heartbeat)
	Receipt     bool            // the request was a receipt
}

// inboundReceiptWait is how long a receipt waits for its initiating
// transaction to leave Sending (the sender's synchronous call still in flight).
const inboundReceiptWait = 2 * time.Second

// AuthenticateInbound checks the credentials a remote system sent from addr:
// HTTP basic (hasBasic, through the login throttle) or a bearer token.
// Failures are *Refusal values. An account whose role may not use the
// API is answered exactly like wrong credentials, so the answer never tells
// that a password was right.
func (s *Service) AuthenticateInbound(ctx context.Context, basicUser, basicPassword string, hasBasic bool,
	bearer, addr string) (*models.User, error) {
	var u *models.User
	var err error
	switch {
	case bearer != "":
		u, err = s.accounts.AuthenticateToken(ctx, bearer)
	case hasBasic:
		u, err = s.accounts.AuthenticatePassword(ctx, basicUser, basicPassword, addr)
	default:
		return nil, refuse(RefusalUnauthenticated,
			"Authentication required: send the integration's inbound account with HTTP basic auth or a bearer token")
	}
	var te *account.ThrottledError
	if errors.As(err, &te) {
		return nil, &Refusal{Kind: RefusalThrottled, Reason: te.Reason, RetryAfter: te.RetryAfter}
	}
	if errors.Is(err, models.ErrInvalidCredentials) || (err == nil && models.RoleMay(u.Role, models.ActionUseAPI) != nil) {
		return nil, refuse(RefusalUnauthenticated, "The credentials are not valid")
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// Request is one request to the inbound API as the HTTP layer read it.
type Request struct {
	Integration   string // the integration's name, from the URL
	Bearer        string // the bearer token, if one was sent
	BasicUser     string // HTTP basic credentials, if HasBasic
	BasicPassword string
	HasBasic      bool
	JSON          bool // the body was sent as application/json
	Body          []byte
	Meta          RequestMeta
}

// ReceiveInbound authenticates an inbound request and receives its message
// (ReceiveMessage). An update message sent with a bearer token that the
// configuration snapshot accepts is applied together with concurrent ones
// (inbound_batch.go), with the same outcome; everything else, and whatever a
// group leaves undecided, takes the one-message path. Refusals are
// *Refusal or *ValidationError values and store nothing.
func (s *Service) ReceiveInbound(ctx context.Context, req Request) (*Result, error) {
	if res, ok, err := s.receiveGrouped(ctx, req); ok {
		return res, err
	}
	return s.receiveOne(ctx, req)
}

// receiveOne is the one-message path: everything read from the database.
func (s *Service) receiveOne(ctx context.Context, req Request) (*Result, error) {
	caller, err := s.AuthenticateInbound(ctx, req.BasicUser, req.BasicPassword, req.HasBasic, req.Bearer, req.Meta.RemoteAddr)
	if err != nil {
		return nil, err
	}
	if !req.JSON {
		return nil, refuseDetail(RefusalMediaType, "The request body must be JSON",
			"send it with Content-Type: application/json")
	}
	return s.ReceiveMessage(ctx, req.Integration, caller, req.Body, req.Meta)
}

// receiveGrouped applies req in a group when it is an update the snapshot
// accepts as it stands; ok is false when the one-message path must decide.
func (s *Service) receiveGrouped(ctx context.Context, req Request) (res *Result, ok bool, err error) {
	it, ok := s.groupItem(ctx, req)
	if !ok {
		return nil, false, nil
	}
	res, fallback, err := s.applyGrouped(it)
	if fallback {
		return nil, false, nil
	}
	return res, true, err
}

// groupItem prepares req for a group: an update message sent with a bearer
// token, both of which the configuration snapshot knows and accepts, and not
// made by inbound scripts (a group writes neither their rejection nor their
// log lines).
func (s *Service) groupItem(ctx context.Context, req Request) (*inboundItem, bool) {
	if s.inbound == nil || req.Bearer == "" || !req.JSON || req.Meta.Scripted != nil {
		return nil, false
	}
	env, problems, perr := parseEnvelope(req.Body)
	if perr != nil || problems.Err() != nil || env.SourceID == "" || !env.HasTimeStamp ||
		(env.SourceReference == "" && env.TargetReference == "") {
		return nil, false
	}
	snap, err := s.inboundSnapshot(ctx)
	if err != nil {
		return nil, false // the one-message path reads the database and reports
	}
	cfg, caller, found := snap.lookup(req.Integration, env.Name, account.HashToken(req.Bearer))
	if !found || cfg.Message.Type != models.MessageUpdate {
		return nil, false
	}
	rc := &inboundCall{s: s, cfg: cfg, in: &cfg.Integration, msg: cfg.Message, caller: caller, env: env,
		raw: req.Body, meta: req.Meta}
	// Worked out here, in the request's own goroutine, not in the group's.
	rc.requestParts()
	if _, err := rc.stageData(); err != nil {
		return nil, false
	}
	return &inboundItem{ctx: ctx, rc: rc, version: snap.version}, true
}

// ReceiveMessage checks an inbound request's body sent by caller to the
// integration called integrationName and applies it: a message becomes an
// inbound transaction (and changes the ticket when business rules allow), a
// receipt completes our Awaiting Receipt transaction. Refusals are
// *Refusal or *ValidationError values and store nothing.
func (s *Service) ReceiveMessage(ctx context.Context, integrationName string, caller *models.User, raw []byte,
	meta RequestMeta) (*Result, error) {
	env, problems, perr := parseEnvelope(raw)
	msgName, sourceID := "", ""
	if perr == nil {
		msgName, sourceID = env.Name, env.SourceID
	}
	// One query reads everything the checks need; the checks then run in order.
	cfg, err := s.loadInboundConfig(ctx, integrationName, msgName, sourceID)
	if err != nil {
		return nil, err
	}
	return s.receiveChecked(ctx, cfg, caller, env, problems, perr, raw, meta)
}

// receiveChecked is ReceiveMessage once the configuration (with Seen) is
// read: the checks in order, then the message, receipt or heartbeat.
func (s *Service) receiveChecked(ctx context.Context, cfg *inboundConfig, caller *models.User, env *envelope.Envelope,
	problems *models.ValidationError, perr error, raw []byte, meta RequestMeta) (*Result, error) {
	if err := cfg.allows(caller); err != nil {
		return nil, err
	}
	if perr != nil {
		return nil, perr
	}
	if cfg.Message == nil {
		return nil, refuse(RefusalUnknownName, TextUnknownMessageName)
	}
	rc := &inboundCall{s: s, cfg: cfg, in: &cfg.Integration, msg: cfg.Message, caller: caller, env: env, raw: raw, meta: meta}
	switch cfg.Message.Type {
	case models.MessageReceipt:
		if err := rc.checkReceipt(ctx, problems); err != nil {
			return nil, err
		}
		return rc.receipt(ctx)
	case models.MessageHeartbeat, models.MessageResponse:
		if err := problems.Err(); err != nil {
			return nil, err
		}
		return rc.heartbeat(ctx)
	}
	if err := rc.checkMessage(problems); err != nil {
		return nil, err
	}
	return rc.message(ctx)
}

// checkReceipt checks a receipt's header and status. Which transaction comes
// before the fields (docs/inbound.md): a receipt for none of ours is refused
// for that first.
func (rc *inboundCall) checkReceipt(ctx context.Context, problems *models.ValidationError) error {
	env := rc.env
	if env.TargetID == "" {
		if _, bad := problems.Fields["message.target_id"]; !bad {
			return refuse(RefusalNoTargetID, TextNoTargetID)
		}
	}
	if !env.HasStatus {
		problems.Add("status", "A receipt needs a status with process_state Accepted or Rejected.")
	}
	err := problems.Err()
	if err == nil || env.TargetID == "" {
		return err
	}
	var found bool
	if qerr := rc.s.pool().QueryRowContext(ctx, inboundsql.InitiatingExists, rc.in.ID, models.Outbound,
		env.TargetID).Scan(&found); qerr != nil {
		return fmt.Errorf("find initiating transaction: %w", qerr)
	}
	if !found {
		return refuse(RefusalNoInitiating, TextNoInitiating)
	}
	return err
}

// checkMessage checks what a Create or Update message's header must give.
func (rc *inboundCall) checkMessage(problems *models.ValidationError) error {
	env, typ := rc.env, rc.msg.Type
	if env.SourceID == "" {
		problems.Add("message.source_id", "Give the sender's Message ID: it is how duplicates are recognised.")
	}
	if !env.HasTimeStamp {
		problems.Add("message.time_stamp", "Give the time the sender created the message: it keeps messages in order.")
	}
	if typ == models.MessageCreate && env.SourceReference == "" {
		problems.Add("message.source_reference", "Give the sender's ticket number: a Create bonds it to a new ticket here.")
	}
	if typ == models.MessageUpdate && env.SourceReference == "" && env.TargetReference == "" {
		problems.Add("message.target_reference", "Give our ticket number (target_reference) or yours (source_reference).")
	}
	return problems.Err()
}

// inboundConfig is what one request needs to know about its integration and
// message, read in one query.
type inboundConfig struct {
	Integration   models.Integration
	NumberPrefix  string
	TicketTable   string
	HasConnection bool
	InboundUserID *int64
	Message       *models.Message // nil: no inbound message of that name
	ReceiptName   string          // name of the message's receipt message
	Fields        []models.Field
	// ResponseFields are the fields of the message's response message: the
	// synchronous answer's data is the ticket through their outbound side
	// (docs/designer-messages.md, "Response message"). Nil: data is empty.
	ResponseFields []models.Field
	Seen           bool // source_id has been received already
}

func (s *Service) loadInboundConfig(ctx context.Context, integrationName, messageName, sourceID string) (*inboundConfig, error) {
	notFound := refuseDetail(RefusalUnknownIntegration, "Integration not found",
		"no integration is called "+inboundQuote(integrationName))
	if integrationName == "" || len(integrationName) > 64 || !envelope.CleanText(integrationName) {
		return nil, notFound
	}
	var row inboundsql.ConfigRow
	err := s.pool().QueryRowContext(ctx, inboundsql.InboundConfig, sourceID, messageName, integrationName).
		Scan(row.Dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		err = nil // row.ID stays 0: no such integration
	}
	if err != nil {
		return nil, fmt.Errorf("read inbound configuration of %q: %w", integrationName, err)
	}
	s.noteInboundVersion(row.ConfigVersion)
	if row.ID == 0 {
		return nil, notFound
	}
	return configOf(&row)
}

// configOf is the configuration row describes, with its message and fields
// when it names one.
func configOf(row *inboundsql.ConfigRow) (*inboundConfig, error) {
	cfg := &inboundConfig{Integration: models.Integration{ID: row.ID, Name: row.Name, State: row.State,
		AttachLogs: row.AttachLogs, ProcessID: row.ProcessID}, NumberPrefix: row.NumberPrefix,
		TicketTable: row.TicketTable, HasConnection: row.ConnectionID != nil, InboundUserID: row.InboundUserID,
		Seen: row.Seen}
	if row.MessageID == nil {
		return cfg, nil
	}
	m := &models.Message{ID: *row.MessageID, IntegrationID: row.ID, Name: inboundDeref(row.MessageName),
		Type: models.MessageType(inboundDeref(row.MessageType)), Async: row.Async != nil && *row.Async,
		ReceiptMessageID: row.ReceiptMessageID, BondOwnership: models.Ownership(inboundDeref(row.BondOwnership)),
		AllowedBondStates: row.AllowedBondStates}
	if row.SetBondState != nil {
		st := models.BondState(*row.SetBondState)
		m.SetBondState = &st
	}
	cfg.Message, cfg.ReceiptName = m, inboundDeref(row.ReceiptName)
	var fields []inboundsql.WireField
	if err := json.Unmarshal([]byte(row.Fields), &fields); err != nil {
		return nil, fmt.Errorf("read fields of message %s: %w", m.Name, err)
	}
	for i, f := range fields {
		cfg.Fields = append(cfg.Fields, f.Field(m.ID, i))
	}
	var resp []inboundsql.WireField
	if err := json.Unmarshal([]byte(row.ResponseFields), &resp); err != nil {
		return nil, fmt.Errorf("read response fields of message %s: %w", m.Name, err)
	}
	cfg.ResponseFields = responseFields(resp)
	return cfg, nil
}

// responseFields are the fields of a message's response message as the
// answer maps them (models.MapResponse); nil when it has none.
func responseFields(wire []inboundsql.WireField) []models.Field {
	var out []models.Field
	for i, f := range wire {
		out = append(out, f.Field(0, i))
	}
	return out
}

func inboundDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// allows checks that the integration takes messages from caller: it has an
// active connection whose inbound account is caller, and it is not Off. A
// Paused integration still accepts. Another account is refused like wrong
// credentials.
func (c *inboundConfig) allows(caller *models.User) error {
	in := &c.Integration
	switch {
	case !c.HasConnection:
		return refuseDetail(RefusalUnavailable, "The integration has no active connection",
			fmt.Sprintf("integration %s accepts no messages until an admin activates one of its connections", in.Name))
	case in.State == models.IntegrationOff:
		return refuseDetail(RefusalUnavailable, "The integration is Off",
			fmt.Sprintf("integration %s accepts no messages while it is Off", in.Name))
	case caller == nil || c.InboundUserID == nil || *c.InboundUserID != caller.ID:
		// Answered exactly like wrong credentials: another integration's
		// account with its right password must not learn that it was right.
		return refuse(RefusalUnauthenticated, "The credentials are not valid")
	}
	return nil
}

func inboundQuote(s string) string {
	return fmt.Sprintf("%q", envelope.Truncate(strings.ToValidUTF8(s, "?"), 64))
}

// inboundCall carries one request through its checks and its database transaction.
type inboundCall struct {
	s      *Service
	cfg    *inboundConfig
	in     *models.Integration
	msg    *models.Message
	caller *models.User
	env    *envelope.Envelope
	raw    []byte
	meta   RequestMeta
	parts  *[4]string // requestParts, worked out once
	stage  []byte     // stageData, encoded once
	// defs are the process's own fields when the message maps one
	// (custom.<name>); read by the one-message update path only.
	defs []models.ProcessField
}

// original returns the header we answered with when source_id was first
// received: read from the answer stored with that request, or, when there is
// none to read, built from the transaction.
func (rc *inboundCall) original(ctx context.Context) (*models.EnvelopeHeader, error) {
	var row struct {
		MessageIdent      string
		ExternalMessageID string
		Number            string
		ExternalReference string
		FirstAnswer       *string
	}
	err := rc.s.pool().QueryRowContext(ctx, inboundsql.Original, rc.in.ID, rc.env.SourceID).Scan(&row.MessageIdent,
		&row.ExternalMessageID, &row.Number, &row.ExternalReference, &row.FirstAnswer)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, models.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("find message %q: %w", rc.env.SourceID, err)
	}
	if row.MessageIdent == "" {
		return nil, models.ErrNotFound
	}
	return firstAnswered(inboundDeref(row.FirstAnswer), &models.EnvelopeHeader{Name: "Response", TimeStamp: rc.s.now().UTC(),
		SourceReference: row.Number, TargetReference: row.ExternalReference, SourceID: row.MessageIdent,
		TargetID: row.ExternalMessageID}), nil
}

// firstAnswered is the header of body, the answer stored when a message was
// first received, or fallback when body holds none.
func firstAnswered(body string, fallback *models.EnvelopeHeader) *models.EnvelopeHeader {
	var env struct {
		Message *models.EnvelopeHeader `json:"message"`
	}
	if err := json.Unmarshal([]byte(body), &env); err != nil || env.Message == nil || env.Message.SourceID == "" {
		return fallback
	}
	return env.Message
}

// duplicate is the refusal of a source_id received before, carrying what we
// answered then. It returns nil when source_id has not been received.
func (rc *inboundCall) duplicate(ctx context.Context) error {
	orig, err := rc.original(ctx)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return rc.duplicateOf(orig)
}

// duplicateOf is the refusal of a source_id received before, whose answer
// had the header orig.
func (rc *inboundCall) duplicateOf(orig *models.EnvelopeHeader) error {
	return &Refusal{Kind: RefusalDuplicate, Reason: TextDuplicate, Original: orig,
		Detail: fmt.Sprintf("message %s was received before; it is not applied again", inboundQuote(rc.env.SourceID))}
}

// message receives a Create or Update message. A plain repeat is caught by
// the configuration query; a concurrent copy by the unique index
// transactions_inbound_source, which rolls it back whole. A copy refused for
// another reason (the bond it would have closed is now Closed, say) is
// checked once more, so the sender always hears "already processed".
func (rc *inboundCall) message(ctx context.Context) (*Result, error) {
	if rc.cfg.Seen {
		if err := rc.duplicate(ctx); err != nil {
			return nil, err
		}
	}
	var res *Result
	err := rc.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		if rc.msg.Type == models.MessageCreate {
			res, err = rc.createTx(tx)
		} else {
			res, err = rc.updateTx(tx)
		}
		return err
	})
	if err == nil {
		return res, nil
	}
	var r *Refusal
	if isInboundDuplicate(err) || errors.As(err, &r) {
		if derr := rc.duplicate(ctx); derr != nil {
			return nil, derr
		}
		if r != nil {
			return nil, r
		}
	}
	return nil, fmt.Errorf("receive %s %s on integration %s: %w", rc.msg.Name, rc.env.SourceID, rc.in.Name, err)
}

func isInboundDuplicate(err error) bool {
	return pg.IsUniqueViolation(err) && strings.Contains(err.Error(), "transactions_inbound_source")
}

// inboundOutcome is what processing decided.
type inboundOutcome struct {
	process      models.ProcessState
	processError string
	applied      bool
	stale        bool
	conflicts    []models.FieldConflict // concurrent edits that lost, on either side (models.MergeInbound)
}

// inboundTarget is the bond and ticket a message lands on, with the numbers
// of its transaction.
type inboundTarget struct {
	BondID            int64
	InternalReference string
	ExternalReference string
	BondState         models.BondState
	Owner             bool
	LastInboundAt     *time.Time
	TicketID          int64
	Trn, Msg          int64
	newBond           bool
}

// createTx: a new ticket and a new bond for the sender's ticket.
func (rc *inboundCall) createTx(tx *gorm.DB) (*Result, error) {
	env := rc.env
	now := rc.s.now()
	// Serialise Creates for one remote ticket, so two cannot both bond it.
	ctx, c := pg.Conn(tx)
	if _, err := c.ExecContext(ctx, inboundsql.LockRemoteReference, env.SourceReference, rc.in.ID); err != nil {
		return nil, fmt.Errorf("lock remote reference: %w", err)
	}
	var existing string
	err := c.QueryRowContext(ctx, inboundsql.BondedRemote, rc.in.ID, env.SourceReference).Scan(&existing)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("find bond of %s: %w", env.SourceReference, err)
	}
	if existing != "" {
		return nil, rc.bondedElsewhere(existing)
	}
	defs, err := processFieldsFor(tx, rc.in.ProcessID, rc.cfg.Fields)
	if err != nil {
		return nil, err
	}
	ticket, err := rc.newTicket(defs, now)
	if err != nil {
		return nil, err
	}
	var nums struct{ K, Trn, Msg int64 }
	if err := c.QueryRowContext(ctx, inboundsql.CreateNumbers).Scan(&nums.K, &nums.Trn, &nums.Msg); err != nil {
		return nil, fmt.Errorf("number ticket: %w", err)
	}
	ticket.Number = fmt.Sprintf("%s%07d", rc.cfg.NumberPrefix, nums.K)
	// The one record this package creates with GORM's generic helper, on
	// purpose: a ticket's columns are models.Ticket's, which grows with the
	// ticket form, and GORM writes every one of them as the UI's ticket
	// creation does. A Create is rare (not the update hot path).
	if err := tx.Create(&ticket).Error; err != nil {
		return nil, fmt.Errorf("create ticket: %w", err)
	}
	state := rc.newBondState()
	ts := env.TimeStamp
	bond := models.Bond{IntegrationID: rc.in.ID, TicketID: ticket.ID, InternalReference: ticket.Number,
		ExternalReference: env.SourceReference, State: state, Owner: false, LastInboundAt: &ts, CreatedAt: now, UpdatedAt: now}
	if err := c.QueryRowContext(ctx, inboundsql.CreateBond, bond.IntegrationID, bond.TicketID, bond.InternalReference,
		bond.ExternalReference, bond.State, bond.Owner, bond.LastInboundAt, bond.CreatedAt, bond.UpdatedAt).Scan(&bond.ID); err != nil {
		return nil, fmt.Errorf("create bond: %w", err)
	}
	target := inboundTarget{BondID: bond.ID, InternalReference: ticket.Number, ExternalReference: env.SourceReference,
		BondState: state, TicketID: ticket.ID, Trn: nums.Trn, Msg: nums.Msg, newBond: true}
	return rc.write(tx, &target, inboundOutcome{process: models.ProcessAccepted, applied: true}, &ticket, nil, nil)
}

// newTicket is the ticket a Create makes (not yet numbered), or the
// refusal of a message whose fields do not make one; defs are the process's
// own fields when the message maps one.
func (rc *inboundCall) newTicket(defs []models.ProcessField, now time.Time) (models.Ticket, error) {
	if why := rc.rejected(); why != "" { // Stage to Target's reject(...): as business rules refusing a create
		return models.Ticket{}, refuseDetail(RefusalCreateRejected, "Message rejected: "+why,
			"no ticket was created; correct the message and send it again")
	}
	blank := models.Ticket{ProcessID: rc.in.ProcessID, State: "New", Priority: 4, Urgency: 3, Impact: 3, Version: 1,
		CreatedByID: &rc.caller.ID, CreatedAt: now, UpdatedAt: now}
	// A new ticket has no stamps: every incoming field and its stamp is taken.
	m, err := mergeInboundFields(&blank, rc.cfg.Fields, rc.env.Data, rc.env.Stamps, false, defs)
	if err != nil {
		return models.Ticket{}, refuseDetail(RefusalCreateRejected, "Message rejected: "+err.Error(),
			"no ticket was created; correct the message and send it again")
	}
	return m.Ticket, nil
}

// newBondState is the state of the bond a Create makes: both references are
// known, so Open unless the message says otherwise.
func (rc *inboundCall) newBondState() models.BondState {
	if rc.msg.SetBondState != nil {
		return *rc.msg.SetBondState
	}
	return models.BondOpen
}

// bondedElsewhere is the refusal of a Create for a remote ticket already
// bonded to our ticket existing.
func (rc *inboundCall) bondedElsewhere(existing string) error {
	return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
		fmt.Sprintf("your ticket %s is already bonded to our %s; send an update instead of a create",
			inboundQuote(rc.env.SourceReference), existing))
}

// updateTx: the bond (and its ticket) the message names, locked, then the
// business rules, then the change.
func (rc *inboundCall) updateTx(tx *gorm.DB) (*Result, error) {
	var row lockedTarget
	if err := rc.lockTarget(tx, &row); err != nil {
		return nil, err
	}
	target := &inboundTarget{BondID: row.BondID, InternalReference: row.InternalReference,
		ExternalReference: row.ExternalReference, BondState: row.BondState, Owner: row.Owner,
		LastInboundAt: row.LastInboundAt, TicketID: row.TicketID, Trn: row.Trn, Msg: row.Msg}
	ticket := &models.Ticket{ID: row.TicketID, Number: row.Number, ShortDescription: row.ShortDescription,
		Description: row.Description, State: row.State, Priority: row.Priority, Urgency: row.Urgency,
		Impact: row.Impact, AssignmentGroup: row.AssignmentGroup, WorkNotes: row.WorkNotes, Version: row.Version,
		FieldStamps: row.FieldStamps}
	if err := rc.bondAllows(target); err != nil {
		return nil, err
	}
	custom := mapsCustom(rc.cfg.Fields)
	if custom || mapsCustom(rc.cfg.ResponseFields) {
		// Only a message that maps a process field reads (and below writes)
		// the ticket's custom values and the process's field definitions
		// (none when only its response message maps one: the answer reads
		// the values); the ticket's row is locked already.
		var err error
		if rc.defs, err = processFieldsFor(tx, rc.in.ProcessID, rc.cfg.Fields); err != nil {
			return nil, err
		}
		if err := tx.Raw(inboundsql.TicketCustom, ticket.ID).Row().Scan(&ticket.Custom); err != nil {
			return nil, fmt.Errorf("read custom values of ticket %d: %w", ticket.ID, err)
		}
	}
	out, updated, bondCols := rc.decideUpdate(target, ticket)
	var ticketCols map[string]any
	if updated != nil {
		ticketCols = map[string]any{"short_description": updated.ShortDescription, "description": updated.Description,
			"state": updated.State, "priority": updated.Priority, "urgency": updated.Urgency, "impact": updated.Impact,
			"assignment_group": updated.AssignmentGroup, "work_notes": updated.WorkNotes,
			"field_stamps": updated.FieldStamps}
		if custom {
			ticketCols["custom"] = updated.Custom
		}
	}
	answered := ticket // the answer's data is the ticket as the message leaves it
	if updated != nil {
		answered = updated
	}
	res, err := rc.write(tx, target, out, answered, ticketCols, bondCols)
	if err != nil {
		return nil, err
	}
	// The changes that lost, beside the transaction that met them.
	w := converge.Where{TicketID: target.TicketID, BondID: target.BondID, IntegrationID: rc.in.ID,
		TransactionID: res.Transaction.ID}
	if err := converge.Record(tx, w, out.conflicts, res.Transaction.CreatedAt); err != nil {
		return nil, err
	}
	return res, nil
}

// lockedTarget is the row lockTarget reads: the bond, its ticket and the numbers.
type lockedTarget struct {
	BondID                                       int64
	InternalReference, ExternalReference         string
	BondState                                    models.BondState
	Owner                                        bool
	LastInboundAt                                *time.Time
	TicketID                                     int64
	Number, ShortDescription, Description, State string
	Priority, Urgency, Impact                    int
	AssignmentGroup, WorkNotes                   string
	Version                                      int
	FieldStamps                                  models.JSON[models.FieldStamps]
	Trn, Msg                                     int64
}

// scan reads r into t in inboundsql.LockTargetColumns' order; found is false when there was no row.
func (t *lockedTarget) scan(r *sql.Row) (found bool, err error) {
	err = r.Scan(&t.BondID, &t.InternalReference, &t.ExternalReference, &t.BondState, &t.Owner, &t.LastInboundAt,
		&t.TicketID, &t.Number, &t.ShortDescription, &t.Description, &t.State, &t.Priority, &t.Urgency, &t.Impact,
		&t.AssignmentGroup, &t.WorkNotes, &t.Version, &t.FieldStamps, &t.Trn, &t.Msg)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// decideUpdate applies the business rules to an update on target (whose bond
// rules passed) and ticket as they are now: the outcome, the ticket as the
// message leaves it (nil when it is not changed) and the bond columns it sets.
// A learned remote reference is also set on target.
func (rc *inboundCall) decideUpdate(target *inboundTarget, ticket *models.Ticket) (inboundOutcome, *models.Ticket, map[string]any) {
	env, msg := rc.env, rc.msg
	out := inboundOutcome{process: models.ProcessAccepted}
	var updated *models.Ticket
	var bondCols map[string]any
	switch {
	case target.ExternalReference != "" && env.SourceReference != "" && env.SourceReference != target.ExternalReference:
		out.process = models.ProcessRejected
		out.processError = fmt.Sprintf("The sender's ticket %s does not own this bond: our %s is bonded to their %s.",
			env.SourceReference, target.InternalReference, target.ExternalReference)
	case rc.rejected() != "": // Stage to Target's reject(...): a business rule of the integration's own
		out.process, out.processError = models.ProcessRejected, rc.rejected()
	case target.LastInboundAt != nil && env.TimeStamp.Before(*target.LastInboundAt):
		out.stale = true // accepted and recorded, not applied: newer data is already on the ticket
	default:
		m, err := mergeInboundFields(ticket, rc.cfg.Fields, env.Data, env.Stamps, target.Owner, rc.defs)
		if err != nil {
			out.process, out.processError = models.ProcessRejected, inboundSentence(err.Error())
			break
		}
		out.applied, updated, out.conflicts = true, &m.Ticket, m.Conflicts
		bondCols = map[string]any{"last_inbound_at": env.TimeStamp}
		if msg.SetBondState != nil && *msg.SetBondState != target.BondState {
			bondCols["state"] = *msg.SetBondState
		}
	}
	if target.ExternalReference == "" && env.SourceReference != "" && out.process == models.ProcessAccepted {
		if bondCols == nil {
			bondCols = map[string]any{}
		}
		bondCols["external_reference"] = env.SourceReference
		target.ExternalReference = env.SourceReference
	}
	return out, updated, bondCols
}

// lockTarget locks the bond the update names and its ticket — by our number
// (target_reference), else by theirs (source_reference) — and draws the new
// transaction's numbers, in one statement.
func (rc *inboundCall) lockTarget(tx *gorm.DB, dst *lockedTarget) error {
	env := rc.env
	ctx, c := pg.Conn(tx)
	found := false
	if env.TargetReference != "" {
		ok, err := dst.scan(c.QueryRowContext(ctx, inboundsql.LockByOurNumber, rc.in.ID, env.TargetReference))
		if err != nil {
			return fmt.Errorf("find bond of %s: %w", env.TargetReference, err)
		}
		found = ok
	}
	if !found && env.SourceReference != "" {
		ok, err := dst.scan(c.QueryRowContext(ctx, inboundsql.LockByTheirNumber, rc.in.ID, env.SourceReference))
		if err != nil {
			return fmt.Errorf("find bond of %s: %w", env.SourceReference, err)
		}
		found = ok
	}
	if !found {
		return refuseDetail(RefusalNoBond, "Bond not found for this message",
			fmt.Sprintf("no ticket on integration %s is bonded to target_reference %s or source_reference %s",
				rc.in.Name, inboundQuote(env.TargetReference), inboundQuote(env.SourceReference)))
	}
	return nil
}

// bondAllows checks the message's bond rules. Ownership is the sender's: for
// "must own" the remote system must own the bond (our owner flag is false).
func (rc *inboundCall) bondAllows(b *inboundTarget) error {
	m := rc.msg
	if len(m.AllowedBondStates.V) > 0 {
		ok := false
		for _, s := range m.AllowedBondStates.V {
			ok = ok || s == b.BondState
		}
		if !ok {
			names := make([]string, len(m.AllowedBondStates.V))
			for i, s := range m.AllowedBondStates.V {
				names[i] = string(s)
			}
			return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
				fmt.Sprintf("the bond of %s is %s; %s is accepted only on %s bonds", b.InternalReference, b.BondState,
					m.Name, strings.Join(names, " or ")))
		}
	}
	switch {
	case m.BondOwnership == models.OwnershipMustOwn && b.Owner:
		return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
			fmt.Sprintf("%s must come from the bond's owner, and we own the bond of %s", m.Name, b.InternalReference))
	case m.BondOwnership == models.OwnershipMustNotOwn && !b.Owner:
		return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
			fmt.Sprintf("%s may not come from the bond's owner, and you own the bond of %s", m.Name, b.InternalReference))
	}
	return nil
}

// inboundRecord is what storing one received message writes, worked out
// before any SQL (the one-message path and the batch share it).
type inboundRecord struct {
	number, ident string
	to            models.TransportState
	what          string // the bond history's and the transaction log's line
	history       bool   // the bond's history gets a line
	logLevel      string // "" when no transaction log line is written
	finished      *time.Time
	data          []byte // the Stage
	resp          models.Envelope
	body          []byte // resp encoded: the answer and the HTTP Request's response body
	durationMS    *int
}

// record works out what a message does to its bond and what is stored for it.
// bondCols gains the bond's process error; it returns the record and bondCols.
// ticket is the ticket as the message left it, which the answer's data
// shows through the response message's fields.
func (rc *inboundCall) record(tg *inboundTarget, out inboundOutcome, bondCols map[string]any, now time.Time,
	ticket *models.Ticket) (*inboundRecord, map[string]any, error) {
	env, msg := rc.env, rc.msg
	r := &inboundRecord{number: fmt.Sprintf("TRN%07d", tg.Trn), ident: fmt.Sprintf("MSG%07d", tg.Msg)}

	what := fmt.Sprintf("Received %s %s (their %s)", msg.Name, r.ident, env.SourceID)
	if bondCols == nil {
		bondCols = map[string]any{}
	}
	switch {
	case out.process == models.ProcessRejected:
		bondCols["process_error"] = out.processError
		what += ": Rejected: " + out.processError
	case out.stale:
		what += ": Accepted, not applied: it is older than the newest message applied on this bond"
	default:
		bondCols["process_error"] = ""
		what += ": Accepted"
		if tg.newBond {
			what += fmt.Sprintf("; created ticket %s bonded to their %s", tg.InternalReference, env.SourceReference)
		}
		if len(out.conflicts) > 0 {
			what += "; " + converge.Note(out.conflicts)
		}
	}
	st, stateChanged := bondCols["state"]
	if stateChanged {
		what += fmt.Sprintf("; bond %s", st)
	}
	r.what = what
	// The history tells what changed the bond (created, a state, a reference,
	// a rejection, a late message); a plain accepted update is in the bond's
	// transaction list and would only make the history grow.
	_, refLearned := bondCols["external_reference"]
	r.history = tg.newBond || stateChanged || refLearned || out.stale || out.process == models.ProcessRejected ||
		len(out.conflicts) > 0
	if rc.in.AttachLogs || out.stale {
		r.logLevel = "info"
		if out.stale || out.process == models.ProcessRejected {
			r.logLevel = "warn"
		}
	}

	var err error
	if r.data, err = rc.stageData(); err != nil {
		return nil, nil, err
	}
	// Received lives only inside this database transaction: the message is
	// processed before anyone can see it, so the row is written once, in the
	// state the state machine says Received moves to.
	event := models.EventProcessed
	if msg.Async {
		event = models.EventProcessedWantsReceipt
	}
	if r.to, err = models.Next(models.Received, event); err != nil {
		return nil, nil, err
	}
	if r.to.Finished() {
		r.finished = &now
	}
	name := "Response"
	if msg.Async && rc.cfg.ReceiptName != "" {
		name = rc.cfg.ReceiptName
	}
	data := map[string]any{}
	if len(rc.cfg.ResponseFields) > 0 && out.process == models.ProcessAccepted {
		// The message has a response message: the answer tells the sender
		// the ticket as it is now (docs/designer-messages.md, "Response
		// message"); a rejected message changed nothing to tell.
		data = models.MapResponse(ticket, rc.cfg.ResponseFields)
	}
	r.resp = models.Envelope{Message: models.EnvelopeHeader{Name: name, TimeStamp: now.UTC(), SourceReference: tg.InternalReference,
		TargetReference: tg.ExternalReference, SourceID: r.ident, TargetID: env.SourceID},
		Data: data, Status: &models.EnvelopeStatus{ProcessState: out.process.String(), Error: out.processError}}
	if r.body, err = json.Marshal(r.resp); err != nil {
		return nil, nil, fmt.Errorf("encode answer: %w", err)
	}
	if !rc.meta.Started.IsZero() {
		d := int(time.Since(rc.meta.Started).Milliseconds())
		r.durationMS = &d
	}
	return r, bondCols, nil
}

// stageData is the message's data as its Stage stores it, encoded once.
func (rc *inboundCall) stageData() ([]byte, error) {
	if rc.stage == nil {
		b, err := json.Marshal(rc.env.Data)
		if err != nil {
			return nil, fmt.Errorf("encode stage: %w", err)
		}
		rc.stage = b
	}
	return rc.stage, nil
}

// requestParts are the HTTP Request record's columns taken from the request
// itself: the method, URL, redacted headers (JSON) and body as stored.
func (rc *inboundCall) requestParts() (method, url, headers, body string) {
	if rc.parts == nil {
		h, err := json.Marshal(httprecord.RedactHeaders(rc.meta.Header))
		if err != nil {
			h = []byte("{}") // unreachable: a map of strings always encodes
		}
		rc.parts = &[4]string{httprecord.Storable([]byte(rc.meta.Method)), httprecord.Storable([]byte(rc.meta.URL)), string(h),
			httprecord.Storable(rc.raw)}
	}
	return rc.parts[0], rc.parts[1], rc.parts[2], rc.parts[3]
}

// inboundResponseHeaders are the stored headers of every inbound answer.
const inboundResponseHeaders = `{"Content-Type":"application/json"}`

// write stores what a message did in one statement (writable CTEs): the
// bond's sequence, history and state, the ticket's change, the transaction in
// the state Received moves to (models.Next), its Stage, its HTTP Request
// record and its transaction log line.
func (rc *inboundCall) write(tx *gorm.DB, tg *inboundTarget, out inboundOutcome, ticket *models.Ticket,
	ticketCols, bondCols map[string]any) (*Result, error) {
	env, msg := rc.env, rc.msg
	now := rc.s.now()
	rec, bondCols, err := rc.record(tg, out, bondCols, now, ticket)
	if err != nil {
		return nil, err
	}
	number, ident, to := rec.number, rec.ident, rec.to
	method, url, headers, reqBody := rc.requestParts()

	// One statement: the bond's sequence, history and state; the ticket's
	// change; the transaction, its Stage, its HTTP Request record and its log
	// line; the engine's wake-up when a receipt must go back.
	var q pg.Parts
	q.Add(inboundsql.WriteBondHead, now)
	if rec.history {
		q.Add(inboundsql.WriteBondHistory, inboundHistoryLine(now, rec.what))
	}
	for _, c := range []string{"process_error", "last_inbound_at", "state", "external_reference"} {
		if v, ok := bondCols[c]; ok {
			q.Add(fmt.Sprintf(inboundsql.WriteBondSet, c), v)
		}
	}
	q.Add(inboundsql.WriteBondTail, tg.BondID)
	if ticketCols != nil {
		q.Add(inboundsql.WriteTicketHead, now)
		for _, c := range models.TicketFields {
			q.Add(fmt.Sprintf(inboundsql.WriteBondSet, c), ticketCols[c])
		}
		if st, ok := ticketCols["field_stamps"]; ok {
			q.Add(inboundsql.WriteTicketStamps, st)
		}
		if v, ok := ticketCols["custom"]; ok {
			q.Add(inboundsql.WriteTicketCustom, v)
		}
		q.Add(inboundsql.WriteTicketTail, tg.TicketID)
	}
	q.Add(inboundsql.WriteTransaction, number, ident, env.SourceID, rc.in.ID, tg.BondID, msg.ID, tg.TicketID, rc.cfg.TicketTable,
		to, out.process, out.processError, now, now, rec.finished,
		string(rec.data), now,
		rc.in.ID, models.RequestOK, method, url, headers, reqBody, inboundResponseHeaders, httprecord.Storable(rec.body),
		rec.durationMS, now, now)
	switch logs := rc.scriptLogs(); {
	case rec.logLevel != "" && rc.in.AttachLogs && len(logs) > 0:
		// The scripts' lines first, as they ran, then the outcome.
		kinds, levels := make([]string, 0, len(logs)+1), make([]string, 0, len(logs)+1)
		for range logs {
			kinds, levels = append(kinds, string(models.LogScript)), append(levels, "info")
		}
		lines := append(append(make([]string, 0, len(logs)+1), logs...), rec.what)
		kinds, levels = append(kinds, string(models.LogTransactionRecv)), append(levels, rec.logLevel)
		q.Add(inboundsql.WriteLogs, kinds, levels, lines, now)
	case rec.logLevel != "":
		q.Add(inboundsql.WriteLog, models.LogTransactionRecv, rec.logLevel, rec.what, now)
	}
	q.Add(inboundsql.WriteResult)
	if to == models.SendingReceipt { // wake the engine: it sends the receipt
		q.Add(inboundsql.WriteNotify, queue.NotifyChannel)
	}
	var ins struct{ ID, Seq int64 }
	ctx, c := pg.Conn(tx)
	err = c.QueryRowContext(ctx, q.SQL(), q.Args()...).Scan(&ins.ID, &ins.Seq)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("store transaction %s: %w", number, err)
	}
	if ins.ID == 0 {
		return nil, fmt.Errorf("store transaction %s: bond %d: %w", number, tg.BondID, models.ErrNotFound)
	}
	t := &models.Transaction{ID: ins.ID, Number: number, MessageIdent: ident, ExternalMessageID: env.SourceID,
		IntegrationID: rc.in.ID, BondID: tg.BondID, MessageID: msg.ID, TicketID: tg.TicketID,
		TableName: rc.cfg.TicketTable, Direction: models.Inbound, State: to, ProcessState: out.process,
		ProcessError: out.processError, Seq: ins.Seq, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	return &Result{Transaction: t, Response: rec.resp, Body: rec.body, Applied: out.applied}, nil
}

// receipt completes our Awaiting Receipt transaction. When the transaction is
// still Sending (our synchronous call has not returned yet) it waits a little.
func (rc *inboundCall) receipt(ctx context.Context) (*Result, error) {
	deadline := time.Now().Add(inboundReceiptWait)
	wait := 5 * time.Millisecond
	for {
		var res *Result
		err := rc.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			res, err = rc.receiptTx(tx)
			return err
		})
		var r *Refusal
		if errors.As(err, &r) && r.Kind == RefusalInFlight && time.Now().Add(wait).Before(deadline) {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(wait):
			}
			wait = min(2*wait, 100*time.Millisecond)
			continue
		}
		if err != nil {
			if errors.As(err, &r) {
				return nil, r
			}
			return nil, fmt.Errorf("receive receipt for %s on integration %s: %w", rc.env.TargetID, rc.in.Name, err)
		}
		return res, nil
	}
}

// receiptTx completes the transaction the receipt names, records the outcome
// on its bond, releases the bond's next transaction and answers.
func (rc *inboundCall) receiptTx(tx *gorm.DB) (*Result, error) {
	now := rc.s.now()
	t, err := rc.lockInitiating(tx)
	if err != nil {
		return nil, err
	}
	perr, err := rc.completeInitiating(tx, t)
	if err != nil {
		return nil, err
	}
	bond, what, err := rc.recordReceiptOnBond(tx, t, perr, now)
	if err != nil {
		return nil, err
	}
	rel, err := queue.Release(tx, []int64{bond.ID}, nil)
	if err != nil {
		return nil, err
	}
	if err := rc.logReceipt(tx, t.ID, what, rel.ID()); err != nil {
		return nil, err
	}
	resp := models.Envelope{Message: models.EnvelopeHeader{Name: "Response", TimeStamp: now.UTC(),
		SourceReference: bond.InternalReference, TargetReference: bond.ExternalReference, SourceID: t.MessageIdent,
		TargetID: rc.env.SourceID}, Data: map[string]any{},
		Status: &models.EnvelopeStatus{ProcessState: models.ProcessAccepted.String()}}
	res, err := rc.finish(tx, t, resp, false)
	if res != nil {
		res.Receipt = true
	}
	return res, err
}

// lockInitiating finds our outbound transaction the receipt names, locks its
// bond and checks that it is Awaiting Receipt (Sending: still in flight).
func (rc *inboundCall) lockInitiating(tx *gorm.DB) (*models.Transaction, error) {
	env := rc.env
	ctx, c := pg.Conn(tx)
	var t models.Transaction
	err := c.QueryRowContext(ctx, inboundsql.ReceiptTransaction, rc.in.ID, models.Outbound, env.TargetID).
		Scan(pg.TransactionFields(nil, &t)...)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, refuse(RefusalNoInitiating, TextNoInitiating)
	}
	if err != nil {
		return nil, fmt.Errorf("find transaction %s: %w", env.TargetID, err)
	}
	if err := queue.LockBond(tx, t.BondID); err != nil {
		return nil, err
	}
	if err := c.QueryRowContext(ctx, inboundsql.TransactionState, t.ID).Scan(&t.State); err != nil {
		return nil, fmt.Errorf("read transaction %s: %w", t.MessageIdent, err)
	}
	switch t.State {
	case models.AwaitingReceipt, models.TimedOut: // a late receipt still completes it (docs/inbound.md, "After a crash")
		return &t, nil
	case models.Sending:
		return nil, refuseDetail(RefusalInFlight, "The initiating transaction is still being sent",
			fmt.Sprintf("%s has not had its answer yet; send the receipt again shortly", t.MessageIdent))
	default:
		return nil, refuseDetail(RefusalProcessedAlready, TextProcessedAlready,
			fmt.Sprintf("%s is %s", t.MessageIdent, t.State))
	}
}

// completeInitiating moves t Awaiting Receipt (or Timed Out: a late receipt)
// -> Received Receipt -> Complete with the receipt's process state; it
// returns the process error it stored.
func (rc *inboundCall) completeInitiating(tx *gorm.DB, t *models.Transaction) (string, error) {
	env := rc.env
	var late map[string]any
	if t.State == models.TimedOut {
		late = map[string]any{"error": ""} // the receipt came after all: "No receipt arrived by …" no longer holds
	}
	if _, err := queue.Transition(tx, t.ID, t.State, models.EventReceiptArrived, late); err != nil {
		return "", err
	}
	perr := ""
	if env.ProcessState == models.ProcessRejected {
		perr = env.StatusError
		if perr == "" {
			perr = "The remote system rejected the message without giving a reason."
		}
	}
	extra := map[string]any{"process_state": env.ProcessState, "process_error": perr}
	if env.SourceID != "" {
		// A fragment of queue.Transition's update (its call site is kept as it is).
		extra["external_message_id"] = gorm.Expr("CASE WHEN external_message_id = '' THEN ? ELSE external_message_id END", env.SourceID)
	}
	if _, err := queue.Transition(tx, t.ID, models.ReceivedReceipt, models.EventReceiptProcessed, extra); err != nil {
		return "", err
	}
	t.State, t.ProcessState, t.ProcessError = models.Complete, env.ProcessState, perr
	return perr, nil
}

// recordReceiptOnBond rolls the receipt's outcome up to t's bond: its process
// error, its state (Accepted), a learned external reference and a history
// line, which it returns.
func (rc *inboundCall) recordReceiptOnBond(tx *gorm.DB, t *models.Transaction, perr string, now time.Time) (*models.Bond, string, error) {
	env := rc.env
	ctx, c := pg.Conn(tx)
	var bond models.Bond
	err := c.QueryRowContext(ctx, inboundsql.ReceiptBond, t.BondID).Scan(&bond.ID, &bond.InternalReference,
		&bond.ExternalReference, &bond.State)
	if err != nil {
		return nil, "", fmt.Errorf("read bond %d: %w", t.BondID, err)
	}
	var initiating models.Message
	if err := c.QueryRowContext(ctx, inboundsql.ReceiptMessage, t.MessageID).Scan(&initiating.Name, &initiating.SetBondState); err != nil {
		return nil, "", fmt.Errorf("read message %d: %w", t.MessageID, err)
	}
	what := fmt.Sprintf("Receipt for %s %s: %s", initiating.Name, t.MessageIdent, env.ProcessState)
	var state, learned *string
	if env.ProcessState == models.ProcessRejected {
		what += ": " + perr
	} else if st := rc.receiptBondState(&bond, &initiating); st != bond.State {
		s := string(st)
		state = &s
		what += fmt.Sprintf("; bond %s", st)
	}
	if bond.ExternalReference == "" && env.SourceReference != "" {
		learned = &env.SourceReference
		bond.ExternalReference = env.SourceReference
	}
	if _, err := c.ExecContext(ctx, inboundsql.ReceiptBondUpdate, bond.ID, now, perr, state, learned,
		inboundHistoryLine(now, what)); err != nil {
		return nil, "", fmt.Errorf("update bond %d: %w", bond.ID, err)
	}
	return &bond, what, nil
}

// receiptBondState is the bond's state after an accepted receipt: the
// receipt message's set_bond_state, else the initiating message's, else a
// Pending bond opens.
func (rc *inboundCall) receiptBondState(bond *models.Bond, initiating *models.Message) models.BondState {
	switch {
	case rc.msg.SetBondState != nil:
		return *rc.msg.SetBondState
	case initiating.SetBondState != nil:
		return *initiating.SetBondState
	case bond.State == models.BondPending:
		return models.BondOpen
	}
	return bond.State
}

// logReceipt writes the receipt's transaction log lines when the integration
// attaches logs: the outcome, and the transaction it released.
func (rc *inboundCall) logReceipt(tx *gorm.DB, transactionID int64, what string, released int64) error {
	if !rc.in.AttachLogs {
		return nil
	}
	level := "info"
	if rc.env.ProcessState == models.ProcessRejected {
		level = "warn"
	}
	if err := addInboundLog(tx, transactionID, models.LogTransactionRecv, level, what); err != nil {
		return err
	}
	if released == 0 {
		return nil
	}
	ctx, c := pg.Conn(tx)
	var num string
	if err := c.QueryRowContext(ctx, inboundsql.TransactionNumber, released).Scan(&num); err != nil {
		return fmt.Errorf("read released transaction: %w", err)
	}
	return addInboundLog(tx, transactionID, models.LogTransactionQueued, "info", "Released "+num+", next in the bond's queue")
}

// heartbeat answers a heartbeat: nothing is stored but the HTTP Request.
func (rc *inboundCall) heartbeat(ctx context.Context) (*Result, error) {
	resp := models.Envelope{Message: models.EnvelopeHeader{Name: "Response", TimeStamp: rc.s.now().UTC(),
		TargetID: rc.env.SourceID}, Data: map[string]any{},
		Status: &models.EnvelopeStatus{ProcessState: models.ProcessAccepted.String()}}
	var res *Result
	err := rc.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, err = rc.finish(tx, nil, resp, false)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("receive heartbeat on integration %s: %w", rc.in.Name, err)
	}
	return res, nil
}

// finish encodes the answer and writes the HTTP Request record in the same
// database transaction as the change it records.
func (rc *inboundCall) finish(tx *gorm.DB, t *models.Transaction, resp models.Envelope, applied bool) (*Result, error) {
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	var tid *int64
	if t != nil {
		tid = &t.ID
	}
	r := httprecord.Record(rc.meta.record(), rc.raw, &rc.in.ID, tid, 200, body, rc.s.now())
	headers, err := r.RequestHeaders.Value()
	if err != nil {
		return nil, fmt.Errorf("record inbound request: %w", err)
	}
	ctx, c := pg.Conn(tx)
	if _, err := c.ExecContext(ctx, inboundsql.RecordRequest, r.TransactionID, r.IntegrationID, r.State, r.Method, r.URL,
		headers, r.RequestBody, r.ResponseStatus, inboundResponseHeaders, r.ResponseBody, r.DurationMS, r.Error,
		r.CreatedAt, r.UpdatedAt); err != nil {
		return nil, fmt.Errorf("record inbound request: %w", err)
	}
	return &Result{Transaction: t, Response: resp, Body: body, Applied: applied}, nil
}

// RecordInboundRefusal writes the HTTP Request record of a refused inbound
// request, in its own database transaction (the one that refused it rolled
// back; one statement, which also finds the integration by its name). status
// and body are the answer the sender got.
func (s *Service) RecordInboundRefusal(ctx context.Context, integrationName string, meta RequestMeta, raw []byte,
	status int, body []byte) error {
	if integrationName == "" || !utf8.ValidString(integrationName) || strings.ContainsRune(integrationName, 0) {
		integrationName = "" // no integration has that name, and PostgreSQL could not compare it
	}
	r := httprecord.Record(meta.record(), raw, nil, nil, status, body, s.now())
	headers, err := r.RequestHeaders.Value()
	if err != nil {
		return fmt.Errorf("record refused request: %w", err)
	}
	_, err = s.pool().ExecContext(ctx, inboundsql.RecordRefusal,
		integrationName, r.State, r.Method, r.URL, headers, r.RequestBody, status, inboundResponseHeaders,
		r.ResponseBody, r.DurationMS, r.Error, r.CreatedAt, r.UpdatedAt)
	if err != nil {
		return fmt.Errorf("record refused request: %w", err)
	}
	return nil
}

// mergeInboundFields merges payload data onto a ticket field by field by its
// stamps (models.MergeInbound: the later change wins, a tie goes to the bond
// owner, weOwn), a process's own fields (custom.<name>, checked against defs)
// like the built-in ones, and checks the result against the ticket's limits;
// the error is a process error in plain words.
func mergeInboundFields(t *models.Ticket, fields []models.Field, data map[string]any, stamps map[string]models.WireStamp,
	weOwn bool, defs []models.ProcessField) (models.Merged, error) {
	if defs == nil && mapsCustom(fields) {
		// Unreachable: the group commit hands a message that maps a process
		// field to the one-message path, which reads the definitions. Kept so
		// that a new caller cannot apply such a message in part.
		return models.Merged{}, errors.New("the process fields of this message could not be read")
	}
	m, err := models.MergeInbound(t, fields, data, stamps, weOwn, defs)
	if err != nil {
		return models.Merged{}, err
	}
	if err := models.TicketLimits(&m.Ticket); err != nil {
		return models.Merged{}, err
	}
	return m, nil
}

// mapsCustom says whether a message maps a process's own field.
func mapsCustom(fields []models.Field) bool {
	for _, f := range fields {
		if strings.HasPrefix(f.TicketField, models.CustomPrefix) {
			return true
		}
	}
	return false
}

// processFieldsFor reads the process's own fields when the message maps one;
// a message of built-in fields only needs no read. Configuration, read with
// GORM like the ticket create it serves (not the update hot path).
func processFieldsFor(tx *gorm.DB, processID int64, fields []models.Field) ([]models.ProcessField, error) {
	if !mapsCustom(fields) {
		return nil, nil
	}
	defs := []models.ProcessField{}
	if err := tx.Where("process_id = ?", processID).Order("position, id").Find(&defs).Error; err != nil {
		return nil, fmt.Errorf("read process fields of process %d: %w", processID, err)
	}
	return defs, nil
}

// sentence capitalises a process error and ends it with a full stop.
func inboundSentence(s string) string {
	if s == "" {
		return s
	}
	r, size := utf8.DecodeRuneInString(s)
	s = strings.ToUpper(string(r)) + s[size:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// inboundHistoryLine is one line of a bond's running commentary.
func inboundHistoryLine(now time.Time, what string) string {
	return now.UTC().Format("2006-01-02 15:04:05") + " UTC  " + what + "\n"
}

func addInboundLog(tx *gorm.DB, transactionID int64, kind models.LogKind, level, line string) error {
	ctx, c := pg.Conn(tx)
	if _, err := c.ExecContext(ctx, inboundsql.AddLog, transactionID, kind, level, line, time.Now()); err != nil {
		return fmt.Errorf("log transaction %d: %w", transactionID, err)
	}
	return nil
}
