package script

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadClock returns a reader of the calling OS thread's CPU time, usable
// from another thread (the watcher). The caller must hold the thread
// (runtime.LockOSThread) for as long as it reads. Linux encodes a thread's
// CPU clock id from its tid (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)).
func threadClock() func() time.Duration {
	tid := unix.Gettid()
	id := int32(^uint32(tid)<<3) | 4 /* per thread */ | 2 /* sched */
	read := func() time.Duration {
		var ts unix.Timespec
		if unix.ClockGettime(id, &ts) != nil {
			return -1
		}
		return time.Duration(ts.Nano())
	}
	if read() < 0 {
		return nil
	}
	return read
}
