package worker_test

import (
	"testing"

	"unifi/worker"
)

// Beside any count of chained work a worker may hold (at most its batch less
// a fifth), it claims between a fifth of a batch and what is left, and asks
// for few distinct limits (each is a prepared statement): five from a batch
// of 25 on, never more than nine.
func TestClaimLimit(t *testing.T) {
	for _, tc := range []struct{ batch, chained, want int }{
		{200, 0, 200}, {200, 1, 160}, {200, 40, 160}, {200, 41, 120}, {200, 160, 40},
		{1, 0, 1}, {4, 3, 1}, {7, 2, 5}, {10, 7, 2},
	} {
		if got := worker.ClaimLimit(tc.batch, tc.chained); got != tc.want {
			t.Errorf("ClaimLimit(%d, %d) = %d, want %d", tc.batch, tc.chained, got, tc.want)
		}
	}
	for batch := 1; batch <= 1000; batch++ {
		step := max(batch/5, 1)
		limits := map[int]bool{}
		for chained := 0; chained <= batch-step; chained++ {
			n := worker.ClaimLimit(batch, chained)
			if n < step || n > batch-chained {
				t.Fatalf("ClaimLimit(%d, %d) = %d, want between %d and %d", batch, chained, n, step, batch-chained)
			}
			limits[n] = true
		}
		if want := map[bool]int{true: 5, false: 9}[batch >= 25]; len(limits) > want {
			t.Fatalf("batch %d asks %d distinct limits, want at most %d", batch, len(limits), want)
		}
	}
}
