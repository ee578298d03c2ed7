package handlers_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/internal/wait"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/inbound"
)

// refusalRequest is one request a refusal case sends.
type refusalRequest struct {
	url  string // "" means the demo endpoint
	body []byte
	opts []reqOpt
}

// refusalCase is one way to be refused; docs/openapi.json names each one as an
// example of its status, and TestOpenAPI checks them against the handler.
type refusalCase struct {
	name    string
	prepare func(t *testing.T, b *inboundBundle) refusalRequest // runs before the snapshot
	status  int
	text    string
	field   string // a field named in the answer's fields
}

func inboundJSON(v any) []byte { b, _ := json.Marshal(v); return b }

func inboundRefusalCases() []refusalCase {
	now := time.Now()
	return []refusalCase{
		{name: "NoCredentials", status: 401, text: "Authentication required: send the integration's inbound account with HTTP basic auth or a bearer token",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withoutHeader("Authorization")}}
			}},
		{name: "WrongToken", status: 401, text: "The credentials are not valid",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withHeader("Authorization", "Bearer not-the-token-at-all")}}
			}},
		{name: "WrongPassword", status: 401, text: "The credentials are not valid",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withBasic(models.DemoPeerAccount.Name, "wrong-password")}}
			}},
		{name: "NotIntegrationRole", status: 401, text: "The credentials are not valid",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withBasic("analyst", "analyst-demo-1")}}
			}},
		{name: "OtherIntegrationAccount", status: 401, text: "The credentials are not valid",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				_, err := b.accounts.CreateUser(context.Background(), models.SystemActor, account.NewUserOpts{Name: "other-peer",
					Role: models.RoleIntegration, Password: "other-peer-pw", Token: "other-peer-token-0123456789"})
				require.NoError(t, err)
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withHeader("Authorization", "Bearer other-peer-token-0123456789")}}
			}},
		{name: "OtherIntegrationPassword", status: 401, text: "The credentials are not valid",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				_, err := b.accounts.CreateUser(context.Background(), models.SystemActor, account.NewUserOpts{Name: "other-peer",
					Role: models.RoleIntegration, Password: "other-peer-pw-4711"})
				require.NoError(t, err)
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withBasic("other-peer", "other-peer-pw-4711")}}
			}},
		{name: "UnknownIntegration", status: 404, text: "Integration not found",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{url: b.srv.URL + "/api/v1/integrations/nope/messages",
					body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x")))}
			}},
		{name: "ConnectionDeactivated", status: 403, text: "The integration has no active connection",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				require.NoError(t, b.db.Exec("UPDATE connections SET active = false").Error)
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x")))}
			}},
		{name: "IntegrationOff", status: 403, text: "The integration is Off",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				require.NoError(t, b.db.Exec("UPDATE integrations SET state = 'Off'").Error)
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x")))}
			}},
		{name: "WrongContentType", status: 415, text: "The request body must be JSON",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("x"))),
					opts: []reqOpt{withHeader("Content-Type", "text/plain")}}
			}},
		{name: "TooLarge", status: 413, text: "The request body is too large",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				d := createData("x")
				d["description"] = strings.Repeat("a", 2<<20)
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, d))}
			}},
		{name: "MalformedJSON", status: 400, text: "The request body is not a valid message envelope",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: []byte(`{"message": {"name": "CreateIncident"`)}
			}},
		{name: "NotAnObject", status: 400, text: "The request body is not a valid message envelope",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest { return refusalRequest{body: []byte(`[1,2,3]`)} }},
		{name: "NoName", status: 400, text: inbound.TextNoMessageName,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: []byte(`{"message": {"source_id": "S1"}, "data": {}}`)}
			}},
		{name: "NoMessageAtAll", status: 400, text: inbound.TextNoMessageName,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: []byte(`{"data": {}}`)}
			}},
		{name: "UnknownName", status: 422, text: inbound.TextUnknownMessageName,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("DeleteEverything", "S1", "R1", "", now, nil))}
			}},
		{name: "MissingSourceID", status: 422, text: "Some values are not valid: message.source_id: Give the sender's Message ID: it is how duplicates are recognised.",
			field: "message.source_id",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "", "R1", "", now, createData("x")))}
			}},
		{name: "BadTimeStamp", status: 422, field: "message.time_stamp",
			text: "Some values are not valid: message.time_stamp: Give a date and time in RFC 3339 form, e.g. 2026-11-22T10:15:00Z.",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				e := envelope("CreateIncident", "S1", "R1", "", now, createData("x"))
				e["message"].(map[string]any)["time_stamp"] = "yesterday"
				return refusalRequest{body: inboundJSON(e)}
			}},
		{name: "ReceiptWithoutTargetID", status: 422, text: inbound.TextNoTargetID,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(receiptEnvelope("R-1", "", "THEIRS", "Accepted", ""))}
			}},
		{name: "ReceiptForNothingOfOurs", status: 404, text: inbound.TextNoInitiating,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(receiptEnvelope("R-1", "MSG7777777", "THEIRS", "Accepted", ""))}
			}},
		{name: "ReceiptForCompleteTransaction", status: 409, text: inbound.TextProcessedAlready,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				ours := b.createTicket(t, "EXT-1")
				tr := b.outbound(t, ours, models.Complete)
				return refusalRequest{body: inboundJSON(receiptEnvelope("R-1", tr.MessageIdent, "EXT-1", "Accepted", ""))}
			}},
		{name: "ReceiptForErrorTransaction", status: 409, text: inbound.TextProcessedAlready,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				ours := b.createTicket(t, "EXT-1")
				tr := b.outbound(t, ours, models.Error)
				return refusalRequest{body: inboundJSON(receiptEnvelope("R-1", tr.MessageIdent, "EXT-1", "Accepted", ""))}
			}},
		{name: "ReceiptWhileStillSending", status: 409, text: "The initiating transaction is still being sent",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				ours := b.createTicket(t, "EXT-1")
				tr := b.outbound(t, ours, models.Sending) // our synchronous call never returns
				return refusalRequest{body: inboundJSON(receiptEnvelope("R-1", tr.MessageIdent, "EXT-1", "Accepted", ""))}
			}},
		{name: "Duplicate", status: 409, text: inbound.TextDuplicate,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				b.createTicket(t, "EXT-1") // source_id C-EXT-1
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "C-EXT-1", "EXT-1", "", now, createData("again")))}
			}},
		{name: "UpdateOnClosedBond", status: 409, text: inbound.TextNotValidForBond,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				ours := b.createTicket(t, "EXT-1")
				a := b.post(t, envelope("ResolveIncident", "RES-1", "EXT-1", ours, time.Now(),
					map[string]any{"state": "resolved", "close_notes": "done"}))
				require.Equal(t, 200, a.Status, a.Raw)
				return refusalRequest{body: inboundJSON(envelope("UpdateIncident", "U-1", "EXT-1", ours, time.Now(), createData("late")))}
			}},
		{name: "OwnershipRule", status: 409, text: inbound.TextNotValidForBond,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				ours := b.createTicket(t, "EXT-1")
				require.NoError(t, b.db.Exec("UPDATE messages SET bond_ownership = 'must_not_own' WHERE name = 'UpdateIncident'").Error)
				return refusalRequest{body: inboundJSON(envelope("UpdateIncident", "U-1", "EXT-1", ours, time.Now(), createData("mine")))}
			}},
		{name: "CreateForBondedTicket", status: 409, text: inbound.TextNotValidForBond,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				b.createTicket(t, "EXT-1")
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "C-2", "EXT-1", "", now, createData("twice")))}
			}},
		{name: "UpdateForUnknownBond", status: 404, text: "Bond not found for this message",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("UpdateIncident", "U-1", "EXT-404", "INC9999999", now, createData("x")))}
			}},
		{name: "CreateMissingRequiredField", status: 422, text: `Message rejected: required field "short_description" is missing`,
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				d := createData("x")
				delete(d, "short_description")
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, d))}
			}},
		{name: "NulInData", status: 422, field: "data", text: "Some values are not valid: data: Text values may not hold NUL characters.",
			prepare: func(t *testing.T, b *inboundBundle) refusalRequest {
				return refusalRequest{body: inboundJSON(envelope("CreateIncident", "S1", "R1", "", now, createData("a\x00b")))}
			}},
	}
}

