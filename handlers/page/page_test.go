package page_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"unifi/handlers/page"
)

// TestRenderContentLength: a rendered page goes out with its length, not
// chunked, and the client reads all of it.
func TestRenderContentLength(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("<p>row</p>", 5000) // larger than net/http's buffers
	e := echo.New()
	e.GET("/", func(c echo.Context) error {
		return page.Render(c, http.StatusOK, templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
			_, err := io.WriteString(w, body)
			return err
		}))
	})
	srv := httptest.NewServer(e)
	defer srv.Close()
	res, err := http.Get(srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	got, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, body, string(got))
	require.EqualValues(t, len(body), res.ContentLength)
	require.Empty(t, res.TransferEncoding)
}
