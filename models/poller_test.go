package models

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 5, 10, 7, 30, 0, time.UTC)
	tests := []struct {
		name  string
		every *int
		cron  string
		next  time.Time // zero: refused
	}{
		{"Every", new(30), "", at.Add(30 * time.Second)},
		{"EveryTooShort", new(0), "", time.Time{}},
		{"EveryTooLong", new(86401), "", time.Time{}},
		{"CronEveryFive", nil, "*/5 * * * *", time.Date(2026, 12, 5, 10, 10, 0, 0, time.UTC)},
		{"CronDescriptor", nil, "@hourly", time.Date(2026, 12, 5, 11, 0, 0, 0, time.UTC)},
		{"CronEvery", nil, "@every 45s", at.Add(45 * time.Second)},
		{"CronBad", nil, "every minute", time.Time{}},
		{"CronSixFields", nil, "0 */5 * * * *", time.Time{}},
		{"Both", new(10), "@hourly", time.Time{}},
		{"Neither", nil, "", time.Time{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseSchedule(tc.every, tc.cron)
			if tc.next.IsZero() {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.next, s.Next(at))
		})
	}
}

func TestPollBackoff(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		failures  int
		scheduled time.Duration
		want      time.Duration
	}{
		{"First", 1, time.Second, 10 * time.Second},
		{"Second", 2, time.Second, 20 * time.Second},
		{"Fifth", 5, time.Second, 160 * time.Second},
		{"Capped", 30, time.Second, time.Hour},
		{"NeverSoonerThanSchedule", 1, 5 * time.Minute, 5 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, PollBackoff(tc.failures, tc.scheduled))
		})
	}
}