// runRefusal sends a refusal case to a fresh app and checks everything a
// refusal promises: status, exact text, nothing stored but its own record.
func runRefusal(t *testing.T, tc refusalCase) inboundAnswer {
	b := setupInbound(t)
	req := tc.prepare(t, b)
	url := req.url
	if url == "" {
		url = b.url
	}
	before := b.snapshot(t)
	a := postRaw(t, url, req.body, req.opts...)
	require.Equal(t, tc.status, a.Status, a.Raw)
	if tc.text != "" {
		require.Equal(t, tc.text, a.Error, a.Raw)
	}
	if tc.field != "" {
		require.Contains(t, a.Fields, tc.field, a.Raw)
	}
	after := b.snapshot(t)
	require.Equal(t, before.Fingerprint, after.Fingerprint, "a refused request changed stored data")
	require.Equal(t, before.Requests+1, after.Requests, "the refused request must be recorded once")
	r := b.lastRequest(t)
	require.Nil(t, r.TransactionID)
	require.Equal(t, models.Inbound, r.Direction)
	require.Equal(t, models.RequestError, r.State)
	require.Equal(t, tc.status, *r.ResponseStatus)
	require.JSONEq(t, a.Raw, r.ResponseBody)
	if auth, ok := r.RequestHeaders.V["Authorization"]; ok {
		require.NotContains(t, auth, models.DemoPeerToken)
		require.Contains(t, auth, "[redacted]")
	}
	if tc.status == 401 {
		require.NotEmpty(t, a.Header.Get("WWW-Authenticate"))
	}
	if tc.text == "The credentials are not valid" { // every such refusal answers exactly alike
		require.JSONEq(t, `{"error":"The credentials are not valid"}`, a.Raw)
	}
	if tc.name == "ReceiptWhileStillSending" {
		require.Equal(t, "1", a.Header.Get("Retry-After"))
	}
	// The OpenAPI description documents this refusal with the same status and text.
	ex, ok := openAPIExamples(t)[tc.name]
	require.True(t, ok, "docs/openapi.json has no example named %s", tc.name)
	require.Equal(t, tc.status, ex.status, "docs/openapi.json files %s under another status", tc.name)
	require.Equal(t, a.Error, ex.text, "docs/openapi.json gives another text for %s", tc.name)
	return a
}

