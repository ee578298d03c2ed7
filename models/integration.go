package models

import "time"

// Process is a kind of ticket being integrated (v1: Incident).
type Process struct {
	ID             int64
	Name           string
	TicketTable    string
	ReferenceField string
	NumberPrefix   string
	CreatedAt      time.Time
}

// Integration is one remote system for one Process.
type Integration struct {
	ID            int64
	Name          string
	Description   string
	ProcessID     int64
	State         IntegrationState
	Status        IntegrationStatus
	SyncTimeoutS  int `gorm:"column:sync_timeout_s"`
	AsyncTimeoutS int `gorm:"column:async_timeout_s"`
	RetryLimit    int
	RetryDelayS   int `gorm:"column:retry_delay_s"`
	AttachLogs    bool
	HeartbeatS    int `gorm:"column:heartbeat_s"`
	PausedAt      *time.Time
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// SyncTimeout is how long one send may take.
func (i *Integration) SyncTimeout() time.Duration { return time.Duration(i.SyncTimeoutS) * time.Second }

// AsyncTimeout is how long to wait for an asynchronous receipt.
func (i *Integration) AsyncTimeout() time.Duration {
	return time.Duration(i.AsyncTimeoutS) * time.Second
}

// RetryDelay is the base delay between attempts.
func (i *Integration) RetryDelay() time.Duration { return time.Duration(i.RetryDelayS) * time.Second }

// AuthType is how we authenticate outbound requests.
type AuthType string

// Outbound authentication kinds.
const (
	AuthNone   AuthType = "none"
	AuthBasic  AuthType = "basic"
	AuthBearer AuthType = "bearer"
	AuthOAuth2 AuthType = "oauth2"
)

// Connection is the environment details of an Integration; exactly one is active.
type Connection struct {
	ID            int64
	IntegrationID int64
	Name          string
	Environment   string
	EndpointURL   string
	AuthType      AuthType
	AuthUsername  string
	AuthSecret    string `json:"-"`
	OAuthTokenURL string `gorm:"column:oauth_token_url"`
	OAuthClientID string `gorm:"column:oauth_client_id"`
	OAuthScopes   string `gorm:"column:oauth_scopes"`
	InboundUserID *int64
	Active        bool
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Environments a connection may describe.
var Environments = []string{"Production", "Pre-Production", "Test", "Development", "Sandbox"}

// MessageType is what a message does.
type MessageType string

// Message types.
const (
	MessageCreate    MessageType = "Create"
	MessageUpdate    MessageType = "Update"
	MessageReceipt   MessageType = "Receipt"
	MessageResponse  MessageType = "Response"
	MessageHeartbeat MessageType = "Heartbeat"
)

// Trigger is which ticket change sends an outbound message.
type Trigger string

// Triggers.
const (
	TriggerNone    Trigger = "none"
	TriggerCreate  Trigger = "create"
	TriggerUpdate  Trigger = "update"
	TriggerResolve Trigger = "resolve"
)

// Ownership is a message's bond ownership rule.
type Ownership string

// Ownership rules.
const (
	OwnershipIgnore     Ownership = "ignore"
	OwnershipMustOwn    Ownership = "must_own"
	OwnershipMustNotOwn Ownership = "must_not_own"
)

// Message is one kind of message an integration sends or receives.
type Message struct {
	ID                int64
	IntegrationID     int64
	Name              string
	Type              MessageType
	Direction         Direction
	Async             bool
	ReceiptMessageID  *int64
	Path              string
	Trigger           Trigger
	BondOwnership     Ownership
	AllowedBondStates JSON[[]BondState]
	SetBondState      *BondState
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Sends reports whether the message can travel outbound.
func (m *Message) Sends() bool { return m.Direction == Outbound || m.Direction == Bidirectional }

// Receives reports whether the message can arrive inbound.
func (m *Message) Receives() bool { return m.Direction == Inbound || m.Direction == Bidirectional }

// Field maps a ticket field to a payload property, with an optional value map
// from ticket values to payload values.
type Field struct {
	ID          int64
	MessageID   int64
	TicketField string
	Property    string
	ValueMap    JSON[map[string]string]
	Required    bool
	Position    int
}

// ResponseAction says what to do with an HTTP status from the remote system.
type ResponseAction struct {
	ID                   int64
	IntegrationID        *int64
	MessageID            *int64
	StatusCode           int
	Retry                bool
	SetIntegrationStatus *IntegrationStatus
	Description          string
	CreatedAt            time.Time
}

// MessageScript is one script of a message at one point (docs/scripting.md).
// Point is one of script.Points; Version goes up with every save.
type MessageScript struct {
	ID        int64
	MessageID int64
	Point     string
	Source    string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConnectionVariable is a value scripts read as vars.Name when the
// connection is the integration's active one.
type ConnectionVariable struct {
	ID           int64
	ConnectionID int64
	Name         string
	Value        string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}
