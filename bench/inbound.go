package main

import "unifi/internal/inboundbench"

// runInbound: accepted inbound messages per second through the real app over
// real HTTP, with the duplicate check on (target ≥ 3,000 msg/s on 2 cores).
func runInbound(e *env) ([]string, error) {
	res, err := inboundbench.Run(e.ctx, e.db, inboundbench.Opts{Bonds: 1000, Updates: 30000, Clients: 16,
		DuplicateOf: 0.05, Progress: e.out})
	if err != nil {
		return nil, err
	}
	return res.Lines(), nil
}