// TestInboundRefusals sends every kind of refused request and checks the
// status, the exact text, and that nothing but the refused request's own HTTP
// Request record was stored.
func TestInboundRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range inboundRefusalCases() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runRefusal(t, tc)
		})
	}
}

func TestInboundDuplicateAnswerCarriesOriginal(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	first := b.post(t, envelope("CreateIncident", "C-1", "EXT-1", "", time.Now(), createData("one")))
	require.Equal(t, 200, first.Status, first.Raw)
	again := b.post(t, envelope("CreateIncident", "C-1", "EXT-1", "", time.Now(), createData("one")))
	require.Equal(t, 409, again.Status)
	require.Equal(t, inbound.TextDuplicate, again.Error)
	require.Equal(t, first.Message.SourceReference, again.Message.SourceReference, "the duplicate's answer names our ticket")
	require.Equal(t, first.Message.SourceID, again.Message.SourceID)
	require.Equal(t, "C-1", again.Message.TargetID)
}

func TestInboundCreate(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	ts := time.Now().Add(-time.Minute).UTC()
	a := b.post(t, envelope("CreateIncident", "THEIR-MSG-1", "THEIR-INC-1", "", ts, createData("Printer on fire")))
	require.Equal(t, http.StatusOK, a.Status, a.Raw)

	// The answer tells the sender our reference and Message ID.
	require.Equal(t, "Receipt", a.Message.Name)
	require.Regexp(t, `^INC\d{7}$`, a.Message.SourceReference)
	require.Equal(t, "THEIR-INC-1", a.Message.TargetReference)
	require.Regexp(t, `^MSG\d{7}$`, a.Message.SourceID)
	require.Equal(t, "THEIR-MSG-1", a.Message.TargetID)
	require.Equal(t, "Accepted", a.Stat.ProcessState)

	k := b.ticket(t, a.Message.SourceReference)
	require.Equal(t, "Printer on fire", k.ShortDescription)
	require.Equal(t, 1, k.Priority, "Critical maps to priority 1")
	require.Equal(t, 1, k.Urgency)
	require.Equal(t, 2, k.Impact)
	require.Equal(t, "New", k.State)
	require.Equal(t, "Service Desk", k.AssignmentGroup)
	require.Equal(t, "first note", k.WorkNotes)

	bond := b.bondOf(t, k.Number)
	require.Equal(t, "THEIR-INC-1", bond.ExternalReference)
	require.Equal(t, models.BondOpen, bond.State)
	require.False(t, bond.Owner)
	require.WithinDuration(t, ts, *bond.LastInboundAt, time.Millisecond)
	require.Contains(t, bond.History, "Received CreateIncident")

	var tr models.Transaction
	require.NoError(t, b.db.Where("bond_id = ?", bond.ID).Take(&tr).Error)
	require.Equal(t, models.Inbound, tr.Direction)
	require.Equal(t, models.SendingReceipt, tr.State, "an async message waits for the engine to send its receipt")
	require.Equal(t, models.ProcessAccepted, tr.ProcessState)
	require.Equal(t, "THEIR-MSG-1", tr.ExternalMessageID)
	require.Equal(t, a.Message.SourceID, tr.MessageIdent)
	require.Regexp(t, `^TRN\d{7}$`, tr.Number)

	var st models.Stage
	require.NoError(t, b.db.Where("transaction_id = ?", tr.ID).Take(&st).Error)
	require.Equal(t, "Critical", st.Data.V["priority"])

	r := b.lastRequest(t)
	require.Equal(t, tr.ID, *r.TransactionID)
	require.Equal(t, models.RequestOK, r.State)
	require.Equal(t, 200, *r.ResponseStatus)
	require.JSONEq(t, a.Raw, r.ResponseBody)
	require.Equal(t, "Bearer [redacted]", r.RequestHeaders.V["Authorization"])

	var logs int64
	require.NoError(t, b.db.Model(&models.TransactionLog{}).Where("transaction_id = ?", tr.ID).Count(&logs).Error)
	require.EqualValues(t, 1, logs)
}

