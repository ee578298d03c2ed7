package models

import (
	"net/http"
	"strings"
)

// secretHeaders are never stored as they were sent.
var secretHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}

// RedactHeaders flattens HTTP headers for storage in an HTTP Request record,
// with every credential replaced by "[redacted]" (the Authorization scheme
// kept, so a reader sees which kind was sent).
func RedactHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		lk := strings.ToLower(k)
		secret := strings.Contains(lk, "token") || strings.Contains(lk, "secret") || strings.Contains(lk, "password")
		for _, s := range secretHeaders {
			secret = secret || lk == s
		}
		if secret {
			scheme := ""
			if lk == "authorization" && len(v) > 0 {
				if i := strings.IndexByte(v[0], ' '); i > 0 {
					scheme = v[0][:i] + " "
				}
			}
			out[k] = scheme + "[redacted]"
			continue
		}
		out[k] = strings.Join(v, ", ")
	}
	return out
}
