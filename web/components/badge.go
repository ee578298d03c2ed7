package components

import (
	"context"
	"io"
	"strings"

	"github.com/a-h/templ"
)

// StateBadge shows a state label coloured by what it means:
// <span class="badge s-Timed-Out" data-testid="…">Timed Out</span>.
//
// It is written in Go rather than templ: a list page renders a hundred of
// them, and a templ class={ … } attribute goes through templ's class-list
// machinery (a map and a builder per badge), which was most of the badge's
// cost.
func StateBadge(label string, testid string) templ.Component {
	return templ.ComponentFunc(func(_ context.Context, w io.Writer) error {
		_, err := w.Write(appendBadge(make([]byte, 0, 96), label, testid))
		return err
	})
}

// appendBadge appends StateBadge's markup.
func appendBadge(b []byte, label, testid string) []byte {
	b = append(b, `<span class="badge s-`...)
	b = appendEscaped(b, strings.ReplaceAll(label, " ", "-"))
	b = append(b, `" data-testid="`...)
	b = appendEscaped(b, testid)
	b = append(b, `">`...)
	b = appendEscaped(b, label)
	return append(b, `</span>`...)
}
