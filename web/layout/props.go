// Package layout is the page shell every page renders inside: navigation, the
// current user and role, flash messages and the CSRF token for forms.
package layout

import "unifi/models"

// FlashKind is the colour of a flash message.
type FlashKind string

// Flash kinds.
const (
	FlashInfo    FlashKind = "info"
	FlashSuccess FlashKind = "success"
	FlashError   FlashKind = "error"
)

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind FlashKind
	Text string
}

// PageProps is what the shell needs from every page.
type PageProps struct {
	Title   string
	Nav     string // the active navigation entry
	User    *models.User
	CSRF    string
	Flashes []Flash
}

// Can reports whether the current user's role may take action at all.
func (p PageProps) Can(action models.Action) bool {
	return p.User != nil && models.RoleMay(p.User.Role, action) == nil
}

// NavItem is one entry of the top navigation.
type NavItem struct {
	Key, Label, Href string
	Action           models.Action
}

// NavItems is the navigation, in order; each entry shows only for roles that may use it.
var NavItems = []NavItem{
	{"operations", "Operations", "/", models.ActionView},
	{"integrations", "Integrations", "/integrations", models.ActionView},
	{"transactions", "Transactions", "/transactions", models.ActionView},
	{"bonds", "Bonds", "/bonds", models.ActionView},
	{"tickets", "Tickets", "/tickets", models.ActionView},
	{"conflicts", "Conflicts", "/conflicts", models.ActionView},
	{"processes", "Processes", "/processes", models.ActionViewConfig},
	{"activity", "Activity", "/activity", models.ActionViewActivity},
	{"users", "Users", "/users", models.ActionManageUsers},
}
