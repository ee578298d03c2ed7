package handlerstest

import (
	"fmt"
	"net/url"

	"unifi/models"
)

// DemoUser is one of the demo's users that log in to the UI.
type DemoUser struct {
	Role           models.Role
	Name, Password string
}

// DemoUsers are the demo's UI users, one per role that may log in.
var DemoUsers = []DemoUser{
	{models.RoleAdmin, "admin", "admin-demo-1"},
	{models.RoleManager, "manager", "manager-demo-1"},
	{models.RoleAnalyst, "analyst", "analyst-demo-1"},
}

// IntegrationForm is a valid form of the Designer's integration page.
func IntegrationForm(name string, processID int64) url.Values {
	return url.Values{"name": {name}, "description": {"made in the Designer"}, "process_id": {fmt.Sprint(processID)},
		"sync_timeout_s": {"20"}, "async_timeout_s": {"120"}, "retry_limit": {"2"}, "retry_delay_s": {"1"},
		"attach_logs": {"true"}, "heartbeat_s": {"0"}}
}
