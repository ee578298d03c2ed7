// Package static holds the CSS, JavaScript and images served under /static,
// embedded in the binary. Third-party files live in vendor/ (see package.json).
package static

import "embed"

// FS holds every static asset.
//
//go:embed *.css *.js vendor
var FS embed.FS
