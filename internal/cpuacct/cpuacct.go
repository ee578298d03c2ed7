// Package cpuacct measures CPU time spent by this process, a child process
// and a database's PostgreSQL backends (read from /proc: the cluster runs on
// this machine). The benchmarks report CPU per operation with it, a figure
// that holds whatever else the machine is doing, unlike wall-clock rates.
package cpuacct

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gorm.io/gorm"
)

// Self is this process's user+system CPU time.
func Self() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Process is the user+system CPU time of process pid, or 0 when /proc cannot
// tell.
func Process(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	const tick = 100.0 // USER_HZ on Linux
	return time.Duration((ut + st) / tick * float64(time.Second))
}

// Snapshot is the CPU time of each backend connected to one database.
type Snapshot map[int]time.Duration

// Backends reads the CPU time of every backend connected to db's database.
// Backends that connect later count from zero in Since; backends that
// disconnect in between are lost, so keep the pools open across a
// measurement.
func Backends(ctx context.Context, db *gorm.DB) Snapshot {
	var pids []int
	if err := db.WithContext(ctx).Raw("SELECT pid FROM pg_stat_activity WHERE datname = current_database()").
		Scan(&pids).Error; err != nil {
		return nil
	}
	out := Snapshot{}
	for _, pid := range pids {
		out[pid] = Process(pid)
	}
	return out
}

// Since is the CPU the backends in s spent after before.
func (s Snapshot) Since(before Snapshot) time.Duration {
	var d time.Duration
	for pid, a := range s {
		d += a - before[pid]
	}
	return d
}
