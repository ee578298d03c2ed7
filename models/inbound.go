package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// The inbound side of the protocol (SPEC §2, §5): a remote system posts an
// envelope to /api/v1/integrations/{name}/messages. ReceiveMessage checks and
// applies it in one database transaction, together with its HTTP Request
// record; a refusal rolls everything back and the caller records the refused
// request on its own with RecordInboundRefusal. docs/inbound.md has the rules.

// InboundResult is what an accepted inbound request did.
type InboundResult struct {
	// Transaction is the new inbound transaction, or for a receipt the outbound
	// transaction it completed; nil for a heartbeat.
	Transaction *Transaction
	Response    Envelope // the synchronous answer
	Body        []byte   // Response encoded, exactly as stored in the HTTP Request record
	Applied     bool     // the message changed the ticket (false: rejected, stale, receipt or heartbeat)
	Receipt     bool     // the request was a receipt
}

// inboundReceiptWait is how long a receipt waits for its initiating
// transaction to leave Sending (the sender's synchronous call still in flight).
const inboundReceiptWait = 2 * time.Second

// AuthenticateInbound checks the credentials a remote system sent: HTTP basic
// (hasBasic) or a bearer token. Failures are *InboundRefusal values.
func (s *Store) AuthenticateInbound(ctx context.Context, basicUser, basicPassword string, hasBasic bool,
	bearer string) (*User, error) {
	var u *User
	var err error
	switch {
	case bearer != "":
		u, err = s.AuthenticateToken(ctx, bearer)
	case hasBasic:
		u, err = s.Authenticate(ctx, basicUser, basicPassword)
	default:
		return nil, refuse(RefusalUnauthenticated,
			"Authentication required: send the integration's inbound account with HTTP basic auth or a bearer token")
	}
	if errors.Is(err, ErrInvalidCredentials) {
		return nil, refuse(RefusalUnauthenticated, "The credentials are not valid")
	}
	if err != nil {
		return nil, err
	}
	if RoleMay(u.Role, ActionUseAPI) != nil {
		return nil, refuseDetail(RefusalForbidden, "This account may not use the inbound API",
			"only accounts with the integration role may")
	}
	return u, nil
}

// ReceiveMessage checks an inbound request's body sent by caller to the
// integration called integrationName and applies it: a message becomes an
// inbound transaction (and changes the ticket when business rules allow), a
// receipt completes our Awaiting Receipt transaction. Refusals are
// *InboundRefusal or *ValidationError values and store nothing.
func (s *Store) ReceiveMessage(ctx context.Context, integrationName string, caller *User, raw []byte,
	meta RequestMeta) (*InboundResult, error) {
	in, err := s.inboundIntegration(ctx, integrationName, caller)
	if err != nil {
		return nil, err
	}
	env, problems, err := parseInboundEnvelope(raw)
	if err != nil {
		return nil, err
	}
	var msg Message
	err = s.db.WithContext(ctx).Where("integration_id = ? AND name = ? AND direction IN ?", in.ID, env.Name,
		[]Direction{Inbound, Bidirectional}).Take(&msg).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, refuse(RefusalUnknownName, TextUnknownMessageName)
	}
	if err != nil {
		return nil, fmt.Errorf("find message %q: %w", env.Name, err)
	}
	rc := &inboundCall{s: s, in: in, msg: &msg, caller: caller, env: env, raw: raw, meta: meta}
	switch msg.Type {
	case MessageReceipt:
		if env.TargetID == "" {
			if _, bad := problems.Fields["message.target_id"]; !bad {
				return nil, refuse(RefusalNoTargetID, TextNoTargetID)
			}
		}
		if !env.HasStatus {
			problems.Add("status", "A receipt needs a status with process_state Accepted or Rejected.")
		}
		if err := problems.Err(); err != nil {
			return nil, err
		}
		return rc.receipt(ctx)
	case MessageHeartbeat, MessageResponse:
		if err := problems.Err(); err != nil {
			return nil, err
		}
		return rc.heartbeat(ctx)
	}
	if env.SourceID == "" {
		problems.Add("message.source_id", "Give the sender's Message ID: it is how duplicates are recognised.")
	}
	if !env.HasTimeStamp {
		problems.Add("message.time_stamp", "Give the time the sender created the message: it keeps messages in order.")
	}
	if msg.Type == MessageCreate && env.SourceReference == "" {
		problems.Add("message.source_reference", "Give the sender's ticket number: a Create bonds it to a new ticket here.")
	}
	if msg.Type == MessageUpdate && env.SourceReference == "" && env.TargetReference == "" {
		problems.Add("message.target_reference", "Give our ticket number (target_reference) or yours (source_reference).")
	}
	if err := problems.Err(); err != nil {
		return nil, err
	}
	return rc.message(ctx)
}

