package components

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"unifi/models"
	"unifi/models/query"
)

// BenchmarkTransactionsTable renders the transactions list's table of 50
// rows, as the filtered list shows it (docs/engine.md, "Ninth round"):
// go test -run '^$' -bench TransactionsTable -benchmem ./web/components
func BenchmarkTransactionsTable(b *testing.B) {
	at := time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC)
	rows := make([]query.TransactionRow, 50)
	for i := range rows {
		fin := at.Add(time.Second)
		rows[i] = query.TransactionRow{ID: int64(1000000 + i), Number: fmt.Sprintf("TXN%07d", 1000000+i),
			MessageIdent: fmt.Sprintf("MSG%07d", 1000000+i), IntegrationID: 1, BondID: int64(5000 + i), MessageID: 2,
			TicketID: int64(7000 + i), Direction: models.Outbound, State: models.Error, ProcessState: models.ProcessAccepted,
			CreatedAt: at, FinishedAt: &fin, IntegrationName: "demo", MessageName: "Update", TicketNumber: fmt.Sprintf("INC%07d", 7000+i)}
	}
	o := TransactionsTableOpts{TestID: "transactions", Selectable: true, FormID: "bulk-form", ShowInt: true}
	var buf bytes.Buffer
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := TransactionsTable(rows, o).Render(ctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBondsTable renders the bonds list's table of 50 rows.
func BenchmarkBondsTable(b *testing.B) {
	at := time.Date(2026, 12, 7, 15, 4, 5, 0, time.UTC)
	rows := make([]query.BondRow, 50)
	for i := range rows {
		rows[i] = query.BondRow{ID: int64(5000 + i), TicketID: int64(7000 + i),
			ExternalReference: fmt.Sprintf("EXT%07d", i), State: models.BondOpen, UpdatedAt: at,
			IntegrationName: "demo", TicketNumber: fmt.Sprintf("INC%07d", 7000+i), Status: models.BondStatus("OK")}
	}
	var buf bytes.Buffer
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := BondsTable(rows, "bonds", true).Render(ctx, &buf); err != nil {
			b.Fatal(err)
		}
	}
}