func TestInboundBasicAuth(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	a := b.post(t, envelope("CreateIncident", "M1", "E1", "", time.Now(), createData("basic")),
		withBasic(models.DemoPeerAccount.Name, models.DemoPeerAccount.Password))
	require.Equal(t, 200, a.Status, a.Raw)
	require.Equal(t, "Basic [redacted]", b.lastRequest(t).RequestHeaders.V["Authorization"])
}

func TestInboundUpdate(t *testing.T) {
	t.Parallel()
	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		d := createData("Changed")
		d["priority"] = "Low"
		d["state"] = "in_progress"
		a := b.post(t, envelope("UpdateIncident", "U-1", "EXT-1", ours, time.Now(), d))
		require.Equal(t, 200, a.Status, a.Raw)
		k := b.ticket(t, ours)
		require.Equal(t, "Changed", k.ShortDescription)
		require.Equal(t, 4, k.Priority)
		require.Equal(t, "In Progress", k.State)
		require.Equal(t, 2, k.Version)
	})
	t.Run("FoundByTheirReference", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		a := b.post(t, envelope("UpdateIncident", "U-1", "EXT-1", "", time.Now(), createData("By theirs")))
		require.Equal(t, 200, a.Status, a.Raw)
		require.Equal(t, ours, a.Message.SourceReference)
		require.Equal(t, "By theirs", b.ticket(t, ours).ShortDescription)
	})
	t.Run("RejectedValueWithoutMapping", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		before := b.ticket(t, ours)
		d := createData("Should not land")
		d["priority"] = "Apocalyptic"
		a := b.post(t, envelope("UpdateIncident", "U-1", "EXT-1", ours, time.Now(), d))
		require.Equal(t, 200, a.Status, a.Raw)
		require.Equal(t, "Rejected", a.Stat.ProcessState)
		want := `Value "Apocalyptic" of field "priority" has no mapping.`
		require.Equal(t, want, a.Stat.Error)
		require.Equal(t, before, b.ticket(t, ours), "a rejected message never changes the ticket")
		var tr models.Transaction
		require.NoError(t, b.db.Where("external_message_id = 'U-1'").Take(&tr).Error)
		require.Equal(t, models.SendingReceipt, tr.State)
		require.Equal(t, models.ProcessRejected, tr.ProcessState)
		require.Equal(t, want, tr.ProcessError)
		bond := b.bondOf(t, ours)
		require.Equal(t, want, bond.ProcessError, "the process error is rolled up to the bond")
		require.Contains(t, bond.History, "Rejected: "+want)

		// The next good update clears the bond's process error.
		a = b.post(t, envelope("UpdateIncident", "U-2", "EXT-1", ours, time.Now(), createData("Fixed")))
		require.Equal(t, "Accepted", a.Stat.ProcessState)
		require.Empty(t, b.bondOf(t, ours).ProcessError)
	})
	t.Run("RejectedSenderDoesNotOwnBond", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		before := b.ticket(t, ours)
		a := b.post(t, envelope("UpdateIncident", "U-1", "EXT-OTHER", ours, time.Now(), createData("Hijack")))
		require.Equal(t, 200, a.Status, a.Raw)
		require.Equal(t, "Rejected", a.Stat.ProcessState)
		require.Contains(t, a.Stat.Error, "does not own this bond")
		require.Equal(t, before, b.ticket(t, ours))
		require.Contains(t, b.bondOf(t, ours).ProcessError, "does not own this bond")
	})
	t.Run("SynchronousMessageCompletes", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		require.NoError(t, b.db.Exec("UPDATE messages SET async = false, receipt_message_id = NULL WHERE name = 'CreateIncident'").Error)
		a := b.post(t, envelope("CreateIncident", "C-1", "EXT-1", "", time.Now(), createData("sync")))
		require.Equal(t, 200, a.Status, a.Raw)
		require.Equal(t, "Response", a.Message.Name)
		var tr models.Transaction
		require.NoError(t, b.db.Where("external_message_id = 'C-1'").Take(&tr).Error)
		require.Equal(t, models.Complete, tr.State)
		require.NotNil(t, tr.FinishedAt)
	})
	t.Run("PausedIntegrationAccepts", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		require.NoError(t, b.db.Exec("UPDATE integrations SET state = 'Paused'").Error)
		a := b.post(t, envelope("CreateIncident", "C-1", "EXT-1", "", time.Now(), createData("paused")))
		require.Equal(t, 200, a.Status, a.Raw)
	})
	t.Run("ResolveClosesBond", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		a := b.post(t, envelope("ResolveIncident", "R-1", "EXT-1", ours, time.Now(),
			map[string]any{"state": "resolved", "close_notes": "fixed it"}))
		require.Equal(t, 200, a.Status, a.Raw)
		require.Equal(t, models.BondClosed, b.bondOf(t, ours).State)
		k := b.ticket(t, ours)
		require.Equal(t, "Resolved", k.State)
		require.Equal(t, "fixed it", k.WorkNotes)
	})
}