// inboundIntegration finds the integration and checks that it takes messages
// from caller: it has an active connection whose inbound account is caller,
// and it is not Off. A Paused integration still accepts.
func (s *Store) inboundIntegration(ctx context.Context, name string, caller *User) (*Integration, error) {
	var in Integration
	err := s.db.WithContext(ctx).Where("name = ?", name).Take(&in).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, refuseDetail(RefusalUnknownIntegration, "Integration not found",
			"no integration is called "+inboundQuote(name))
	}
	if err != nil {
		return nil, fmt.Errorf("find integration %q: %w", name, err)
	}
	var conn Connection
	err = s.db.WithContext(ctx).Where("integration_id = ? AND active", in.ID).Take(&conn).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, refuseDetail(RefusalUnavailable, "The integration has no active connection",
			fmt.Sprintf("integration %s accepts no messages until an admin activates one of its connections", in.Name))
	}
	if err != nil {
		return nil, fmt.Errorf("active connection of integration %q: %w", name, err)
	}
	if in.State == IntegrationOff {
		return nil, refuseDetail(RefusalUnavailable, "The integration is Off",
			fmt.Sprintf("integration %s accepts no messages while it is Off", in.Name))
	}
	if caller == nil || conn.InboundUserID == nil || *conn.InboundUserID != caller.ID {
		return nil, refuseDetail(RefusalForbidden, "This account may not send messages to this integration",
			fmt.Sprintf("the active connection of integration %s names another inbound account", in.Name))
	}
	return &in, nil
}

func inboundQuote(s string) string {
	return fmt.Sprintf("%q", inboundTruncate(strings.ToValidUTF8(s, "?"), 64))
}

// inboundCall carries one request through its checks and its database transaction.
type inboundCall struct {
	s      *Store
	in     *Integration
	msg    *Message
	caller *User
	env    *inboundEnvelope
	raw    []byte
	meta   RequestMeta
}

// original returns the header we answered with when source_id was first received.
func (rc *inboundCall) original(ctx context.Context) (*EnvelopeHeader, error) {
	var row struct {
		MessageIdent      string
		ExternalMessageID string
		Number            string
		ExternalReference string
	}
	err := rc.s.db.WithContext(ctx).Raw(`SELECT t.message_ident, t.external_message_id, k.number, b.external_reference
		FROM transactions t JOIN tickets k ON k.id = t.ticket_id JOIN bonds b ON b.id = t.bond_id
		WHERE t.integration_id = ? AND t.direction = 'Inbound' AND t.external_message_id = ?`,
		rc.in.ID, rc.env.SourceID).Scan(&row).Error
	if err != nil {
		return nil, fmt.Errorf("find message %q: %w", rc.env.SourceID, err)
	}
	if row.MessageIdent == "" {
		return nil, ErrNotFound
	}
	return &EnvelopeHeader{Name: "Response", TimeStamp: rc.s.now().UTC(), SourceReference: row.Number,
		TargetReference: row.ExternalReference, SourceID: row.MessageIdent, TargetID: row.ExternalMessageID}, nil
}

func (rc *inboundCall) duplicate(ctx context.Context) error {
	orig, err := rc.original(ctx)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	return &InboundRefusal{Kind: RefusalDuplicate, Reason: TextDuplicate, Original: orig,
		Detail: fmt.Sprintf("message %s was received before; it is not applied again", inboundQuote(rc.env.SourceID))}
}

