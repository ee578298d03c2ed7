package components

import (
	"bytes"
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"unifi/models"
	"unifi/models/query"
)

// TestAppendEscaped checks the rows' escaping against html.EscapeString,
// which templ's { } expressions use.
func TestAppendEscaped(t *testing.T) {
	for _, s := range []string{"", "plain", "<script>alert(1)</script>", `a"b'c&d>e<`, "&&", "é—<ü>", "\"", "x\x00y"} {
		if got, want := string(appendEscaped([]byte("pre|"), s)), "pre|"+html.EscapeString(s); got != want {
			t.Errorf("appendEscaped(%q) = %q, want %q", s, got, want)
		}
	}
}

// TestTableRowsEscapeText renders both tables with markup in every text a
// remote or a user can set (a process error comes from the remote) and
// checks none of it reaches the page unescaped.
func TestTableRowsEscapeText(t *testing.T) {
	const evil = `<script>alert("x")</script>'&`
	at := time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	ctx := context.Background()
	txn := []query.TransactionRow{{ID: 1, Number: evil, MessageIdent: evil, IntegrationID: 2, BondID: 3,
		Direction: models.Direction(evil), CreatedAt: at, IntegrationName: evil, MessageName: evil, TicketNumber: evil}}
	if err := TransactionsTable(txn, TransactionsTableOpts{TestID: "t", Selectable: true, FormID: evil, ShowInt: true}).Render(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	bonds := []query.BondRow{{ID: 4, TicketID: 5, ExternalReference: evil, State: models.BondState(evil),
		ProcessError: evil, UpdatedAt: at, IntegrationName: evil, TicketNumber: evil, Status: models.BondStatus(evil)}}
	if err := BondsTable(bonds, "b", true).Render(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if strings.Contains(out, "<script") || strings.Contains(out, `"x"`) || strings.Contains(out, "'&") {
		t.Fatalf("unescaped text in the rows:\n%s", out)
	}
	// Every text shown, escaped: the transaction row's number four times
	// (row, checkbox label and id, link), its form twice (with the header's
	// select-all), message id, integration, message, ticket and direction;
	// the bond row's integration and ticket twice (row id, link), its
	// reference and process error, each badge's state twice (class, label).
	if n := strings.Count(out, html.EscapeString(evil)); n != 11+10 {
		t.Fatalf("%d escaped copies of the text, want 21:\n%s", n, out)
	}
}
