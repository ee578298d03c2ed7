package script_test

import (
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models/script"
)

// findBond answers from the caller's lookup, throws where no lookup is given
// (outbound and poll scripts), is bounded per run, and a failing lookup
// (the database) comes back as that error, not as a script error.
func TestFindBond(t *testing.T) {
	t.Parallel()
	bonds := map[string]map[string]any{"SIM-1": {"internal_reference": "INC0000001", "external_reference": "SIM-1", "state": "Open"}}
	lookup := func(ref string) (map[string]any, error) {
		if ref == "BROKEN" {
			return nil, errors.New("connection reset")
		}
		return bonds[ref], nil
	}
	var ids atomic.Int64 // a program is compiled once per id and version
	identify := func(body string) script.Script {
		return script.Script{ID: 100 + ids.Add(1), Version: 1, Name: "CreateIncident / Identify message", Point: script.Identify, Source: body}
	}
	e := newEngine()

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		v, _, err := e.String(identify(`const b = findBond(request.body.key);
			return b === null ? "CreateIncident" : "UpdateIncident " + b.internal_reference + " " + b.state;`),
			script.Input{Request: map[string]any{"body": map[string]any{"key": "SIM-1"}}, FindBond: lookup})
		require.NoError(t, err)
		require.Equal(t, "UpdateIncident INC0000001 Open", v)
		v, _, err = e.String(identify(`return findBond(request.body.key) === null ? "CreateIncident" : "UpdateIncident";`),
			script.Input{Request: map[string]any{"body": map[string]any{"key": "SIM-2"}}, FindBond: lookup})
		require.NoError(t, err)
		require.Equal(t, "CreateIncident", v)
	})

	t.Run("NotAnInboundScript", func(t *testing.T) {
		t.Parallel()
		_, err := e.Run(src("CreateIncident / Stage to Request", `return findBond("SIM-1");`), script.Input{})
		se := script.AsError(err)
		require.NotNil(t, se, "%v", err)
		require.Equal(t, script.KindException, se.Kind)
		require.Contains(t, se.Message, "only available to inbound scripts")
	})

	t.Run("WrongArgument", func(t *testing.T) {
		t.Parallel()
		_, err := e.Run(identify(`return findBond(42);`), script.Input{FindBond: lookup})
		require.NotNil(t, script.AsError(err), "%v", err)
		require.Contains(t, err.Error(), "as a string")
	})

	t.Run("Bounded", func(t *testing.T) {
		t.Parallel()
		_, err := e.Run(identify(`for (let i = 0; i < 1000; i++) { findBond("SIM-" + i); }`), script.Input{FindBond: lookup})
		require.NotNil(t, script.AsError(err), "%v", err)
		require.Contains(t, err.Error(), "more than 10 times")
	})

	t.Run("LookupFails", func(t *testing.T) {
		t.Parallel()
		// Even a script that catches the exception fails with the lookup's error.
		_, err := e.Run(identify(`try { findBond("BROKEN"); } catch (e) {} return "CreateIncident";`),
			script.Input{FindBond: lookup})
		require.Error(t, err)
		require.Nil(t, script.AsError(err), "a database failure is not the script's error: %v", err)
		require.ErrorContains(t, err, "connection reset")
		// The engine goes on answering after it.
		v, _, err := e.String(identify(`return findBond("SIM-1").state;`), script.Input{FindBond: lookup})
		require.NoError(t, err)
		require.Equal(t, "Open", v)
	})
}