// TestInboundOrdering: a late retry of an older message is recorded but never
// overwrites newer data.
func TestInboundOrdering(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	ours := b.createTicket(t, "EXT-1")
	t0 := time.Now()
	a := b.post(t, envelope("UpdateIncident", "U-2", "EXT-1", ours, t0.Add(2*time.Second), createData("Newer")))
	require.Equal(t, 200, a.Status, a.Raw)
	a = b.post(t, envelope("UpdateIncident", "U-1", "EXT-1", ours, t0.Add(time.Second), createData("Older")))
	require.Equal(t, 200, a.Status, a.Raw)
	require.Equal(t, "Accepted", a.Stat.ProcessState)
	require.Equal(t, "Newer", b.ticket(t, ours).ShortDescription, "the late message must not overwrite newer data")

	var tr models.Transaction
	require.NoError(t, b.db.Where("external_message_id = 'U-1'").Take(&tr).Error)
	var line string
	require.NoError(t, b.db.Model(&models.TransactionLog{}).Select("line").Where("transaction_id = ?", tr.ID).Scan(&line).Error)
	require.Contains(t, line, "not applied")
	require.Contains(t, b.bondOf(t, ours).History, "not applied")
}

// TestInboundConcurrentUpdatesKeepNewest sends many updates to one bond at
// once in shuffled order: whatever order they arrive in, the newest wins.
func TestInboundConcurrentUpdatesKeepNewest(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	ours := b.createTicket(t, "EXT-1")
	t0 := time.Now()
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for i := n - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(envelope("UpdateIncident", fmt.Sprintf("U-%02d", i), "EXT-1", ours,
				t0.Add(time.Duration(i+1)*time.Second), createData(fmt.Sprintf("Version %02d", i))))
			a := postRaw(t, b.url, body)
			if a.Status != 200 {
				errs <- a.Raw
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	require.Equal(t, fmt.Sprintf("Version %02d", n-1), b.ticket(t, ours).ShortDescription)
	var count int64
	require.NoError(t, b.db.Model(&models.Transaction{}).Where("direction = 'Inbound'").Count(&count).Error)
	require.EqualValues(t, n+1, count, "every message is recorded")
}

// TestInboundDuplicateConcurrent sends one message many times at once: it is
// applied once and every other copy is refused as a duplicate.
func TestInboundDuplicateConcurrent(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"Create", "Update"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			b := setupInbound(t)
			var env map[string]any
			ours := ""
			if kind == "Create" {
				env = envelope("CreateIncident", "DUP-1", "EXT-DUP", "", time.Now(), createData("dup"))
			} else {
				ours = b.createTicket(t, "EXT-DUP")
				env = envelope("UpdateIncident", "DUP-1", "EXT-DUP", ours, time.Now(), createData("dup"))
			}
			body, _ := json.Marshal(env)
			const n = 16
			statuses := make(chan inboundAnswer, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					statuses <- postRaw(t, b.url, body)
				}()
			}
			close(start)
			wg.Wait()
			close(statuses)
			ok, dup := 0, 0
			for a := range statuses {
				switch {
				case a.Status == 200:
					ok++
				case a.Status == 409 && a.Error == inbound.TextDuplicate:
					dup++
				default:
					t.Fatalf("unexpected answer %d %s", a.Status, a.Raw)
				}
			}
			require.Equal(t, 1, ok)
			require.Equal(t, n-1, dup)
			var tickets, tx int64
			require.NoError(t, b.db.Model(&models.Ticket{}).Count(&tickets).Error)
			require.NoError(t, b.db.Model(&models.Transaction{}).Where("external_message_id = 'DUP-1'").Count(&tx).Error)
			require.EqualValues(t, 1, tickets)
			require.EqualValues(t, 1, tx)
			if ours != "" {
				require.Equal(t, 2, b.ticket(t, ours).Version, "the update is applied once")
			}
		})
	}
}

