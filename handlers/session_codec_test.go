package handlers

import (
	"testing"

	"github.com/gorilla/securecookie"
	"github.com/stretchr/testify/require"

	"unifi/web/layout"
)

func TestSessionSerializer(t *testing.T) {
	t.Parallel()
	values := map[any]any{keyUserID: int64(7), keyEpoch: 3, "csrf": "token",
		"_flash": []any{layout.Flash{Kind: layout.FlashInfo, Text: "Saved."}}}
	key := make([]byte, 32)
	plain := securecookie.New(key, nil)
	cached := securecookie.New(key, nil).SetSerializer(newSessionSerializer())
	cookie, err := plain.Encode(sessionName, values)
	require.NoError(t, err)

	t.Run("Success", func(t *testing.T) {
		t.Parallel()
		for range 2 { // decoded, then remembered
			got := map[any]any{}
			require.NoError(t, cached.Decode(sessionName, cookie, &got))
			require.Equal(t, values, got)
			got["_flash"].([]any)[0] = layout.Flash{Text: "changed by the request"} // a request's own copy
		}
	})

	t.Run("Forged", func(t *testing.T) {
		t.Parallel()
		forged, err := securecookie.New([]byte("another key of thirty-two bytes!"), nil).Encode(sessionName, values)
		require.NoError(t, err)
		got := map[any]any{}
		require.Error(t, cached.Decode(sessionName, forged, &got))
		require.Empty(t, got)
	})

	t.Run("WrittenByIt", func(t *testing.T) {
		t.Parallel()
		own, err := cached.Encode(sessionName, values)
		require.NoError(t, err)
		got := map[any]any{}
		require.NoError(t, plain.Decode(sessionName, own, &got), "still gob: cookies survive a server without it")
		require.Equal(t, values, got)
	})
}
