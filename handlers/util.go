package handlers

import (
	"net/url"
	"sort"
	"strconv"

	"github.com/labstack/echo/v4"
)

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// olderPageURL is the link to the next (older) page of a keyset list at
// path: the request's query with before set to the last row's id.
func olderPageURL(c echo.Context, path string, beforeID int64) string {
	q := url.Values{}
	for k, vals := range c.QueryParams() {
		q[k] = vals
	}
	q.Set("before", strconv.FormatInt(beforeID, 10))
	return path + "?" + q.Encode()
}