// message receives a Create or Update message.
func (rc *inboundCall) message(ctx context.Context) (*InboundResult, error) {
	// Fast path for a plain repeat; the unique index catches concurrent ones.
	if orig, err := rc.original(ctx); err == nil && orig != nil {
		return nil, rc.duplicate(ctx)
	} else if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	fields, err := rc.s.ListFields(ctx, rc.msg.ID)
	if err != nil {
		return nil, err
	}
	proc, err := rc.s.GetProcess(ctx, rc.in.ProcessID)
	if err != nil {
		return nil, err
	}
	var res *InboundResult
	err = rc.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var err error
		res, err = rc.messageTx(tx, proc, fields)
		return err
	})
	if err != nil {
		var r *InboundRefusal
		if isInboundDuplicate(err) || errors.As(err, &r) && r.Kind == RefusalDuplicate {
			return nil, rc.duplicate(ctx)
		}
		if errors.As(err, &r) {
			return nil, r
		}
		return nil, fmt.Errorf("receive %s %s on integration %s: %w", rc.msg.Name, rc.env.SourceID, rc.in.Name, err)
	}
	return res, nil
}

func isInboundDuplicate(err error) bool {
	return isUniqueViolation(err) && strings.Contains(err.Error(), "transactions_inbound_source")
}

// inboundOutcome is what processing decided.
type inboundOutcome struct {
	process      ProcessState
	processError string
	applied      bool
	stale        bool
}

