package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"unifi/internal/failmode"
	"unifi/internal/peer"
	"unifi/models"
)

// peerFlags are the demo peer's settings, shared by `unifi peer` and `unifi dev`.
type peerFlags struct {
	addr, token, receiptURL, receiptToken, mode, rejectError, prefix string
	delay                                                            time.Duration
	rejectShare, failShare                                           float64
}

func (f *peerFlags) register(fs *flag.FlagSet, prefix string, withAddr bool) {
	if withAddr {
		fs.StringVar(&f.addr, prefix+"addr", "127.0.0.1:8081", "address the demo peer listens on")
	}
	fs.StringVar(&f.token, prefix+"token", models.DemoPeerToken, "bearer token callers must send to the peer (empty: any)")
	fs.StringVar(&f.receiptURL, prefix+"receipt-url", "http://127.0.0.1:8080/api/v1/integrations/"+models.DemoIntegrationName+"/messages",
		"where the peer sends asynchronous receipts (empty: none)")
	fs.StringVar(&f.receiptToken, prefix+"receipt-token", models.DemoPeerToken, "bearer token the peer sends receipts with")
	fs.DurationVar(&f.delay, prefix+"receipt-delay", 300*time.Millisecond, "wait before sending a receipt")
	fs.Float64Var(&f.rejectShare, prefix+"reject-share", 0.1, "share (0..1) of updates answered Rejected")
	fs.StringVar(&f.rejectError, prefix+"reject-error", "", "process error of a rejection")
	fs.StringVar(&f.mode, prefix+"mode", "ok", "starting mode: "+modeList())
	fs.Float64Var(&f.failShare, prefix+"fail-share", 0.2, "share of messages that fail in mode flaky")
	fs.StringVar(&f.prefix, prefix+"prefix", "PEER", "prefix of the peer's ticket numbers")
}

func modeList() string { return failmode.List() }

// start listens and serves the peer until ctx ends; errc gets Serve's result.
func (f *peerFlags) start(ctx context.Context, log *slog.Logger) (net.Addr, <-chan error, error) {
	if f.rejectShare < 0 || f.rejectShare > 1 || f.failShare < 0 || f.failShare > 1 {
		return nil, nil, fmt.Errorf("peer: shares are numbers from 0 to 1")
	}
	p := peer.New(peer.Opts{Token: f.token, ReceiptURL: f.receiptURL, ReceiptToken: f.receiptToken,
		ReceiptDelay: f.delay, RejectShare: f.rejectShare, RejectError: f.rejectError, FailShare: f.failShare,
		RefPrefix: f.prefix, Seed: uint64(time.Now().UnixNano()), Logger: log})
	if err := p.SetMode(peer.Mode(f.mode)); err != nil {
		p.Close()
		return nil, nil, fmt.Errorf("peer: %w", err)
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		p.Close()
		return nil, nil, fmt.Errorf("peer: listen on %s: %w", f.addr, err)
	}
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(ctx, ln) }()
	return ln.Addr(), errc, nil
}

const peerHelp = `
Control it while it runs (outage rehearsal):
  curl -X POST http://%[1]s/control -d '{"mode":"fail500"}'                    every message fails with 500
  curl -X POST http://%[1]s/control -d '{"mode":"refuse","for_seconds":60}'    drop connections for a minute
  curl -X POST http://%[1]s/control -d '{"mode":"ok","reject_share":0.5}'      back to normal, reject half the updates
  curl http://%[1]s/stats                                                      counters (received, duplicates, receipts, ...)
Modes: %[2]s.
`

// cmdPeer is `unifi peer`: the demo remote system on its own.
func cmdPeer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f peerFlags
	f.register(fs, "", true)
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stdout, nil))
	addr, errc, err := f.start(ctx, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Demo peer listening on http://%s/api/v1/integrations/{name}/messages; receipts go to %s\n",
		addr, f.receiptURL)
	fmt.Fprintf(stdout, peerHelp, addr, modeList())
	return <-errc
}
