package models

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func at(us int) time.Time { return t0.Add(time.Duration(us) * time.Microsecond) }

func TestNextStamp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		prev FieldStamp
		now  time.Time
		want time.Time
	}{
		{"FirstChange", FieldStamp{}, at(5), at(5)},
		{"Later", FieldStamp{At: at(1)}, at(5), at(5)},
		{"ClockBehindPrev", FieldStamp{At: at(9)}, at(5), at(10)},
		{"SameMicrosecond", FieldStamp{At: at(5)}, at(5), at(6)},
		{"TruncatedToMicroseconds", FieldStamp{}, at(5).Add(999 * time.Nanosecond), at(5)},
		{"LocalZoneToUTC", FieldStamp{}, at(5).In(time.FixedZone("X", 3600)), at(5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := NextStamp(tc.prev, tc.now, "ann")
			require.True(t, got.At.Equal(tc.want), "got %s want %s", got.At, tc.want)
			require.Equal(t, time.UTC, got.At.Location())
			require.Equal(t, "ann", got.By)
		})
	}
}

// TestMessageStamp: a bond's message stamps only go up, whatever the
// sender's clock does (docs/domain.md, "The message's time stamp").
func TestMessageStamp(t *testing.T) {
	t.Parallel()
	minute := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	ahead := map[string]WireStamp{"priority": {At: at(40)}, "description": {At: at(20)}}
	tests := []struct {
		name      string
		last, now time.Time
		wire      map[string]WireStamp
		want      time.Time
	}{
		{"FirstOnTheBond", time.Time{}, at(5), nil, at(5)},
		{"ClockMovedOn", at(3), at(5), nil, at(5)},
		// NTP stepped a clock that ran 15 minutes ahead back at a restart:
		// the next message is a microsecond after the last one sent, not
		// 15 minutes before it (which the receiver would not apply).
		{"ClockSteppedBack", minute(15), minute(0), nil, minute(15).Add(time.Microsecond)},
		{"SameMicrosecond", at(5), at(5), nil, at(6)},
		{"NotBeforeAFieldStampItCarries", at(3), at(5), ahead, at(40)},
		{"FieldStampsAndLast", at(50), at(5), ahead, at(51)},
		{"FieldStampBehindNow", time.Time{}, at(60), ahead, at(60)},
		{"TruncatedToMicroseconds", time.Time{}, at(5).Add(999 * time.Nanosecond), nil, at(5)},
		{"LocalZoneToUTC", time.Time{}, at(5).In(time.FixedZone("X", 3600)), nil, at(5)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := MessageStamp(tc.last, tc.now, tc.wire)
			require.True(t, got.Equal(tc.want), "got %s want %s", got, tc.want)
			require.Equal(t, time.UTC, got.Location())
		})
	}
	// A sender whose clock runs 10 minutes ahead, then 15, then is stepped
	// back to the true time: every message of the bond is stamped after the
	// one before it.
	var last time.Time
	for i, now := range []time.Time{minute(10), minute(10).Add(time.Second), minute(15), minute(0), minute(0).Add(time.Second), minute(1)} {
		got := MessageStamp(last, now, nil)
		require.True(t, got.After(last), "message %d stamped %s, not after the one before (%s)", i, got, last)
		last = got
	}
}

func TestDecideField(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		local, incoming FieldStamp
		weOwn           bool
		want            FieldDecision
	}{
		{"IncomingLater", FieldStamp{At: at(1), By: "a"}, FieldStamp{At: at(2), By: "b"}, false, TakeField},
		{"IncomingLaterWeOwn", FieldStamp{At: at(1), By: "a"}, FieldStamp{At: at(2), By: "b"}, true, TakeField},
		{"LocalLater", FieldStamp{At: at(3), By: "a"}, FieldStamp{At: at(2), By: "b"}, false, KeepField},
		{"LocalLaterTheyOwn", FieldStamp{At: at(3), By: "a"}, FieldStamp{At: at(2), By: "b"}, false, KeepField},
		{"TieWeOwn", FieldStamp{At: at(2), By: "a"}, FieldStamp{At: at(2), By: "b"}, true, KeepField},
		{"TieTheyOwn", FieldStamp{At: at(2), By: "a"}, FieldStamp{At: at(2), By: "b"}, false, TakeField},
		{"SameChange", FieldStamp{At: at(2), By: "a"}, FieldStamp{At: at(2), By: "a"}, true, TakeField},
		{"BothUnstamped", FieldStamp{}, FieldStamp{}, true, TakeField},
		{"IncomingUnstamped", FieldStamp{At: at(1)}, FieldStamp{}, false, KeepField},
		{"LocalUnstamped", FieldStamp{}, FieldStamp{At: at(1)}, true, TakeField},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, DecideField(tc.local, tc.incoming, tc.weOwn))
		})
	}
	// Both sides of a bond decide the same: one owns it, the other not.
	for _, tc := range tests {
		if tc.local.Same(tc.incoming) {
			continue
		}
		here := DecideField(tc.local, tc.incoming, tc.weOwn)
		there := DecideField(tc.incoming, tc.local, !tc.weOwn)
		require.NotEqual(t, here, there, "%s: both sides must pick the same change", tc.name)
	}
}

