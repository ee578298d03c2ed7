package handlers_test

import (
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"unifi/internal/config"
)

// openAPIDoc is the part of docs/openapi.json the tests read.
type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Responses map[string]struct {
			Content map[string]struct {
				Examples map[string]struct {
					Value json.RawMessage `json:"value"`
				} `json:"examples"`
			} `json:"content"`
		} `json:"responses"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]struct {
			Required   []string                   `json:"required"`
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"schemas"`
	} `json:"components"`
}

type openAPIExample struct {
	status int
	text   string
	value  json.RawMessage
}

var (
	openAPIOnce sync.Once
	openAPI     openAPIDoc
	openAPIErr  error
)

func loadOpenAPI(t testing.TB) openAPIDoc {
	t.Helper()
	openAPIOnce.Do(func() {
		b, err := os.ReadFile("../docs/openapi.json")
		if err == nil {
			err = json.Unmarshal(b, &openAPI)
		}
		openAPIErr = err
	})
	require.NoError(t, openAPIErr, "read docs/openapi.json")
	return openAPI
}

// openAPIExamples returns every documented answer example of the inbound
// endpoint by name, with its status and error text.
func openAPIExamples(t testing.TB) map[string]openAPIExample {
	t.Helper()
	doc := loadOpenAPI(t)
	out := map[string]openAPIExample{}
	for status, r := range doc.Paths["/api/v1/integrations/{name}/messages"]["post"].Responses {
		code, err := strconv.Atoi(status)
		require.NoError(t, err)
		for name, ex := range r.Content["application/json"].Examples {
			var v struct {
				Error string `json:"error"`
			}
			require.NoError(t, json.Unmarshal(ex.Value, &v))
			out[name] = openAPIExample{status: code, text: v.Error, value: ex.Value}
		}
	}
	return out
}

// TestOpenAPI checks docs/openapi.json against the real app: every documented
// route exists, every documented refusal is a case TestInboundRefusals sends
// (which checks its status and text), the 200 answer has the documented
// shape, and the rate limit answers as documented.
func TestOpenAPI(t *testing.T) {
	t.Parallel()
	doc := loadOpenAPI(t)
	require.True(t, strings.HasPrefix(doc.OpenAPI, "3."), "an OpenAPI 3 description")
	b := setupInbound(t)

	t.Run("RoutesExist", func(t *testing.T) {
		t.Parallel()
		routes := map[string]bool{}
		for _, r := range b.srv.Config.Handler.(*echo.Echo).Routes() {
			routes[r.Method+" "+r.Path] = true
		}
		param := regexp.MustCompile(`\{([^}]+)\}`)
		for path, ops := range doc.Paths {
			for method := range ops {
				route := strings.ToUpper(method) + " " + param.ReplaceAllString(path, ":$1")
				require.True(t, routes[route], "documented route %s is not served", route)
			}
		}
	})

	t.Run("EveryRefusalIsTested", func(t *testing.T) {
		t.Parallel()
		cases := map[string]int{}
		for _, c := range inboundRefusalCases() {
			cases[c.name] = c.status
		}
		for name, ex := range openAPIExamples(t) {
			if ex.status == http.StatusOK || name == "RateLimited" {
				continue
			}
			status, ok := cases[name]
			require.True(t, ok, "documented example %s is not sent by TestInboundRefusals", name)
			require.Equal(t, status, ex.status, name)
		}
	})

	t.Run("AcceptedShape", func(t *testing.T) {
		t.Parallel()
		a := b.post(t, envelope("CreateIncident", "OA-1", "EXT-OA", "", time.Now(), createData("openapi")))
		require.Equal(t, http.StatusOK, a.Status, a.Raw)
		var got map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(a.Raw), &got))
		schemas := doc.Components.Schemas
		for k := range got {
			require.Contains(t, schemas["Envelope"].Properties, k, "answer has undocumented property %s", k)
		}
		var head map[string]any
		require.NoError(t, json.Unmarshal(got["message"], &head))
		for k := range head {
			require.Contains(t, schemas["Header"].Properties, k, "header has undocumented property %s", k)
		}
		for _, k := range []string{"name", "time_stamp", "source_reference", "target_reference", "source_id", "target_id"} {
			require.NotEmpty(t, head[k], "the answer's message.%s", k)
		}
		var st map[string]any
		require.NoError(t, json.Unmarshal(got["status"], &st))
		for _, k := range schemas["Status"].Required {
			require.Contains(t, st, k)
		}
	})

	t.Run("RateLimited", func(t *testing.T) {
		t.Parallel()
		rl := setupInboundWith(t, seededDB(t), func(c *config.Config) { c.APIRate = 1 })
		want := openAPIExamples(t)["RateLimited"]
		for i := 0; ; i++ {
			require.Less(t, i, 2000, "the rate limit never answered")
			a := postRaw(t, rl.url, []byte(`{}`), withoutHeader("Authorization"))
			if a.Status == http.StatusTooManyRequests {
				require.Equal(t, want.status, a.Status)
				require.Equal(t, want.text, a.Error)
				require.NotEmpty(t, a.Header.Get("Retry-After"))
				return
			}
		}
	})
}
