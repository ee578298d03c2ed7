//go:build !linux

package script

import "time"

// threadClock is Linux-only; elsewhere the limit is wall time.
func threadClock() func() time.Duration { return nil }
