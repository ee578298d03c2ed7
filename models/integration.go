package models

import "time"

// Process is a kind of ticket being integrated (v1: Incident).
type Process struct {
	ID             int64
	Name           string
	TicketTable    string
	ReferenceField string
	NumberPrefix   string
	Version        int `gorm:"default:1"` // the Designer's edit version (models/designer)
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
	Version       int `gorm:"default:1"` // the Designer's edit version (models/designer)
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
	AuthSecret    string `json:"-" secret:"true"` // sealed at rest; audited as "changed", never its value
	OAuthTokenURL string `gorm:"column:oauth_token_url"`
	OAuthClientID string `gorm:"column:oauth_client_id"`
	OAuthScopes   string `gorm:"column:oauth_scopes"`
	InboundUserID *int64
	Active        bool
	Version       int `gorm:"default:1"` // the Designer's edit version (models/designer)
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
	// TriggerFields sends the message when any of its TriggerFields changes
	// on an update (models.Fires).
	TriggerFields Trigger = "fields"
)

// Triggers lists every trigger, in the order the Designer offers them.
var Triggers = []Trigger{TriggerNone, TriggerCreate, TriggerUpdate, TriggerResolve, TriggerFields}

// MessageTypes lists every message type.
var MessageTypes = []MessageType{MessageCreate, MessageUpdate, MessageReceipt, MessageResponse, MessageHeartbeat}

// Ownerships lists every ownership rule.
var Ownerships = []Ownership{OwnershipIgnore, OwnershipMustOwn, OwnershipMustNotOwn}

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
	ResponseMessageID *int64
	Path              string
	Trigger           Trigger
	TriggerFields     JSON[[]string] // the ticket fields whose change fires TriggerFields
	BondOwnership     Ownership
	AllowedBondStates JSON[[]BondState]
	SetBondState      *BondState
	Version           int `gorm:"default:1"` // the Designer's edit version (models/designer)
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Sends reports whether the message can travel outbound.
func (m *Message) Sends() bool { return m.Direction == Outbound || m.Direction == Bidirectional }

// Receives reports whether the message can arrive inbound.
func (m *Message) Receives() bool { return m.Direction == Inbound || m.Direction == Bidirectional }

// Field maps a ticket field to a payload property, one way or both
// (Direction), with value maps: ValueMap from ticket values to payload values
// (outbound), InboundMap from payload values to ticket values (inbound).
// Default is a ticket value used when the ticket's value is empty (outbound)
// or the property is absent (inbound).
type Field struct {
	ID          int64
	MessageID   int64
	TicketField string
	Property    string
	Direction   Direction `gorm:"default:Bidirectional"`
	Default     string    `gorm:"column:default_value"`
	ValueMap    JSON[map[string]string]
	InboundMap  JSON[map[string]string] `gorm:"column:inbound_value_map"`
	Required    bool
	Position    int
	Version     int `gorm:"default:1"` // the Designer's edit version (models/designer)
}

// Sends reports whether the field is mapped on outbound messages.
func (f *Field) Sends() bool { return f.Direction != Inbound }

// Receives reports whether the field is applied from inbound messages.
func (f *Field) Receives() bool { return f.Direction != Outbound }

// ResponseAction says what to do with an HTTP status from the remote system.
type ResponseAction struct {
	ID                   int64
	IntegrationID        *int64
	MessageID            *int64
	StatusCode           int
	Retry                bool
	SetIntegrationStatus *IntegrationStatus
	// What the engine sets when it applies the action to a transaction it
	// does not retry: its transport state (Complete: the answer counts as a
	// delivery; Error), its process state, the integration's state (Paused),
	// and a note appended to the bond's history.
	SetTransactionState *TransportState
	SetProcessState     *ProcessState
	SetIntegrationState *IntegrationState
	BondNote            string
	Description         string
	Version             int `gorm:"default:1"` // the Designer's edit version (models/designer)
	CreatedAt           time.Time
}

// MessageScript is one script of a message at one point (docs/scripting.md).
// Point is one of script.Points; Version goes up with every save (the
// Designer's edit version, and the key of the compiled program's cache).
type MessageScript struct {
	ID        int64
	MessageID int64
	Point     string
	Source    string
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// Label names it in the activity log ("CreateIncident / Response");
	// not stored.
	Label string `gorm:"-" json:"-"`
}

// AuditRecord names the script in the activity log (models/designer).
func (s *MessageScript) AuditRecord() (string, string) { return "message_script", s.Label }

// ConnectionVariable is a value scripts read as vars.Name when the
// connection is the integration's active one.
type ConnectionVariable struct {
	ID           int64
	ConnectionID int64
	Name         string
	Value        string
	Version      int `gorm:"default:1"` // the Designer's edit version (models/designer)
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// AuditRecord names the variable in the activity log (models/designer).
func (v *ConnectionVariable) AuditRecord() (string, string) { return "connection_variable", v.Name }