// convergeFields are the demo's Incident fields (a value map on priority).
var convergeFields = []Field{
	{TicketField: "short_description", Property: "short_description"},
	{TicketField: "priority", Property: "priority", ValueMap: JSON[map[string]string]{V: map[string]string{
		"1": "Critical", "2": "High", "3": "Moderate", "4": "Low", "5": "Planning"}}},
	{TicketField: "work_notes", Property: "comments"},
	{TicketField: "custom.risk", Property: "risk"},
	{TicketField: "custom.cost", Property: "cost"},
}

// convergeDefs are the process's own fields convergeFields map: custom
// fields merge like the built-in ones.
var convergeDefs = []ProcessField{{Name: "risk", Label: "Risk", Type: FieldText},
	{Name: "cost", Label: "Cost", Type: FieldNumber}}

func custom(kv ...any) JSON[map[string]any] {
	m := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return JSON[map[string]any]{V: m}
}

func strp(s string) *string { return &s }

func TestMergeInbound(t *testing.T) {
	t.Parallel()
	base := Ticket{ShortDescription: "base", Priority: 3, WorkNotes: "n0", State: "New"}
	stamped := FieldStamps{"short_description": {At: at(10), By: "a"}, "priority": {At: at(10), By: "a"}}
	customStamped := FieldStamps{"custom.risk": {At: at(10), By: "a"}, "custom.cost": {At: at(10), By: "a"}}
	withCustom := func(tk Ticket, c JSON[map[string]any]) Ticket { tk.Custom = c; return tk }
	tests := []struct {
		name      string
		stamps    FieldStamps
		custom    JSON[map[string]any] // the ticket's custom values before the merge
		data      map[string]any
		wire      map[string]WireStamp
		weOwn     bool
		want      Ticket
		conflicts []FieldConflict
		errText   string
	}{
		{name: "LegacySenderAppliedAsItIs", stamps: stamped,
			data: map[string]any{"short_description": "old", "priority": "Critical"}, wire: nil,
			want: Ticket{ShortDescription: "old", Priority: 1, WorkNotes: "n0", State: "New"}},
		{name: "NewerChangeTaken", stamps: stamped,
			data: map[string]any{"short_description": "new", "priority": "Moderate"},
			wire: map[string]WireStamp{"short_description": {At: at(20), By: "b", Was: strp("base")},
				"priority": {At: at(10), By: "a"}},
			want: Ticket{ShortDescription: "new", Priority: 3, WorkNotes: "n0", State: "New"}},
		{name: "OlderChangeLosesAndIsReported", stamps: stamped,
			data: map[string]any{"short_description": "theirs"},
			wire: map[string]WireStamp{"short_description": {At: at(5), By: "b", Was: strp("x")}},
			want: base,
			conflicts: []FieldConflict{{Field: "short_description", Kept: "base", Lost: "theirs",
				KeptStamp: FieldStamp{At: at(10), By: "a"}, LostStamp: FieldStamp{At: at(5), By: "b"}, KeptLocal: true}}},
		{name: "CrossingOursOverwrittenIsReported", stamps: stamped,
			data: map[string]any{"priority": "Critical"},
			wire: map[string]WireStamp{"priority": {At: at(11), By: "b", Was: strp("Planning")}},
			want: Ticket{ShortDescription: "base", Priority: 1, WorkNotes: "n0", State: "New"},
			conflicts: []FieldConflict{{Field: "priority", Kept: "1", Lost: "3",
				KeptStamp: FieldStamp{At: at(11), By: "b"}, LostStamp: FieldStamp{At: at(10), By: "a"}}}},
		{name: "SequentialChangeNotAConflict", stamps: stamped,
			data: map[string]any{"priority": "Critical"},
			wire: map[string]WireStamp{"priority": {At: at(11), By: "b", Was: strp("Moderate")}},
			want: Ticket{ShortDescription: "base", Priority: 1, WorkNotes: "n0", State: "New"}},
		{name: "NewerValueOfAMessageNeverAppliedIsReported", stamps: stamped,
			data: map[string]any{"short_description": "from a rejected message"},
			wire: map[string]WireStamp{"short_description": {At: at(20), By: "b"}},
			want: Ticket{ShortDescription: "from a rejected message", Priority: 3, WorkNotes: "n0", State: "New"},
			conflicts: []FieldConflict{{Field: "short_description", Kept: "from a rejected message", Lost: "base",
				KeptStamp: FieldStamp{At: at(20), By: "b"}, LostStamp: FieldStamp{At: at(10), By: "a"}}}},
		{name: "UnchangedOlderFieldIgnoredQuietly", stamps: stamped,
			data: map[string]any{"short_description": "stale"},
			wire: map[string]WireStamp{"short_description": {At: at(5), By: "b"}},
			want: base},
		{name: "UnstampedFieldOfStampedSenderLoses", stamps: stamped,
			data: map[string]any{"short_description": "stale", "comments": "n1"},
			wire: map[string]WireStamp{"comments": {At: at(12), By: "b", Was: strp("n0")}},
			want: Ticket{ShortDescription: "base", Priority: 3, WorkNotes: "n1", State: "New"}},
		{name: "TieOwnerKeeps", stamps: stamped, weOwn: true,
			data: map[string]any{"priority": "Critical"},
			wire: map[string]WireStamp{"priority": {At: at(10), By: "b", Was: strp("Planning")}},
			want: base,
			conflicts: []FieldConflict{{Field: "priority", Kept: "3", Lost: "1",
				KeptStamp: FieldStamp{At: at(10), By: "a"}, LostStamp: FieldStamp{At: at(10), By: "b"}, KeptLocal: true}}},
		{name: "TieOtherSideTakes", stamps: stamped,
			data: map[string]any{"priority": "Critical"},
			wire: map[string]WireStamp{"priority": {At: at(10), By: "b", Was: strp("Planning")}},
			want: Ticket{ShortDescription: "base", Priority: 1, WorkNotes: "n0", State: "New"},
			conflicts: []FieldConflict{{Field: "priority", Kept: "1", Lost: "3",
				KeptStamp: FieldStamp{At: at(10), By: "b"}, LostStamp: FieldStamp{At: at(10), By: "a"}}}},
		{name: "UnmappedValueRejected", stamps: stamped,
			data:    map[string]any{"priority": "Whenever"},
			wire:    map[string]WireStamp{"priority": {At: at(20)}},
			errText: `value "Whenever" of field "priority" has no mapping`},
		// A process's own fields converge by the same rule.
		{name: "CustomNewerChangeTaken", stamps: customStamped, custom: custom("risk", "low", "cost", 5.0),
			data: map[string]any{"risk": "high", "cost": 6.0},
			wire: map[string]WireStamp{"risk": {At: at(20), By: "b", Was: strp("low")}, "cost": {At: at(20), By: "b", Was: strp("5")}},
			want: withCustom(base, custom("risk", "high", "cost", 6.0))},
		{name: "CustomOlderChangeLosesAndIsReported", stamps: customStamped, custom: custom("risk", "low"),
			data: map[string]any{"risk": "medium"},
			wire: map[string]WireStamp{"risk": {At: at(5), By: "b", Was: strp("none")}},
			want: withCustom(base, custom("risk", "low")),
			conflicts: []FieldConflict{{Field: "custom.risk", Kept: "low", Lost: "medium",
				KeptStamp: FieldStamp{At: at(10), By: "a"}, LostStamp: FieldStamp{At: at(5), By: "b"}, KeptLocal: true}}},
		{name: "CustomCrossingOursOverwrittenIsReported", stamps: customStamped, custom: custom("risk", "low"),
			data: map[string]any{"risk": "high"},
			wire: map[string]WireStamp{"risk": {At: at(11), By: "b", Was: strp("none")}},
			want: withCustom(base, custom("risk", "high")),
			conflicts: []FieldConflict{{Field: "custom.risk", Kept: "high", Lost: "low",
				KeptStamp: FieldStamp{At: at(11), By: "b"}, LostStamp: FieldStamp{At: at(10), By: "a"}}}},
		{name: "CustomTieOwnerKeeps", stamps: customStamped, custom: custom("risk", "low"), weOwn: true,
			data: map[string]any{"risk": "high"},
			wire: map[string]WireStamp{"risk": {At: at(10), By: "b", Was: strp("none")}},
			want: withCustom(base, custom("risk", "low")),
			conflicts: []FieldConflict{{Field: "custom.risk", Kept: "low", Lost: "high",
				KeptStamp: FieldStamp{At: at(10), By: "a"}, LostStamp: FieldStamp{At: at(10), By: "b"}, KeptLocal: true}}},
		{name: "CustomSameNumberNotAConflict", stamps: customStamped, custom: custom("cost", 5.0),
			data: map[string]any{"cost": "5.0"},
			wire: map[string]WireStamp{"cost": {At: at(20), By: "b"}},
			want: withCustom(base, custom("cost", 5.0))},
		{name: "CustomWrongTypeRejected", stamps: customStamped,
			data:    map[string]any{"cost": "lots"},
			wire:    map[string]WireStamp{"cost": {At: at(20)}},
			errText: `Cost must be a number, like 42 or 3.5 (not "lots")`},
		{name: "CustomUnknownFieldRejected", stamps: customStamped,
			data:    map[string]any{"gone": "x"},
			wire:    map[string]WireStamp{"gone": {At: at(20)}},
			errText: `"gone" is not a field of this process`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tk := base
			tk.FieldStamps.V = tc.stamps
			tk.Custom = tc.custom
			fields := convergeFields
			if tc.name == "CustomUnknownFieldRejected" {
				fields = append(fields[:len(fields):len(fields)], Field{TicketField: "custom.gone", Property: "gone"})
			}
			m, err := MergeInbound(&tk, fields, tc.data, tc.wire, tc.weOwn, convergeDefs)
			if tc.errText != "" {
				require.EqualError(t, err, tc.errText)
				return
			}
			require.NoError(t, err)
			require.True(t, SameValues(&tc.want, &m.Ticket), "want %+v\ngot  %+v", tc.want, m.Ticket)
			require.Equal(t, tc.conflicts, m.Conflicts)
			require.True(t, SameValues(&base, &tk) || tc.custom.V != nil, "the ticket given is not changed")
			require.True(t, SameValues(&Ticket{Custom: tc.custom}, &Ticket{Custom: tk.Custom}), "its custom values are not changed")
			require.Equal(t, tc.stamps, tk.FieldStamps.V, "the stamps given are not changed")
			for p, ws := range tc.wire {
				for _, f := range convergeFields {
					if f.Property == p && DecideField(tc.stamps[f.TicketField], FieldStamp{At: ws.At, By: ws.By}, tc.weOwn) == TakeField {
						require.True(t, m.Ticket.FieldStamps.V[f.TicketField].Same(FieldStamp{At: ws.At, By: ws.By}), "stamp of %s", f.TicketField)
					}
				}
			}
		})
	}
}

