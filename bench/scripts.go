package main

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/query"
	"unifi/models/script"
	"unifi/models/store"
)

// The scripts section (docs/scripting.md):
//   delivery ratio  the engine section's delivery (1,000 bonds x 30) with a
//                   Stage to Request script on every transaction that builds
//                   the request itself, against the same delivery without
//                   scripts, measured back to back in one run;
//   changes ratio   tickets changed through the Store with the engine
//                   running, each change delivered (the transaction's
//                   Source to Stage runs at the change, its Stage to
//                   Request at the send), with both scripts against none;
//   runtime         per call of the Source to Stage and the Stage to Request
//                   scripts below, p50 and p99, on the engine the store uses.

// benchSourceToStage maps a ticket like a field list would, plus a little logic.
const benchSourceToStage = `const p = {1: "Critical", 2: "High", 3: "Moderate", 4: "Low"};
return {short_description: ticket.short_description, state: ticket.state,
        priority: p[ticket.priority] || "Low", comments: ticket.work_notes,
        labels: [vars.project || "OPS", "unifi"]};`

// benchStageToRequest builds our own envelope, so the bench's remote (which
// checks per-bond order from the envelope) accepts it: the script does all the
// work a foreign shape would need.
const benchStageToRequest = `return {method: "POST",
  headers: {"X-Bench": "1"},
  body: {message: {name: transaction.message, time_stamp: new Date().toISOString(),
                   source_reference: transaction.ticket, target_reference: bond.external_reference,
                   source_id: transaction.message_id},
         data: {short_description: stage.short_description, state: stage.state,
                priority: stage.priority, comments: stage.comments}}};`

func runScripts(e *env) ([]string, error) {
	remote, err := startChildRemote(e.ctx)
	if err != nil {
		return nil, err
	}
	defer remote.close()
	b := &engineBench{env: e, store: store.NewStore(e.db, account.New(e.db, nil), nil), remote: remote, url: remote.url}
	if err := b.fixtures(); err != nil {
		return nil, err
	}
	compactCtx, stopCompact := context.WithCancel(e.ctx)
	compacted := make(chan struct{})
	go func() {
		defer close(compacted)
		query.NewReader(e.db, nil).RunCountCompactor(compactCtx, 2*time.Second, nil)
	}()
	defer func() { stopCompact(); <-compacted }()

	plain, plainCPU, err := b.delivery()
	if err != nil {
		return nil, fmt.Errorf("delivery without scripts: %w", err)
	}
	// The second run makes its own integration named like the first.
	if err := e.db.WithContext(e.ctx).Exec("UPDATE integrations SET name = 'delivery_plain' WHERE name = 'delivery'").Error; err != nil {
		return nil, err
	}
	b.scripts = map[script.Point]string{script.SourceToStage: benchSourceToStage, script.StageToRequest: benchStageToRequest}
	scripted, scriptedCPU, err := b.delivery()
	if err != nil {
		return nil, fmt.Errorf("delivery with scripts: %w", err)
	}
	// From the ticket change on, so Source to Stage (run when a change makes
	// its transaction) is in the measure too. In the order plain, scripted,
	// scripted, plain, so a drift of the machine over the four runs cancels
	// in the ratio of the sums.
	both := map[script.Point]string{script.SourceToStage: benchSourceToStage, script.StageToRequest: benchStageToRequest}
	var changeRate [2]float64
	var changeCPU [2]cpuPer
	for i, scripts := range []map[script.Point]string{nil, both, both, nil} {
		b.scripts = scripts
		kind := 0
		if scripts != nil {
			kind = 1
		}
		rate, cpu, err := b.changes(fmt.Sprintf("changes_%d", i+1))
		if err != nil {
			return nil, fmt.Errorf("changes, run %d: %w", i+1, err)
		}
		changeRate[kind] += rate / 2
		changeCPU[kind] = cpu // the later run of each kind
	}
	plainChanges, scriptedChanges := changeRate[0], changeRate[1]
	plainChangesCPU, scriptedChangesCPU := changeCPU[0], changeCPU[1]
	lines := []string{
		"command: go run ./bench -only scripts",
		fmt.Sprintf("delivery without scripts: %.0f tx/s", plain),
		plainCPU.line("without scripts:"),
		fmt.Sprintf("delivery with Stage to Request on every transaction: %.0f tx/s", scripted),
		scriptedCPU.line("with scripts:"),
		fmt.Sprintf("delivery ratio: %.2f (target >= 0.8; the two runs are back to back on a shared machine)", scripted/plain),
		fmt.Sprintf("ticket changes delivered without scripts: %.0f changes/s (mean of 2)", plainChanges),
		plainChangesCPU.line("without scripts:"),
		fmt.Sprintf("ticket changes delivered with Source to Stage and Stage to Request on every transaction: %.0f changes/s (mean of 2)",
			scriptedChanges),
		scriptedChangesCPU.line("with scripts:"),
		fmt.Sprintf("ticket changes ratio: %.2f (target >= 0.8; runs plain, scripted, scripted, plain: means)",
			scriptedChanges/plainChanges),
	}
	for _, c := range []struct {
		name string
		s    script.Script
		in   script.Input
	}{
		{"Source to Stage", script.Script{ID: 1, Version: 1, Name: "bench / Source to Stage", Source: benchSourceToStage},
			script.Input{Ticket: map[string]any{"number": "INC0000001", "short_description": "Printer on fire",
				"state": "In Progress", "priority": 2, "work_notes": "looking"}, Vars: map[string]string{"project": "OPS"}}},
		{"Stage to Request", script.Script{ID: 2, Version: 1, Name: "bench / Stage to Request", Source: benchStageToRequest},
			script.Input{Stage: map[string]any{"short_description": "Printer on fire", "state": "In Progress",
				"priority": "High", "comments": "looking"},
				Transaction: map[string]any{"message": "UpdateIncident", "ticket": "INC0000001", "message_id": "MSG0000001"},
				Bond:        map[string]any{"external_reference": "EXT-1"}}},
	} {
		p50, p99, err := scriptRuntime(b.store.Scripts(), c.s, c.in, 20000)
		if err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("%s runtime per call p50: %.1f µs", c.name, us(p50)),
			fmt.Sprintf("%s runtime per call p99: %.1f µs", c.name, us(p99)))
	}
	return lines, nil
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1000 }

