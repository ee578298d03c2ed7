//go:build soak

package fault_test

import (
	"testing"
	"time"
)

// The long runs, `make soak`: figures go to bench/results/soak.txt.

func TestSoakCrash(t *testing.T) {
	runCrash(t, crashOpts{servers: 1, tickets: 4000, updates: 4, timeout: 20 * time.Minute})
}

func TestSoakCrashOneOfTwo(t *testing.T) {
	runCrash(t, crashOpts{servers: 2, tickets: 4000, updates: 4, timeout: 20 * time.Minute})
}

func TestSoakCrashOneOfThree(t *testing.T) {
	runCrash(t, crashOpts{servers: 3, tickets: 4000, updates: 4, timeout: 20 * time.Minute})
}

func TestSoakDatabaseRestart(t *testing.T) {
	runDatabaseRestart(t, 2000, 4, 15*time.Second)
}

// The peer is down for about a minute: 20 s refusing, 20 s answering 500,
// 20 s stalling.
func TestSoakPeerOutage(t *testing.T) {
	runPeerOutage(t, 100, 4, 20*time.Second)
}

func TestSoakFlood(t *testing.T) {
	runFlood(t, floodOpts{workers: 48, max: 60000, duration: 30 * time.Second, slow: 300})
}

// The two-instance suite with ten tickets × 100 PATCHes per side and 15 s
// database outages and network stalls.
func TestSoakTwinFaults(t *testing.T) {
	for _, sc := range twinScenarios {
		t.Run(sc.name, func(t *testing.T) { runTwinFault(t, sc, twinLong) })
	}
}
