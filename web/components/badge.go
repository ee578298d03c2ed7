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
		for _, s := range [...]string{`<span class="badge s-`, templ.EscapeString(strings.ReplaceAll(label, " ", "-")),
			`" data-testid="`, templ.EscapeString(testid), `">`, templ.EscapeString(label), `</span>`} {
			if _, err := io.WriteString(w, s); err != nil {
				return err
			}
		}
		return nil
	})
}