func TestOutboundStamps(t *testing.T) {
	t.Parallel()
	before := Ticket{ShortDescription: "a", Priority: 3, WorkNotes: "w"}
	after := Ticket{ShortDescription: "a", Priority: 1, WorkNotes: "w"}
	after.FieldStamps.V = FieldStamps{"short_description": {At: at(1), By: "x"}}
	StampChanges(&before, &after, at(7), "ann")
	require.Equal(t, FieldStamps{"short_description": {At: at(1), By: "x"}, "priority": {At: at(7), By: "ann"}}, after.FieldStamps.V)
	got := OutboundStamps(&after, &before, convergeFields)
	require.Equal(t, map[string]WireStamp{"short_description": {At: at(1), By: "x"},
		"priority": {At: at(7), By: "ann", Was: strp("Moderate")}}, got)
	// A create stamps every field and sends no old values.
	created := Ticket{ShortDescription: "c"}
	StampChanges(nil, &created, at(3), "ann")
	require.Len(t, created.FieldStamps.V, len(TicketFields))
	for _, ws := range OutboundStamps(&created, nil, convergeFields) {
		require.Nil(t, ws.Was)
	}
	// On the wire: {"at": ..., "by": ..., "was": ...}, "was" left out when not changed.
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.JSONEq(t, `{"short_description":{"at":"2026-12-05T10:00:00.000001Z","by":"x"},
		"priority":{"at":"2026-12-05T10:00:00.000007Z","by":"ann","was":"Moderate"}}`, string(b))
}