func (rc *inboundCall) messageTx(tx *gorm.DB, proc *Process, fields []Field) (*InboundResult, error) {
	env, msg := rc.env, rc.msg
	now := rc.s.now()
	var bond Bond
	var ticket Ticket
	out := inboundOutcome{process: ProcessAccepted}
	bondCols := map[string]any{}
	newBond := false

	if msg.Type == MessageCreate {
		// Serialise Creates for one remote ticket, so two cannot both bond it.
		if err := tx.Exec("SELECT pg_advisory_xact_lock(hashtextextended(?, ?))", env.SourceReference, rc.in.ID).Error; err != nil {
			return nil, fmt.Errorf("lock remote reference: %w", err)
		}
		if err := rc.notSeen(tx); err != nil {
			return nil, err
		}
		var existing Bond
		err := tx.Where("integration_id = ? AND external_reference = ?", rc.in.ID, env.SourceReference).
			Order("id").Limit(1).Find(&existing).Error
		if err != nil {
			return nil, fmt.Errorf("find bond of %s: %w", env.SourceReference, err)
		}
		if existing.ID != 0 {
			return nil, refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
				fmt.Sprintf("your ticket %s is already bonded to our %s; send an update instead of a create",
					inboundQuote(env.SourceReference), existing.InternalReference))
		}
		ticket = Ticket{ProcessID: proc.ID, State: "New", Priority: 4, Urgency: 3, Impact: 3, Version: 1,
			CreatedByID: &rc.caller.ID}
		if err := applyInboundFields(&ticket, fields, env.Data); err != nil {
			return nil, refuseDetail(RefusalCreateRejected, "Message rejected: "+err.Error(),
				"no ticket was created; correct the message and send it again")
		}
		var n int64
		if err := tx.Raw("SELECT nextval('ticket_number_seq')").Scan(&n).Error; err != nil {
			return nil, fmt.Errorf("number ticket: %w", err)
		}
		ticket.Number = fmt.Sprintf("%s%07d", proc.NumberPrefix, n)
		ticket.CreatedAt, ticket.UpdatedAt = now, now
		if err := tx.Create(&ticket).Error; err != nil {
			return nil, fmt.Errorf("create ticket: %w", err)
		}
		state := BondOpen
		if msg.SetBondState != nil {
			state = *msg.SetBondState
		}
		ts := env.TimeStamp
		bond = Bond{IntegrationID: rc.in.ID, TicketID: ticket.ID, InternalReference: ticket.Number,
			ExternalReference: env.SourceReference, State: state, Owner: false, NextSeq: 0, LastInboundAt: &ts,
			CreatedAt: now, UpdatedAt: now}
		if err := tx.Create(&bond).Error; err != nil {
			return nil, fmt.Errorf("create bond: %w", err)
		}
		newBond, out.applied = true, true
	} else {
		if err := rc.findBond(tx, &bond); err != nil {
			return nil, err
		}
		if err := rc.notSeen(tx); err != nil {
			return nil, err
		}
		if err := rc.bondAllows(&bond); err != nil {
			return nil, err
		}
		if err := tx.Raw("SELECT * FROM tickets WHERE id = ? FOR UPDATE", bond.TicketID).Scan(&ticket).Error; err != nil {
			return nil, fmt.Errorf("lock ticket %d: %w", bond.TicketID, err)
		}
		switch {
		case bond.ExternalReference != "" && env.SourceReference != "" && env.SourceReference != bond.ExternalReference:
			out.process = ProcessRejected
			out.processError = fmt.Sprintf("The sender's ticket %s does not own this bond: our %s is bonded to their %s.",
				env.SourceReference, bond.InternalReference, bond.ExternalReference)
		case bond.LastInboundAt != nil && env.TimeStamp.Before(*bond.LastInboundAt):
			out.stale = true // accepted and recorded, not applied: newer data is already on the ticket
		default:
			updated := ticket
			if err := applyInboundFields(&updated, fields, env.Data); err != nil {
				out.process, out.processError = ProcessRejected, inboundSentence(err.Error())
				break
			}
			res := tx.Model(&Ticket{}).Where("id = ?", ticket.ID).Updates(map[string]any{
				"short_description": updated.ShortDescription, "description": updated.Description,
				"state": updated.State, "priority": updated.Priority, "urgency": updated.Urgency,
				"impact": updated.Impact, "assignment_group": updated.AssignmentGroup,
				"work_notes": updated.WorkNotes, "version": gorm.Expr("version + 1"), "updated_at": now})
			if res.Error != nil {
				return nil, fmt.Errorf("update ticket %s: %w", ticket.Number, res.Error)
			}
			ticket = updated
			out.applied = true
			bondCols["last_inbound_at"] = env.TimeStamp
			if msg.SetBondState != nil && *msg.SetBondState != bond.State {
				bondCols["state"] = *msg.SetBondState
			}
		}
		if bond.ExternalReference == "" && env.SourceReference != "" && out.process == ProcessAccepted {
			bondCols["external_reference"] = env.SourceReference
			bond.ExternalReference = env.SourceReference
		}
	}

	// The transaction: Received, then processed in the same database transaction.
	var nums struct{ T, M int64 }
	if err := tx.Raw("SELECT nextval('transaction_number_seq') AS t, nextval('message_number_seq') AS m").
		Scan(&nums).Error; err != nil {
		return nil, fmt.Errorf("number transaction: %w", err)
	}
	var seq int64 = 1
	if newBond {
		if err := tx.Exec("UPDATE bonds SET next_seq = 1 WHERE id = ?", bond.ID).Error; err != nil {
			return nil, fmt.Errorf("sequence bond %d: %w", bond.ID, err)
		}
	} else {
		var err error
		if seq, err = nextSeq(tx, bond.ID); err != nil {
			return nil, err
		}
	}
	t := Transaction{Number: fmt.Sprintf("TRN%07d", nums.T), MessageIdent: fmt.Sprintf("MSG%07d", nums.M),
		ExternalMessageID: env.SourceID, IntegrationID: rc.in.ID, BondID: bond.ID, MessageID: msg.ID,
		TicketID: ticket.ID, TableName: proc.TicketTable, Direction: Inbound, State: Received,
		ProcessState: ProcessPending, Seq: seq, NextAttemptAt: now, CreatedAt: now, UpdatedAt: now}
	if err := tx.Create(&t).Error; err != nil {
		return nil, fmt.Errorf("create transaction: %w", err)
	}
	stage := Stage{TransactionID: t.ID, Data: JSON[map[string]any]{V: env.Data}, CreatedAt: now}
	if err := tx.Create(&stage).Error; err != nil {
		return nil, fmt.Errorf("create stage: %w", err)
	}
	event := EventProcessed
	if msg.Async {
		event = EventProcessedWantsReceipt
	}
	to, err := transition(tx, t.ID, Received, event, map[string]any{"process_state": out.process,
		"process_error": out.processError, "next_attempt_at": now})
	if err != nil {
		return nil, err
	}
	t.State, t.ProcessState, t.ProcessError = to, out.process, out.processError
	if to == SendingReceipt {
		if err := notify(tx); err != nil {
			return nil, err
		}
	}

	// Roll the outcome up to the bond: its latest process error and history.
	what := fmt.Sprintf("Received %s %s (their %s)", msg.Name, t.MessageIdent, env.SourceID)
	switch {
	case out.process == ProcessRejected:
		bondCols["process_error"] = out.processError
		what += ": Rejected: " + out.processError
	case out.stale:
		what += ": Accepted, not applied: it is older than the newest message applied on this bond"
	default:
		bondCols["process_error"] = ""
		what += ": Accepted"
		if newBond {
			what += fmt.Sprintf("; created ticket %s bonded to their %s", ticket.Number, env.SourceReference)
		}
	}
	if st, ok := bondCols["state"]; ok {
		what += fmt.Sprintf("; bond %s", st)
	}
	bondCols["history"] = gorm.Expr("history || ?", inboundHistoryLine(now, what))
	bondCols["updated_at"] = now
	if err := tx.Model(&Bond{}).Where("id = ?", bond.ID).Updates(bondCols).Error; err != nil {
		return nil, fmt.Errorf("update bond %d: %w", bond.ID, err)
	}
	if rc.in.AttachLogs || out.stale {
		level := "info"
		if out.stale || out.process == ProcessRejected {
			level = "warn"
		}
		if err := addInboundLog(tx, t.ID, LogTransactionRecv, level, what); err != nil {
			return nil, err
		}
	}

	name := "Response"
	if msg.Async && msg.ReceiptMessageID != nil {
		if err := tx.Model(&Message{}).Select("name").Where("id = ?", *msg.ReceiptMessageID).Scan(&name).Error; err != nil {
			return nil, fmt.Errorf("find receipt message: %w", err)
		}
	}
	resp := Envelope{Message: EnvelopeHeader{Name: name, TimeStamp: now.UTC(), SourceReference: ticket.Number,
		TargetReference: bond.ExternalReference, SourceID: t.MessageIdent, TargetID: env.SourceID},
		Data: map[string]any{}, Status: &EnvelopeStatus{ProcessState: out.process.String(), Error: out.processError}}
	return rc.finish(tx, &t, resp, out.applied)
}

