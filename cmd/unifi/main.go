// Command unifi is the Unifi for Go server and its tools: serve, migrate,
// user add, dev (what `make run` starts) and peer.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "unifi:", err)
		os.Exit(1)
	}
}