// simSide is one instance in TestConvergeSimulated: a ticket, its stamps,
// its clock (skewed) and the messages it sent that the other has not had.
type simSide struct {
	name   string
	owner  bool
	t      Ticket
	skew   time.Duration
	outbox []simMsg
	lost   map[string]bool // values reported as overwritten here
}

type simMsg struct {
	data  map[string]any
	stamp map[string]WireStamp
}

// TestConvergeSimulated runs two sides in memory: random edits of the same
// fields on both, messages delivered in order per direction but interleaved
// at random with the edits, clocks skewed. After every message is delivered
// both sides hold the same values and stamps, and every value an edit wrote
// is either the final one, overwritten by an edit made on top of it, or
// reported as lost on a side.
func TestConvergeSimulated(t *testing.T) {
	t.Parallel()
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(uint64(seed), 7))
	for trial := range 200 {
		a := &simSide{name: "A", owner: true, t: Ticket{ShortDescription: "s", Priority: 3, WorkNotes: "w"},
			skew: time.Duration(r.IntN(2000)-1000) * time.Microsecond, lost: map[string]bool{}}
		b := &simSide{name: "B", t: a.t, skew: time.Duration(r.IntN(2000)-1000) * time.Microsecond,
			lost: map[string]bool{}}
		clock := t0
		written := map[string]bool{}     // every text value an edit wrote
		overwritten := map[string]bool{} // values an edit replaced on the side that held them
		deliver := func(from, to *simSide) {
			m := from.outbox[0]
			from.outbox = from.outbox[1:]
			merged, err := MergeInbound(&to.t, convergeFields, m.data, m.stamp, to.owner, convergeDefs)
			require.NoError(t, err)
			to.t = merged.Ticket
			for _, c := range merged.Conflicts {
				to.lost[c.Lost] = true
			}
		}
		steps := 5 + r.IntN(30)
		for i := range steps {
			clock = clock.Add(time.Duration(r.IntN(1500)) * time.Microsecond)
			side, other := a, b
			if r.IntN(2) == 1 {
				side, other = b, a
			}
			switch r.IntN(3) {
			case 0, 1: // an edit
				before := side.t
				switch r.IntN(4) {
				case 3: // a process's own field, on a copy of the map before shares
					risk := fmt.Sprintf("%s%d-%d", side.name, trial, i)
					overwritten[CustomText(before.Custom.V["risk"])] = true
					written[risk] = true
					side.t.Custom = custom("risk", risk)
				case 0:
					side.t.ShortDescription = fmt.Sprintf("%s%d-%d", side.name, trial, i)
					overwritten[before.ShortDescription] = true
					written[side.t.ShortDescription] = true
				case 1:
					side.t.WorkNotes = fmt.Sprintf("%s%d-%d", side.name, trial, i)
					overwritten[before.WorkNotes] = true
					written[side.t.WorkNotes] = true
				default:
					side.t.Priority = 1 + r.IntN(5)
				}
				StampChanges(&before, &side.t, clock.Add(side.skew), side.name)
				data, err := MapOutbound(&side.t, convergeFields)
				if err != nil {
					t.Fatal(err)
				}
				side.outbox = append(side.outbox, simMsg{data: data,
					stamp: OutboundStamps(&side.t, &before, convergeFields)})
			default: // a delivery
				if len(side.outbox) > 0 {
					deliver(side, other)
				}
			}
		}
		for len(a.outbox)+len(b.outbox) > 0 {
			if len(a.outbox) > 0 && (len(b.outbox) == 0 || r.IntN(2) == 0) {
				deliver(a, b)
			} else {
				deliver(b, a)
			}
		}
		require.True(t, SameValues(&a.t, &b.t), "trial %d: the sides differ:\n%+v\n%+v", trial, a.t, b.t)
		require.Equal(t, len(a.t.FieldStamps.V), len(b.t.FieldStamps.V), "trial %d", trial)
		for f, s := range a.t.FieldStamps.V {
			require.True(t, s.Same(b.t.FieldStamps.V[f]), "trial %d: stamps of %s differ", trial, f)
		}
		for v := range written {
			final := v == a.t.ShortDescription || v == a.t.WorkNotes || v == CustomText(a.t.Custom.V["risk"])
			require.True(t, final || overwritten[v] || a.lost[v] || b.lost[v],
				"trial %d: the change to %q was lost without a report", trial, v)
		}
	}
}