// TestInboundReceipt completes our Awaiting Receipt transactions.
func TestInboundReceipt(t *testing.T) {
	t.Parallel()
	t.Run("Accepted", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		require.NoError(t, b.db.Exec("UPDATE bonds SET state = 'Pending'").Error)
		head := b.outbound(t, ours, models.AwaitingReceipt)
		next := b.outbound(t, ours, models.Queued)
		a := b.post(t, receiptEnvelope("THEIR-R-1", head.MessageIdent, "EXT-1", "Accepted", ""))
		require.Equal(t, 200, a.Status, a.Raw)
		require.Equal(t, ours, a.Message.SourceReference)
		require.Equal(t, head.MessageIdent, a.Message.SourceID)
		got := b.transaction(t, head.ID)
		require.Equal(t, models.Complete, got.State)
		require.Equal(t, models.ProcessAccepted, got.ProcessState)
		require.Equal(t, "THEIR-R-1", got.ExternalMessageID)
		require.Equal(t, models.Sending, b.transaction(t, next.ID).State, "the next queued transaction is released")
		require.Equal(t, models.BondOpen, b.bondOf(t, ours).State, "an accepted receipt opens a Pending bond")
		r := b.lastRequest(t)
		require.Equal(t, head.ID, *r.TransactionID)
		require.Equal(t, models.RequestOK, r.State)

		// The same receipt again: processed already, nothing changes.
		before := b.snapshot(t)
		a = b.post(t, receiptEnvelope("THEIR-R-1", head.MessageIdent, "EXT-1", "Accepted", ""))
		require.Equal(t, 409, a.Status)
		require.Equal(t, inbound.TextProcessedAlready, a.Error)
		require.Equal(t, before.Fingerprint, b.snapshot(t).Fingerprint)
	})
	t.Run("Rejected", func(t *testing.T) {
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		head := b.outbound(t, ours, models.AwaitingReceipt)
		a := b.post(t, receiptEnvelope("THEIR-R-1", head.MessageIdent, "EXT-1", "Rejected", "Assignment group unknown here."))
		require.Equal(t, 200, a.Status, a.Raw)
		got := b.transaction(t, head.ID)
		require.Equal(t, models.Complete, got.State)
		require.Equal(t, models.ProcessRejected, got.ProcessState)
		require.Equal(t, "Assignment group unknown here.", got.ProcessError)
		bond := b.bondOf(t, ours)
		require.Equal(t, "Assignment group unknown here.", bond.ProcessError)
		require.Contains(t, bond.History, "Rejected: Assignment group unknown here.")
	})
	t.Run("LateAfterTimedOut", func(t *testing.T) {
		// docs/inbound.md, "After a crash: duplicates and owed receipts": a
		// receipt owed to us still completes a transaction that timed out
		// waiting for it, and the bond's queue moves on.
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		head := b.outbound(t, ours, models.TimedOut)
		require.NoError(t, b.db.Exec("UPDATE transactions SET error = 'No receipt arrived by …' WHERE id = ?", head.ID).Error)
		next := b.outbound(t, ours, models.Queued)
		a := b.post(t, receiptEnvelope("THEIR-R-1", head.MessageIdent, "EXT-1", "Accepted", ""))
		require.Equal(t, 200, a.Status, a.Raw)
		got := b.transaction(t, head.ID)
		require.Equal(t, models.Complete, got.State)
		require.Equal(t, models.ProcessAccepted, got.ProcessState)
		require.Empty(t, got.Error, "the time-out no longer holds")
		require.Equal(t, models.Sending, b.transaction(t, next.ID).State, "the next queued transaction is released")

		// Once Complete, the same receipt is processed already; its detail names the state.
		a = b.post(t, receiptEnvelope("THEIR-R-1", head.MessageIdent, "EXT-1", "Accepted", ""))
		require.Equal(t, 409, a.Status)
		require.Equal(t, inbound.TextProcessedAlready, a.Error)
		require.Equal(t, head.MessageIdent+" is Complete", a.Detail)
	})
	t.Run("SendingThenAwaiting", func(t *testing.T) {
		// The receipt arrives while our synchronous call is still in flight
		// (Sending): it must wait, look again once the call is recorded and
		// complete the transaction. (The other order, the receipt after
		// Awaiting Receipt, is Accepted above.) The test holds the bond's
		// lock, so the receipt's first look is queued and certainly finds
		// Sending; the record, queued behind it for the same lock as the
		// engine's is, then moves the transaction to Awaiting Receipt.
		t.Parallel()
		b := setupInbound(t)
		ours := b.createTicket(t, "EXT-1")
		head := b.outbound(t, ours, models.Sending)
		waiting := func(n int64) func() (bool, error) {
			return func() (bool, error) {
				var got int64
				err := b.db.Raw(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
					AND wait_event_type = 'Lock'`).Scan(&got).Error
				return got == n, fmt.Errorf("%d waiting on a lock (%v)", got, err)
			}
		}
		lockBond := "SELECT id FROM bonds WHERE id = ? FOR UPDATE"
		hold := b.db.Begin()
		require.NoError(t, hold.Exec(lockBond, head.BondID).Error)
		defer hold.Rollback()

		answered := make(chan inboundAnswer, 1)
		go func() {
			answered <- b.post(t, receiptEnvelope("THEIR-R-1", head.MessageIdent, "EXT-1", "Accepted", ""))
		}()
		wait.For(t, 10*time.Second, waiting(1), "the receipt waiting for the bond")
		type record struct {
			at  time.Time
			err error
		}
		recorded := make(chan record, 1)
		go func() {
			var r record
			r.err = b.db.Transaction(func(tx *gorm.DB) error {
				if err := tx.Exec(lockBond, head.BondID).Error; err != nil {
					return err
				}
				if err := tx.Exec("UPDATE transactions SET state = ?, receipt_due_at = now() + interval '1 hour' WHERE id = ?",
					models.AwaitingReceipt, head.ID).Error; err != nil {
					return err
				}
				return tx.Raw("SELECT clock_timestamp()").Scan(&r.at).Error
			})
			recorded <- r
		}()
		wait.For(t, 10*time.Second, waiting(2), "the record queued behind the receipt")
		var released time.Time // the receipt's first look began before this
		require.NoError(t, hold.Raw("SELECT clock_timestamp()").Scan(&released).Error)
		require.NoError(t, hold.Rollback().Error)

		rec := <-recorded
		require.NoError(t, rec.err)
		a := <-answered
		require.Equal(t, 200, a.Status, a.Raw)
		got := b.transaction(t, head.ID)
		require.Equal(t, models.Complete, got.State)
		// updated_at is now() of the receipt's database transaction that
		// completed it: the first look began while the bond was held, so a
		// later start means the receipt found Sending, waited and looked again.
		require.True(t, got.UpdatedAt.After(released),
			"the receipt's transaction that completed it began (%s) after the bond was let go (%s)", got.UpdatedAt, released)
	})
}

// TestInboundDuplicateAnswerIsFirstHeader: a duplicate's answer carries the
// header we answered with the first time, exactly (docs/inbound.md), on the
// one-message path (a Create) and in a group (an Update).
func TestInboundDuplicateAnswerIsFirstHeader(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	first := b.post(t, envelope("CreateIncident", "C-1", "EXT-1", "", time.Now(), createData("one")))
	require.Equal(t, 200, first.Status, first.Raw)
	again := b.post(t, envelope("CreateIncident", "C-1", "EXT-1", "", time.Now(), createData("one")))
	require.Equal(t, 409, again.Status, again.Raw)
	require.Equal(t, inbound.TextDuplicate, again.Error)
	require.Equal(t, first.Message, again.Message, "the header first answered, not a new one")

	upd := b.post(t, envelope("UpdateIncident", "U-1", "EXT-1", first.Message.SourceReference, time.Now(), createData("two")))
	require.Equal(t, 200, upd.Status, upd.Raw)
	updAgain := b.post(t, envelope("UpdateIncident", "U-1", "EXT-1", first.Message.SourceReference, time.Now(), createData("two")))
	require.Equal(t, 409, updAgain.Status, updAgain.Raw)
	require.Equal(t, upd.Message, updAgain.Message, "the header first answered, not a new one")
}

// TestInboundReceiptRefusalOrder: a receipt for no transaction of ours is
// refused for that ("which transaction") before its fields are checked.
func TestInboundReceiptRefusalOrder(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	env := receiptEnvelope("R-1", "MSG7777777", "THEIRS", "Accepted", "")
	delete(env, "status")
	a := b.post(t, env)
	require.Equal(t, http.StatusNotFound, a.Status, a.Raw)
	require.Equal(t, inbound.TextNoInitiating, a.Error)
	env["status"] = map[string]any{"process_state": "Maybe"}
	a = b.post(t, env)
	require.Equal(t, http.StatusNotFound, a.Status, a.Raw)
	require.Equal(t, inbound.TextNoInitiating, a.Error)
}

// TestInboundTooLargeWhileUploading: a client still streaming a 20 MB body
// over a real connection reads the documented 413 answer, not a reset.
func TestInboundTooLargeWhileUploading(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	for _, chunked := range []bool{true, false} {
		const size = 20 << 20
		body := io.MultiReader(strings.NewReader(`{"message":{"name":"CreateIncident"},"data":{"description":"`),
			io.LimitReader(repeatReader('a'), size))
		req, err := http.NewRequest(http.MethodPost, b.url, body)
		require.NoError(t, err)
		if !chunked {
			req.ContentLength = int64(len(`{"message":{"name":"CreateIncident"},"data":{"description":"`)) + size
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+models.DemoPeerToken)
		resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
		require.NoError(t, err, "chunked %v: the client reads the answer", chunked)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(raw))
		require.JSONEq(t, `{"error":"The request body is too large","detail":"at most 1 MiB are accepted"}`, string(raw))
	}
}

// TestInboundTooLargeUploadThenRead is the same with a client that sends its
// whole body before it reads the answer (as many HTTP clients do): when the
// server stopped reading at the limit and closed, the client's upload and
// its read ended in a connection reset.
func TestInboundTooLargeUploadThenRead(t *testing.T) {
	t.Parallel()
	b := setupInbound(t)
	u, err := url.Parse(b.url)
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	const size = 20 << 20
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"+
		"Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", u.Path, u.Host, models.DemoPeerToken, size)
	require.NoError(t, err)
	_, err = io.Copy(conn, io.LimitReader(repeatReader('a'), size))
	require.NoError(t, err, "the whole body is taken")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "the answer is read after the upload")
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode, string(raw))
	require.JSONEq(t, `{"error":"The request body is too large","detail":"at most 1 MiB are accepted"}`, string(raw))
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}
