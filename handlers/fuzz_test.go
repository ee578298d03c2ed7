package handlers

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"unifi/models"
)

// The form and query parsers take whatever a browser, a script or an
// attacker sends. Seeds live in testdata/fuzz; `make fuzz` explores further
// for a bounded time.

func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/", "/integrations/1", "//evil.example", "/\\evil", "https://evil.example", "javascript:alert(1)",
		"/a\r\nLocation: x", "", "/\t/evil.example/x", "\t//evil.example", "/%2F/evil.example", "/x?next=//evil#//a"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example/login")
	f.Fuzz(func(t *testing.T, next string) {
		out := safeNext(next)
		// The result is always a same-origin path: it starts with one "/", holds
		// no control character or backslash a browser would drop or turn into
		// "/", and resolved against our own page it stays on our own origin.
		if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") || !utf8.ValidString(out) ||
			strings.IndexFunc(out, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) >= 0 {
			t.Fatalf("safeNext(%q) = %q is not a plain local path", next, out)
		}
		u, err := url.Parse(out)
		if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
			t.Fatalf("safeNext(%q) = %q parses as %#v (%v)", next, out, u, err)
		}
		if r := base.ResolveReference(u); r.Scheme != base.Scheme || r.Host != base.Host {
			t.Fatalf("safeNext(%q) = %q leaves the site: %s", next, out, r)
		}
		if out != "/" && out != next {
			t.Fatalf("safeNext(%q) = %q changed a local path", next, out)
		}
	})
}

func FuzzTransactionFilter(f *testing.F) {
	for _, s := range []string{"", "state=8&state=7&integration=1", "q=%00&from=2026-01-01&to=2026-13-45T25:61",
		"integration=99999999999999999999&bond=-1&ticket=1e3", "process=Rejected&direction=Inbound&payload=1&ref=INC%27--",
		"state=Complete&state=5&state=%ff", "from=2026-01-01T10:00&q=<script>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, _ := url.ParseQuery(raw)
		fl, clean := parseTransactionFilter(q)
		for _, id := range []int64{fl.IntegrationID, fl.MessageID, fl.BondID, fl.TicketID} {
			if id < 0 {
				t.Fatalf("negative id from %q", raw)
			}
		}
		// The cleaned query is what links carry: parsing it again changes nothing.
		fl2, clean2 := parseTransactionFilter(clean)
		if clean2.Encode() != clean.Encode() || len(fl2.States) != len(fl.States) {
			t.Fatalf("not stable: %q -> %q -> %q", raw, clean.Encode(), clean2.Encode())
		}
	})
}

func FuzzTicketForm(f *testing.F) {
	for _, s := range []string{"short_description=x&priority=3&urgency=2&impact=2&state=New",
		"priority=99999999999999999999&urgency=-1&impact=abc", "short_description=%00%ff&version=1e9",
		"priority=&urgency=&impact=&version=", "short_description=" + strings.Repeat("a", 200)} {
		f.Add(s)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body string) {
		req := httptest.NewRequest(http.MethodPost, "/tickets", strings.NewReader(body))
		req.Header.Set(echo.HeaderContentType, echo.MIMEApplicationForm)
		c := e.NewContext(req, httptest.NewRecorder())
		_, in, bad := ticketForm(c, nil)
		check := func(field string, n, lo, hi int) {
			if _, refused := bad[field]; !refused && (n < lo || n > hi) {
				t.Fatalf("%s = %d accepted from %q", field, n, body)
			}
		}
		check("priority", in.Priority, 1, 5)
		check("urgency", in.Urgency, 1, 3)
		check("impact", in.Impact, 1, 3)
	})
}

func FuzzParseIDs(f *testing.F) {
	for _, s := range []string{"1,2,3", "1,1,1", "-1,0,abc", "99999999999999999999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		seen := map[int64]bool{}
		for _, id := range parseIDs(strings.Split(raw, ",")) {
			if id <= 0 || seen[id] {
				t.Fatalf("parseIDs(%q) gave %d", raw, id)
			}
			seen[id] = true
		}
	})
}

// FuzzTextProblem: whatever the boundary lets through, PostgreSQL can store.
func FuzzTextProblem(f *testing.F) {
	for _, s := range []string{"ok", "a\x00b", "\xff", "caf\xc3\x28", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if models.TextProblem(s) == "" && (strings.ContainsRune(s, 0) || !utf8.ValidString(s)) {
			t.Fatalf("TextProblem(%q) let it through", s)
		}
	})
}
