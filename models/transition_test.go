package models

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNext checks every (state, event) pair against the rules of docs/domain.md,
// written out here a second time as the list of allowed moves.
func TestNext(t *testing.T) {
	t.Parallel()
	allowed := map[string]TransportState{
		"Queued/release":                     Sending,
		"Queued/ignore":                      Ignored,
		"Queued/replay":                      Ignored,
		"Sending/retry":                      Sending,
		"Sending/delivered":                  Complete,
		"Sending/delivered async":            AwaitingReceipt,
		"Sending/fail":                       Error,
		"Sending/ignore":                     Ignored,
		"Awaiting Receipt/receipt arrived":   ReceivedReceipt,
		"Awaiting Receipt/receipt overdue":   TimedOut,
		"Awaiting Receipt/ignore":            Ignored,
		"Awaiting Receipt/replay":            Ignored,
		"Received Receipt/receipt processed": Complete,
		"Received Receipt/ignore":            Ignored,
		"Received Receipt/replay":            Ignored,
		"Received/processed":                 Complete,
		"Received/processed, wants receipt":  SendingReceipt,
		"Received/fail":                      Error,
		"Received/ignore":                    Ignored,
		"Received/replay":                    Ignored,
		"Sending Receipt/retry":              SendingReceipt,
		"Sending Receipt/receipt sent":       Complete,
		"Sending Receipt/fail":               Error,
		"Sending Receipt/ignore":             Ignored,
		"Timed Out/receipt arrived":          ReceivedReceipt,
		"Timed Out/ignore":                   Ignored,
		"Timed Out/replay":                   Ignored,
		"Error/ignore":                       Ignored,
		"Error/replay":                       Ignored,
		"Complete/replay":                    Ignored,
		"Ignored/replay":                     Ignored,
	}
	pairs := 0
	for _, from := range TransportStates {
		for _, ev := range Events {
			name := fmt.Sprintf("%s/%s", from, ev)
			pairs++
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				got, err := Next(from, ev)
				want, ok := allowed[name]
				if ok {
					require.NoError(t, err)
					require.Equal(t, want, got)
					return
				}
				require.Error(t, err)
				require.True(t, errors.Is(err, ErrInvalidTransition))
				require.Equal(t, from, got, "a refused event leaves the state as it was")
				require.Contains(t, err.Error(), from.String())
			})
		}
	}
	require.Equal(t, 10*len(Events), pairs)
	t.Run("UnknownState", func(t *testing.T) {
		t.Parallel()
		_, err := Next(TransportState(42), EventRelease)
		require.ErrorIs(t, err, ErrInvalidTransition)
	})
}

func TestTransportStateLabels(t *testing.T) {
	t.Parallel()
	// Labels and sequence numbers exactly as in docs/domain.md.
	want := []string{"Sending", "Received", "Awaiting Receipt", "Sending Receipt", "Received Receipt", "Complete",
		"Queued", "Timed Out", "Error", "Ignored"}
	for i, label := range want {
		s := TransportState(i)
		require.Equal(t, label, s.String())
		p, err := ParseTransportState(label)
		require.NoError(t, err)
		require.Equal(t, s, p)
		p, err = ParseTransportState(fmt.Sprint(i))
		require.NoError(t, err)
		require.Equal(t, s, p)
	}
	_, err := ParseTransportState("Done")
	require.Error(t, err)
	for i, label := range []string{"Pending", "Accepted", "Rejected"} {
		require.Equal(t, label, ProcessState(i).String())
		p, err := ParseProcessState(label)
		require.NoError(t, err)
		require.Equal(t, ProcessState(i), p)
	}
	for i, label := range []string{"Pending", "Ready", "OK", "Error", "Cancelled"} {
		require.Equal(t, label, HTTPRequestState(i).String())
	}
}

func TestBondStatusOf(t *testing.T) {
	t.Parallel()
	require.Equal(t, BondOK, BondStatusOf(nil))
	tests := []struct {
		head TransportState
		want BondStatus
	}{
		{Sending, BondSending}, {AwaitingReceipt, BondAwaiting}, {ReceivedReceipt, BondAwaiting},
		{Queued, BondQueued}, {TimedOut, BondTimedOut}, {Error, BondError}, {Complete, BondOK},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, BondStatusOf(&tc.head), tc.head.String())
	}
}
