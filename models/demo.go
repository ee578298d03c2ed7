package models

// DemoLogin is a user the demo creates, with the password printed at start.
type DemoLogin struct {
	Name, Password string
	Role           Role
}

// DemoLogins are the demo's people and the peer's API account.
var DemoLogins = []DemoLogin{
	{"admin", "admin-demo-1", RoleAdmin},
	{"manager", "manager-demo-1", RoleManager},
	{"analyst", "analyst-demo-1", RoleAnalyst},
}

// DemoPeerAccount is the integration account the demo peer calls us with.
var DemoPeerAccount = DemoLogin{"demo-peer", "demo-peer-password", RoleIntegration}

// DemoPeerToken is that account's bearer token.
const DemoPeerToken = "demo-peer-token-0123456789"

// DemoIntegrationName names the demo integration.
const DemoIntegrationName = "demo"