// notSeen checks again, once the bond (or the remote reference) is locked,
// that source_id has not been received meanwhile: a concurrent copy that
// committed first makes this one a duplicate, whatever it would do now.
func (rc *inboundCall) notSeen(tx *gorm.DB) error {
	var seen bool
	err := tx.Raw(`SELECT EXISTS (SELECT 1 FROM transactions WHERE integration_id = ? AND direction = 'Inbound'
		AND external_message_id = ?)`, rc.in.ID, rc.env.SourceID).Scan(&seen).Error
	if err != nil {
		return fmt.Errorf("check message %s: %w", rc.env.SourceID, err)
	}
	if seen {
		return refuse(RefusalDuplicate, TextDuplicate)
	}
	return nil
}

// findBond locks the bond the update names: by our number (target_reference),
// else by theirs (source_reference).
func (rc *inboundCall) findBond(tx *gorm.DB, bond *Bond) error {
	env := rc.env
	if env.TargetReference != "" {
		err := tx.Raw(`SELECT b.* FROM bonds b JOIN tickets k ON k.id = b.ticket_id
			WHERE b.integration_id = ? AND k.number = ? FOR UPDATE OF b`, rc.in.ID, env.TargetReference).Scan(bond).Error
		if err != nil {
			return fmt.Errorf("find bond of %s: %w", env.TargetReference, err)
		}
	}
	if bond.ID == 0 && env.SourceReference != "" {
		err := tx.Raw(`SELECT * FROM bonds WHERE integration_id = ? AND external_reference = ?
			ORDER BY id LIMIT 1 FOR UPDATE`, rc.in.ID, env.SourceReference).Scan(bond).Error
		if err != nil {
			return fmt.Errorf("find bond of %s: %w", env.SourceReference, err)
		}
	}
	if bond.ID == 0 {
		return refuseDetail(RefusalNoBond, "Bond not found for this message",
			fmt.Sprintf("no ticket on integration %s is bonded to target_reference %s or source_reference %s",
				rc.in.Name, inboundQuote(env.TargetReference), inboundQuote(env.SourceReference)))
	}
	return nil
}

