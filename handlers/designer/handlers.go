// Package designer is the Integration Designer's pages (docs/designer.md):
// integrations, connections, messages with their fields and response
// actions, pollers and poll processors, processes, message scripts, and
// integration packages. handlers/routes.go registers every route and its
// role gate; what these pages share with the others is in handlers/page.
package designer

import (
	"context"
	"strconv"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/models"
	"unifi/models/configpkg"
	"unifi/models/designer"
	"unifi/models/store"
)

// Handlers holds what the Designer's pages need.
type Handlers struct {
	Store      *store.Store
	Designer   *designer.Designer    // the configuration layer
	Packages   *configpkg.Service    // integration packages and templates (docs/packages.md)
	BaseURL    string                // this server's address, shown in an integration's documentation
	NotifyFunc func(context.Context) // wakes the transport engine after a change that may release work; never nil
}

// canConfigure reports whether the current user may change configuration
// (admin); a manager sees the same pages without edit controls.
func canConfigure(c echo.Context) bool {
	return models.RoleMay(page.CurrentUser(c).Role, models.ActionConfigure) == nil
}

// formVersion reads the version an edit was based on.
func formVersion(c echo.Context) (int, error) {
	v, err := strconv.ParseInt(c.FormValue("version"), 10, 32)
	if err != nil || v < 1 {
		return 0, &models.ValidationError{Fields: map[string]string{"version": "The form does not say which version of the record it edits; open the record again and make the change there."}}
	}
	return int(v), nil
}

// pathIDVersion reads the record's id from the path and the version the
// edit was based on from the form.
func pathIDVersion(c echo.Context) (int64, int, error) {
	id, err := page.PathID(c, "id")
	if err != nil {
		return 0, 0, err
	}
	version, err := formVersion(c)
	return id, version, err
}
