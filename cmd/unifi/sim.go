package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"unifi/internal/failmode"
	"unifi/internal/sim"
	"unifi/internal/sim/jira"
	"unifi/internal/sim/servicenow"
)

const simUsage = `Usage: unifi sim jira|servicenow [flags]

Simulators of real APIs, for demos and tests (docs/simulators.md):
  jira         a Jira-like issue tracker: REST API v2, JQL search, basic auth with an API token; it never
               calls out, so an integration polls it
  servicenow   a ServiceNow-like instance: the Table API on incident, and a webhook (a business rule) that
               POSTs changed incidents to -webhook-url
Each keeps its records in memory, prints its credentials at start and has a page listing its records at /.
`

// simCommon are the flags both simulators have.
type simCommon struct {
	addr, mode string
	rateLimit  float64
	burst      int
}

func (c *simCommon) register(fs *flag.FlagSet, addr string) {
	fs.StringVar(&c.addr, "addr", addr, "address to listen on (HOST:PORT; port 0 picks a free one)")
	fs.StringVar(&c.mode, "mode", "ok", "starting failure mode: "+failmode.List())
	fs.Float64Var(&c.rateLimit, "rate-limit", 0, "API requests per second before 429 with Retry-After (0: no limit)")
	fs.IntVar(&c.burst, "burst", 0, "requests allowed at once above the rate (0: the rate, at least 1)")
}

// randomSecret is a credential made up at start when none is given.
func randomSecret() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

const simControlHelp = `
Watch it:   http://%[1]s/  (the records, reloading)   JSON: /records  /stats
Control it (no credentials needed):
  curl -X POST http://%[1]s/control -d '{"mode":"fail500"}'                       every API call fails with 500
  curl -X POST http://%[1]s/control -d '{"mode":"refuse","for_seconds":60}'       drop connections for a minute
  curl -X POST http://%[1]s/control -d '{"mode":"fail429","retry_after_s":5}'     429 with Retry-After: 5
  curl -X POST http://%[1]s/control -d '{"mode":"ok","rate_limit_per_s":2}'       back to normal, 2 requests/s
  curl -X POST http://%[1]s/seed -d '{"count":10000}'                             make records in bulk
  curl -X POST http://%[1]s/reset                                                 forget every record
Modes: %[2]s.
`

// cmdSim is `unifi sim jira|servicenow`.
func cmdSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "jira" && args[0] != "servicenow") {
		fmt.Fprint(stderr, simUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New(`say which simulator: "unifi sim jira" or "unifi sim servicenow"`)
	}
	fs := flag.NewFlagSet("sim "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c simCommon
	log := slog.New(slog.NewTextHandler(stdout, nil))
	var (
		frame  *sim.Frame
		banner func(addr string)
	)
	switch args[0] {
	case "jira":
		c.register(fs, "127.0.0.1:8082")
		user := fs.String("user", "sim@example.com", "the account's e-mail address (the basic-auth user)")
		token := fs.String("token", "", "the account's API token (the basic-auth password; empty: made up at start)")
		agent := fs.String("agent", "agent@example.com", "a second account, a person working in Jira")
		agentToken := fs.String("agent-token", "", "the agent's API token (empty: made up at start)")
		projects := fs.String("projects", "SIM", "comma-separated keys of the projects that exist")
		maxPage := fs.Int("max-page", 100, "the largest maxResults a search answers")
		tz := fs.String("tz", "UTC", "the accounts' time zone (IANA name): JQL dates are read in it, times written in it")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *token == "" {
			*token = randomSecret()
		}
		if *agentToken == "" {
			*agentToken = randomSecret()
		}
		loc, err := time.LoadLocation(*tz)
		if err != nil {
			return fmt.Errorf("sim jira: -tz: %w", err)
		}
		s, err := jira.New(jira.Opts{Location: loc, User: *user, Token: *token, AgentUser: *agent, AgentToken: *agentToken, Projects: strings.Split(*projects, ","), MaxPage: *maxPage,
			RateLimit: c.rateLimit, Burst: c.burst, Mode: failmode.Mode(c.mode), Logger: log})
		if err != nil {
			return err
		}
		frame = s.Frame()
		banner = func(addr string) {
			fmt.Fprintf(stdout, "Jira simulator listening on http://%s (REST API v2: /rest/api/2/issue, /rest/api/2/search)\n", addr)
			fmt.Fprintf(stdout, "Credentials (basic auth): user %s API token %s\n", *user, *token)
			fmt.Fprintf(stdout, "Agent (a person working in Jira): user %s API token %s\n", *agent, *agentToken)
			fmt.Fprintf(stdout, "Projects: %s; time zone: %s; rate limit: %s\n", *projects, loc, rateText(c))
		}
	case "servicenow":
		c.register(fs, "127.0.0.1:8083")
		var o servicenow.Opts
		fs.StringVar(&o.User, "user", "unifi.integration", "the integration user (its changes do not fire the webhook)")
		fs.StringVar(&o.Password, "password", "", "its password (empty: made up at start)")
		fs.StringVar(&o.AgentUser, "agent", "agent", "a service-desk agent (its changes fire the webhook)")
		fs.StringVar(&o.AgentPassword, "agent-password", "", "the agent's password (empty: made up at start)")
		fs.StringVar(&o.Webhook.URL, "webhook-url", "", "where changed incidents are POSTed (empty: nowhere; POST /webhook changes it)")
		fs.StringVar(&o.Webhook.User, "webhook-user", "", "basic-auth user for the webhook's receiver")
		fs.StringVar(&o.Webhook.Password, "webhook-password", "", "basic-auth password for the webhook's receiver")
		fs.StringVar(&o.Webhook.Token, "webhook-token", "", "bearer token for the webhook's receiver (when no -webhook-user)")
		fs.IntVar(&o.Webhook.Retries, "webhook-retries", 10, "further attempts after a failed delivery")
		fs.DurationVar(&o.Webhook.Backoff, "webhook-backoff", 200*time.Millisecond, "wait before the first retry (doubling up to 5 s)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if o.Password == "" {
			o.Password = randomSecret()
		}
		if o.AgentPassword == "" {
			o.AgentPassword = randomSecret()
		}
		o.RateLimit, o.Burst, o.Mode, o.Logger = c.rateLimit, c.burst, failmode.Mode(c.mode), log
		s, err := servicenow.New(o)
		if err != nil {
			return err
		}
		frame = s.Frame()
		banner = func(addr string) {
			fmt.Fprintf(stdout, "ServiceNow simulator listening on http://%s (Table API: /api/now/table/incident)\n", addr)
			fmt.Fprintf(stdout, "Credentials (basic auth): user %s password %s\n", o.User, o.Password)
			fmt.Fprintf(stdout, "Agent (changes fire the webhook): user %s password %s\n", o.AgentUser, o.AgentPassword)
			fmt.Fprintf(stdout, "Webhook: %s; rate limit: %s\n", cmp.Or(o.Webhook.URL, "none (POST /webhook sets one)"), rateText(c))
		}
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		frame.Close()
		return fmt.Errorf("sim %s: listen on %s: %w", args[0], c.addr, err)
	}
	banner(ln.Addr().String())
	fmt.Fprintf(stdout, simControlHelp, ln.Addr().String(), failmode.List())
	return frame.Serve(ctx, ln)
}

func rateText(c simCommon) string {
	if c.rateLimit <= 0 {
		return "none"
	}
	return fmt.Sprintf("%g requests/s", c.rateLimit)
}