// bondAllows checks the message's bond rules. Ownership is the sender's: for
// "must own" the remote system must own the bond (our owner flag is false).
func (rc *inboundCall) bondAllows(b *Bond) error {
	m := rc.msg
	if len(m.AllowedBondStates.V) > 0 {
		ok := false
		for _, s := range m.AllowedBondStates.V {
			ok = ok || s == b.State
		}
		if !ok {
			names := make([]string, len(m.AllowedBondStates.V))
			for i, s := range m.AllowedBondStates.V {
				names[i] = string(s)
			}
			return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
				fmt.Sprintf("the bond of %s is %s; %s is accepted only on %s bonds", b.InternalReference, b.State,
					m.Name, strings.Join(names, " or ")))
		}
	}
	switch {
	case m.BondOwnership == OwnershipMustOwn && b.Owner:
		return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
			fmt.Sprintf("%s must come from the bond's owner, and we own the bond of %s", m.Name, b.InternalReference))
	case m.BondOwnership == OwnershipMustNotOwn && !b.Owner:
		return refuseDetail(RefusalNotValidForBond, TextNotValidForBond,
			fmt.Sprintf("%s may not come from the bond's owner, and you own the bond of %s", m.Name, b.InternalReference))
	}
	return nil
}

// receipt completes our Awaiting Receipt transaction. When the transaction is
// still Sending (our synchronous call has not returned yet) it waits a little.
func (rc *inboundCall) receipt(ctx context.Context) (*InboundResult, error) {
	deadline := time.Now().Add(inboundReceiptWait)
	wait := 5 * time.Millisecond
	for {
		var res *InboundResult
		err := rc.s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var err error
			res, err = rc.receiptTx(tx)
			return err
		})
		var r *InboundRefusal
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