// scriptRuntime runs s n times on one goroutine and returns the p50 and p99
// of the whole call (copying the input in, running, exporting the result).
func scriptRuntime(e *script.Engine, s script.Script, in script.Input, n int) (p50, p99 time.Duration, err error) {
	ds := make([]time.Duration, n)
	for i := range n {
		start := time.Now()
		if _, _, err := e.Object(s, in, false); err != nil {
			return 0, 0, err
		}
		ds[i] = time.Since(start)
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return ds[n/2], ds[n*99/100], nil
}

// changeTickets x changesPerTicket ticket updates make the changes measure.
const (
	changeTickets    = 200
	changesPerTicket = 10
)

// changes creates changeTickets tickets on a new Active integration with the
// engine running and waits for their Creates; then changeWorkers goroutines
// update each ticket changesPerTicket times through the Store (the way the
// ticket form does), and the rate is updates delivered per second, from the
// first update until the remote applied the last, with per-bond order checked.
func (b *engineBench) changes(name string) (float64, cpuPer, error) {
	in, _, err := b.integration(name, models.IntegrationActive)
	if err != nil {
		return 0, cpuPer{}, err
	}
	// What the runs before left (30,000 deliveries each) vacuumed now, as
	// backlog does, so that autovacuum does not land in this measure: without
	// it the first run here measured 5.2 ms of PostgreSQL CPU per change, the
	// next 3.9 ms.
	if err := b.db.WithContext(b.ctx).Exec("VACUUM (ANALYZE)").Error; err != nil {
		return 0, cpuPer{}, err
	}
	p := b.pool("bench-" + name)
	if err := p.Start(b.ctx); err != nil {
		return 0, cpuPer{}, err
	}
	defer func() { _ = p.Stop(context.Background()) }()
	start0, err := b.remote.applied()
	if err != nil {
		return 0, cpuPer{}, err
	}
	tickets := make([]*models.Ticket, changeTickets)
	refs := make([]string, changeTickets)
	for i := range tickets {
		t, err := b.store.CreateTicket(b.ctx, b.actor, store.TicketInput{ProcessID: b.proc.ID,
			ShortDescription: fmt.Sprintf("%s %d", name, i)})
		if err != nil {
			return 0, cpuPer{}, err
		}
		tickets[i], refs[i] = t, t.Number
	}
	if err := b.waitApplied(start0+changeTickets, 2*time.Minute); err != nil {
		return 0, cpuPer{}, fmt.Errorf("creates of %s: %w", in.Name, err)
	}
	total := int64(changeTickets * changesPerTicket)
	const changeWorkers = 8
	mark := b.cpuNow()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, changeWorkers)
	for w := range changeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range changesPerTicket {
				for i := w; i < changeTickets; i += changeWorkers {
					t := tickets[i]
					u, err := b.store.UpdateTicket(b.ctx, b.actor, t.ID, t.Version, store.TicketInput{ProcessID: b.proc.ID,
						ShortDescription: fmt.Sprintf("%s %d change %d", name, i, c), State: "In Progress", Priority: 3})
					if err != nil {
						errs <- fmt.Errorf("update %s: %w", t.Number, err)
						return
					}
					tickets[i] = u
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, cpuPer{}, err
	}
	err = b.waitApplied(start0+changeTickets+total, 5*time.Minute)
	elapsed := time.Since(start)
	cpu := b.cpuSince(mark, total)
	if err != nil {
		return 0, cpuPer{}, err
	}
	if err := b.checkRemote(refs, 1+changesPerTicket); err != nil {
		return 0, cpuPer{}, err
	}
	b.note("%s: %d changes delivered in %s", name, total, elapsed.Round(time.Millisecond))
	return float64(total) / elapsed.Seconds(), cpu, nil
}
