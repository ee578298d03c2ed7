package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime/pprof"
	"time"

	"unifi/internal/cpuacct"
	"unifi/internal/sim"
	"unifi/internal/sim/jira"
	"unifi/models"
	"unifi/models/account"
	"unifi/models/configpkg"
	"unifi/models/inbound"
	"unifi/models/script"
	"unifi/models/store"
	"unifi/models/webhook"
	"unifi/worker/poll"
)

// The poll section (docs/pollers.md): the Jira simulator (a child process)
// holds pollIssues issues made in Jira; an integration made from the "Jira
// (poll)" template polls it once, to the end, in this process, through the
// template's scripts and the ordinary inbound path. It reports items per
// second, the run's time and the CPU each item cost in this process (the
// poller), PostgreSQL and the simulator.

const (
	pollIssues   = 10000
	simChildEnv  = "BENCH_SIM_CHILD"
	simUser      = "bench@example.com"
	simToken     = "bench-token"
	pollPageSize = "100" // the template's page_size; Jira Cloud answers at most 100 issues a page
)

// simChild serves the Jira simulator until its stdin closes.
func simChild() error {
	js, err := jira.New(jira.Opts{User: simUser, Token: simToken})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("http://%s\n", ln.Addr())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	return http.Serve(ln, js.Frame())
}

func runPoll(e *env) ([]string, error) {
	ctx := e.ctx
	url, cmd, stdin, err := startChild(ctx, simChildEnv+"=1")
	if err != nil {
		return nil, fmt.Errorf("jira simulator child: %w", err)
	}
	defer func() { _ = stdin.Close(); _ = cmd.Wait() }()
	open := sim.Client{Base: url}
	if a, err := open.Do("POST", "/seed", jira.SeedOpts{Count: pollIssues, Summary: "Bench issue",
		UpdatedFrom: time.Now().UTC().Add(-48 * time.Hour), StepMS: 1000}); err != nil || a.Status != http.StatusOK {
		return nil, fmt.Errorf("seed the simulator: %v (%v)", err, a)
	}

	scripts := script.NewEngine(script.Limits{})
	accounts := account.New(e.db, nil)
	st := store.NewStore(e.db, accounts, &store.StoreOpts{Scripts: scripts})
	in := inbound.NewService(e.db, accounts, nil)
	admin := models.Actor{Name: "bench", Role: models.RoleAdmin}
	u, err := accounts.CreateUser(ctx, admin, account.NewUserOpts{Name: "jira-in", Password: "jira-in-password-1", Role: models.RoleIntegration})
	if err != nil {
		return nil, err
	}
	integ, err := st.Packages().FromTemplate(ctx, admin, configpkg.TemplateInput{Template: "jira-poll", Name: "jira",
		EndpointURL: url, Username: simUser, Token: simToken, InboundUserID: u.ID})
	if err != nil {
		return nil, fmt.Errorf("integration from the template: %w", err)
	}
	if err := e.db.Exec(`UPDATE connection_variables SET value = ? WHERE name = 'page_size'
		AND connection_id IN (SELECT id FROM connections WHERE integration_id = ?)`, pollPageSize, integ.ID).Error; err != nil {
		return nil, err
	}
	var pollerID int64
	if err := e.db.Raw(`UPDATE pollers SET next_run_at = now() WHERE integration_id = ? RETURNING id`, integ.ID).
		Scan(&pollerID).Error; err != nil || pollerID == 0 {
		return nil, fmt.Errorf("the template's poller: %v", err)
	}
	rn := poll.New(e.db, st, in, poll.Opts{Processor: poll.Scripts(scripts), Webhook: webhook.New(e.db, in, scripts),
		Lease: time.Minute, Logger: e.log})

	if p := os.Getenv("BENCH_CPUPROFILE"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
		defer pprof.StopCPUProfile()
	}
	self, db, simCPU := cpuacct.Self(), cpuacct.Backends(ctx, e.db), cpuacct.Process(cmd.Process.Pid)
	start := time.Now()
	ran, err := rn.RunDue(ctx)
	elapsed := time.Since(start)
	if err != nil || !ran {
		return nil, fmt.Errorf("the poll run: ran %t: %v", ran, err)
	}
	cpu := struct{ poller, postgres, sim time.Duration }{cpuacct.Self() - self, cpuacct.Backends(ctx, e.db).Since(db),
		cpuacct.Process(cmd.Process.Pid) - simCPU}

	var pr struct {
		State                                                     string
		Error                                                     string
		HTTPRequests, ItemsFound, ItemsProcessed, ItemsRefused, D int
	}
	if err := e.db.Raw(`SELECT state, error, http_requests, items_found, items_processed, items_refused, items_duplicate AS d
		FROM poll_requests WHERE poller_id = ? ORDER BY id DESC LIMIT 1`, pollerID).Scan(&pr).Error; err != nil {
		return nil, err
	}
	var bonds int
	if err := e.db.Raw(`SELECT count(*) FROM bonds WHERE integration_id = ?`, integ.ID).Scan(&bonds).Error; err != nil {
		return nil, err
	}
	if pr.State != string(models.PollDone) || pr.ItemsProcessed != pollIssues || bonds != pollIssues {
		return nil, fmt.Errorf("the run did not apply every issue: %+v, %d bonds", pr, bonds)
	}
	per := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / pollIssues }
	return []string{
		"command: go run ./bench -only poll",
		fmt.Sprintf("poll of %d changed issues (Jira simulator, \"Jira (poll)\" template, pages of %s): %.1f s (target < 10 s)",
			pollIssues, pollPageSize, elapsed.Seconds()),
		fmt.Sprintf("poll rate: %.0f items/s", float64(pollIssues)/elapsed.Seconds()),
		fmt.Sprintf("poll http requests: %d", pr.HTTPRequests),
		fmt.Sprintf("poll cpu per item: %.3f ms poller, %.3f ms postgres, %.3f ms simulator", per(cpu.poller), per(cpu.postgres), per(cpu.sim)),
	}, nil
}