func (rc *inboundCall) receiptTx(tx *gorm.DB) (*InboundResult, error) {
	env := rc.env
	now := rc.s.now()
	var t Transaction
	err := tx.Where("integration_id = ? AND direction = ? AND message_ident = ?", rc.in.ID, Outbound, env.TargetID).
		Limit(1).Find(&t).Error
	if err != nil {
		return nil, fmt.Errorf("find transaction %s: %w", env.TargetID, err)
	}
	if t.ID == 0 {
		return nil, refuse(RefusalNoInitiating, TextNoInitiating)
	}
	if err := lockBond(tx, t.BondID); err != nil {
		return nil, err
	}
	if err := tx.Model(&Transaction{}).Select("state").Where("id = ?", t.ID).Scan(&t.State).Error; err != nil {
		return nil, fmt.Errorf("read transaction %s: %w", t.MessageIdent, err)
	}
	switch t.State {
	case AwaitingReceipt:
	case Sending:
		return nil, refuseDetail(RefusalInFlight, "The initiating transaction is still being sent",
			fmt.Sprintf("%s has not had its answer yet; send the receipt again shortly", t.MessageIdent))
	default:
		return nil, refuseDetail(RefusalProcessedAlready, TextProcessedAlready,
			fmt.Sprintf("%s is %s", t.MessageIdent, t.State))
	}
	if _, err := transition(tx, t.ID, AwaitingReceipt, EventReceiptArrived, nil); err != nil {
		return nil, err
	}
	perr := ""
	if env.ProcessState == ProcessRejected {
		perr = env.StatusError
		if perr == "" {
			perr = "The remote system rejected the message without giving a reason."
		}
	}
	extra := map[string]any{"process_state": env.ProcessState, "process_error": perr}
	if env.SourceID != "" {
		extra["external_message_id"] = gorm.Expr("CASE WHEN external_message_id = '' THEN ? ELSE external_message_id END", env.SourceID)
	}
	if _, err := transition(tx, t.ID, ReceivedReceipt, EventReceiptProcessed, extra); err != nil {
		return nil, err
	}
	t.State, t.ProcessState, t.ProcessError = Complete, env.ProcessState, perr

	var bond Bond
	if err := tx.Take(&bond, t.BondID).Error; err != nil {
		return nil, fmt.Errorf("read bond %d: %w", t.BondID, err)
	}
	var initiating Message
	if err := tx.Take(&initiating, t.MessageID).Error; err != nil {
		return nil, fmt.Errorf("read message %d: %w", t.MessageID, err)
	}
	cols := map[string]any{"updated_at": now}
	what := fmt.Sprintf("Receipt for %s %s: %s", initiating.Name, t.MessageIdent, env.ProcessState)
	if env.ProcessState == ProcessRejected {
		cols["process_error"] = perr
		what += ": " + perr
	} else {
		cols["process_error"] = ""
		state := bond.State
		switch {
		case rc.msg.SetBondState != nil:
			state = *rc.msg.SetBondState
		case initiating.SetBondState != nil:
			state = *initiating.SetBondState
		case bond.State == BondPending:
			state = BondOpen
		}
		if state != bond.State {
			cols["state"] = state
			what += fmt.Sprintf("; bond %s", state)
		}
	}
	if bond.ExternalReference == "" && env.SourceReference != "" {
		cols["external_reference"] = env.SourceReference
		bond.ExternalReference = env.SourceReference
	}
	cols["history"] = gorm.Expr("history || ?", inboundHistoryLine(now, what))
	if err := tx.Model(&Bond{}).Where("id = ?", bond.ID).Updates(cols).Error; err != nil {
		return nil, fmt.Errorf("update bond %d: %w", bond.ID, err)
	}
	released, err := releaseNext(tx, bond.ID)
	if err != nil {
		return nil, err
	}
	if rc.in.AttachLogs {
		level := "info"
		if env.ProcessState == ProcessRejected {
			level = "warn"
		}
		if err := addInboundLog(tx, t.ID, LogTransactionRecv, level, what); err != nil {
			return nil, err
		}
		if released != 0 {
			var num string
			if err := tx.Model(&Transaction{}).Select("number").Where("id = ?", released).Scan(&num).Error; err != nil {
				return nil, fmt.Errorf("read released transaction: %w", err)
			}
			if err := addInboundLog(tx, t.ID, LogTransactionQueued, "info", "Released "+num+", next in the bond's queue"); err != nil {
				return nil, err
			}
		}
	}
	resp := Envelope{Message: EnvelopeHeader{Name: "Response", TimeStamp: now.UTC(),
		SourceReference: bond.InternalReference, TargetReference: bond.ExternalReference, SourceID: t.MessageIdent,
		TargetID: env.SourceID}, Data: map[string]any{},
		Status: &EnvelopeStatus{ProcessState: ProcessAccepted.String()}}
	res, err := rc.finish(tx, &t, resp, false)
	if res != nil {
		res.Receipt = true
	}
	return res, err
}

