package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"path/filepath"

	"unifi/internal/config"
	"unifi/internal/pgcluster"
	"unifi/models"
	"unifi/models/store"
)

// cmdDev is `make run`: a private PostgreSQL under .data/ when DATABASE_URL is
// unset, the demo data, then the server, until Ctrl-C stops both.
func cmdDev(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dataDir := fs.String("data", ".data", "folder for the private PostgreSQL cluster and generated keys")
	peerAddr := fs.String("peer", "127.0.0.1:8081", "address of the demo peer")
	noPeer := fs.Bool("no-peer", false, "do not start the demo peer (run `unifi peer` yourself)")
	var pf peerFlags
	pf.register(fs, "peer-", false)
	if err := fs.Parse(args); err != nil {
		return err
	}
	receiptURLSet := false
	fs.Visit(func(f *flag.Flag) { receiptURLSet = receiptURLSet || f.Name == "peer-receipt-url" })
	env := map[string]string{"DATA_DIR": *dataDir}
	getenv2 := func(k string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return env[k]
	}
	if getenv("DATABASE_URL") == "" {
		fmt.Fprintf(stdout, "Starting a private PostgreSQL cluster in %s ...\n", filepath.Join(*dataDir, "pg"))
		cl, err := pgcluster.Start(ctx, pgcluster.Opts{Dir: filepath.Join(*dataDir, "pg"), Database: "unifi"})
		if err != nil {
			return err
		}
		if cl.Relocated != "" {
			fmt.Fprintf(stdout, "The postgres user cannot reach %s, so the cluster lives in %s instead.\n",
				filepath.Join(*dataDir, "pg"), cl.Relocated)
		}
		defer func() {
			fmt.Fprintln(stdout, "Stopping PostgreSQL ...")
			if err := cl.Stop(context.WithoutCancel(ctx)); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}()
		env["DATABASE_URL"] = cl.URL
	}
	cfg, err := config.Load(getenv2)
	if err != nil {
		return err
	}
	svc, closeDB, err := openServices(ctx, cfg, newLogger(cfg, io.Discard))
	if err != nil {
		return err
	}
	created, err := svc.store.SeedDemo(ctx, store.SeedDemoOpts{PeerURL: "http://" + *peerAddr})
	closeDB()
	if err != nil {
		return err
	}
	if created {
		fmt.Fprintln(stdout, "Seeded the demo integration, users and messages.")
	}
	if !*noPeer {
		pf.addr = *peerAddr
		if !receiptURLSet {
			pf.receiptURL = localURL(cfg.Addr) + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages"
		}
		peerCtx, stopPeer := context.WithCancel(ctx)
		addr, errc, err := pf.start(peerCtx, newLogger(cfg, io.Discard))
		if err != nil {
			stopPeer()
			return err
		}
		defer func() {
			stopPeer()
			if err := <-errc; err != nil {
				fmt.Fprintln(stderr, err)
			}
		}()
		fmt.Fprintf(stdout, "Demo peer running at http://%s (receipts to %s).\n", addr, pf.receiptURL)
		fmt.Fprintf(stdout, peerHelp, addr, modeList())
	}
	return cmdServe(ctx, getenv2, stdout, func(addr string) {
		fmt.Fprintf(stdout, "\nUnifi for Go is running at %s\n\nLog in as:\n", cfg.BaseURL)
		for _, l := range models.DemoLogins {
			fmt.Fprintf(stdout, "  %-8s  password %-16s (%s)\n", l.Name, l.Password, l.Role.Title())
		}
		fmt.Fprintln(stdout, "\nPress Ctrl-C to stop the server and the database.")
	})
}

// localURL turns a listen address (":8080", "0.0.0.0:8080") into a URL this
// machine can call.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://127.0.0.1:8080"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