// heartbeat answers a heartbeat: nothing is stored but the HTTP Request.
func (rc *inboundCall) heartbeat(ctx context.Context) (*InboundResult, error) {
	resp := Envelope{Message: EnvelopeHeader{Name: "Response", TimeStamp: rc.s.now().UTC(),
		TargetID: rc.env.SourceID}, Data: map[string]any{},
		Status: &EnvelopeStatus{ProcessState: ProcessAccepted.String()}}
	var res *InboundResult
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
func (rc *inboundCall) finish(tx *gorm.DB, t *Transaction, resp Envelope, applied bool) (*InboundResult, error) {
	body, err := json.Marshal(resp)
	if err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	var tid *int64
	if t != nil {
		tid = &t.ID
	}
	r := inboundRequestRecord(rc.meta, rc.raw, &rc.in.ID, tid, 200, body, rc.s.now())
	if err := tx.Create(r).Error; err != nil {
		return nil, fmt.Errorf("record inbound request: %w", err)
	}
	return &InboundResult{Transaction: t, Response: resp, Body: body, Applied: applied}, nil
}

// RecordInboundRefusal writes the HTTP Request record of a refused inbound
// request, in its own database transaction (the one that refused it rolled
// back). status and body are the answer the sender got.
func (s *Store) RecordInboundRefusal(ctx context.Context, integrationName string, meta RequestMeta, raw []byte,
	status int, body []byte) error {
	var inID *int64
	var id int64
	if integrationName != "" && utf8.ValidString(integrationName) && !strings.ContainsRune(integrationName, 0) {
		if err := s.db.WithContext(ctx).Raw("SELECT id FROM integrations WHERE name = ?", integrationName).
			Scan(&id).Error; err != nil {
			return fmt.Errorf("record refused request: %w", err)
		}
	}
	if id != 0 {
		inID = &id
	}
	r := inboundRequestRecord(meta, raw, inID, nil, status, body, s.now())
	if err := s.db.WithContext(ctx).Create(r).Error; err != nil {
		return fmt.Errorf("record refused request: %w", err)
	}
	return nil
}

func inboundRequestRecord(meta RequestMeta, raw []byte, integrationID, transactionID *int64, status int, body []byte,
	now time.Time) *HTTPRequest {
	state := RequestOK
	errText := ""
	if status >= 400 {
		state = RequestError
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		errText = inboundTruncate(e.Error, maxInboundErrLen)
	}
	var dur *int
	if !meta.Started.IsZero() {
		d := int(time.Since(meta.Started).Milliseconds())
		dur = &d
	}
	st := status
	return &HTTPRequest{TransactionID: transactionID, IntegrationID: integrationID, Direction: Inbound, State: state,
		Attempt: 1, Method: inboundStorable([]byte(meta.Method)), URL: inboundStorable([]byte(meta.URL)),
		RequestHeaders: JSON[map[string]string]{V: inboundRedactHeaders(meta.Header)}, RequestBody: inboundStorable(raw),
		ResponseStatus: &st, ResponseHeaders: JSON[map[string]string]{V: map[string]string{"Content-Type": "application/json"}},
		ResponseBody: inboundStorable(body), DurationMS: dur, Error: inboundStorable([]byte(errText)), CreatedAt: now, UpdatedAt: now}
}

// applyInboundFields maps payload data onto a ticket and checks the result
// against the ticket's limits; the error is a process error in plain words.
func applyInboundFields(t *Ticket, fields []Field, data map[string]any) error {
	if err := MapInbound(t, fields, data); err != nil {
		return err
	}
	n := utf8.RuneCountInString
	switch {
	case n(strings.TrimSpace(t.ShortDescription)) == 0:
		return errors.New("the short description is empty")
	case n(t.ShortDescription) > 160:
		return fmt.Errorf("the short description has %d characters; at most 160 fit", n(t.ShortDescription))
	case n(t.Description) > 32000:
		return fmt.Errorf("the description has %d characters; at most 32000 fit", n(t.Description))
	case n(t.WorkNotes) > 32000:
		return fmt.Errorf("the work notes have %d characters; at most 32000 fit", n(t.WorkNotes))
	case n(t.AssignmentGroup) > 100:
		return fmt.Errorf("the assignment group has %d characters; at most 100 fit", n(t.AssignmentGroup))
	}
	return nil
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

func addInboundLog(tx *gorm.DB, transactionID int64, kind LogKind, level, line string) error {
	l := TransactionLog{TransactionID: transactionID, Kind: kind, Level: level, Line: line}
	if err := tx.Create(&l).Error; err != nil {
		return fmt.Errorf("log transaction %d: %w", transactionID, err)
	}
	return nil
}
