// Package configpkg moves an integration's whole configuration between
// instances as one versioned, human-readable JSON document (a "package"):
// Export writes it, Decode reads it strictly, Plan lists what an import would
// create, change or leave alone, Apply does it in one database transaction.
// Records refer to each other by name, never by id, and no secret is ever in
// a package: they are asked for after the import (SetCredentials). The format
// and its rules are in docs/packages.md.
package configpkg

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Format is the version of the document this code writes; it reads every
// format up to it. A document with a higher format comes from a newer
// product and is refused. Format 2 added the process's own ticket fields
// (process.fields), message scripts, connection variables, poll processors
// and pollers; a format 1 document reads as one with none, and refuses those
// keys as unknown to it. Format 3
// carries every setting of a message, field and response action: a field's
// direction, default, position and inbound value map, a message's response
// message and watched fields, a response action's states and bond note; an
// older document reads with their defaults (both ways, no default, the
// list's order, the inverse of the outbound map, none).
const Format = 3

// MaxBytes is the largest document Decode reads (a big integration, 100
// messages of 40 fields with value maps, is a few hundred KB).
const MaxBytes = 2 << 20

// Document is one package. The field order of these structs is the key order
// of the JSON, so two exports of the same configuration are byte-identical
// and diff cleanly; lists are sorted by name (fields keep their position).
type Document struct {
	Format          int              `json:"format"`
	Process         Process          `json:"process"`
	Integration     Integration      `json:"integration"`
	Connections     []Connection     `json:"connections"`
	Messages        []Message        `json:"messages"`
	ResponseActions []ResponseAction `json:"response_actions"`
	// PollProcessors and Pollers (pollers.go) are left out when there are none.
	PollProcessors []PollProcessor `json:"poll_processors,omitempty"`
	Pollers        []Poller        `json:"pollers,omitempty"`
}

// Process is the kind of ticket the integration carries.
type Process struct {
	Name           string `json:"name"`
	TicketTable    string `json:"ticket_table"`
	ReferenceField string `json:"reference_field"`
	NumberPrefix   string `json:"number_prefix"`
	// Fields are the process's own ticket fields (format 2), in the order
	// of the ticket form; message fields map them as custom.<name>.
	Fields []ProcessField `json:"fields"`
}

// ProcessField is a ticket field the process defines besides the built-in
// ones (models.ProcessField, docs/domain.md "Processes and their fields").
type ProcessField struct {
	Name     string   `json:"name"`
	Label    string   `json:"label"`
	Type     string   `json:"type"`
	Required bool     `json:"required"`
	Choices  []string `json:"choices"` // a choice field's values, in order; [] for the other types
}

// Integration holds the integration's own settings; its state (Active,
// Paused, Off) and status are operations, not configuration.
type Integration struct {
	Name          string `json:"name"`
	Description   string `json:"description"`
	SyncTimeoutS  int    `json:"sync_timeout_s"`
	AsyncTimeoutS int    `json:"async_timeout_s"`
	RetryLimit    int    `json:"retry_limit"`
	RetryDelayS   int    `json:"retry_delay_s"`
	AttachLogs    bool   `json:"attach_logs"`
	HeartbeatS    int    `json:"heartbeat_s"`
}

// Connection is where the remote system is, without any secret, inbound
// account or active flag: those belong to one instance and are given after
// an import.
type Connection struct {
	Name          string `json:"name"`
	Environment   string `json:"environment"`
	EndpointURL   string `json:"endpoint_url"`
	AuthType      string `json:"auth_type"`
	AuthUsername  string `json:"auth_username"`
	OAuthTokenURL string `json:"oauth_token_url"`
	OAuthClientID string `json:"oauth_client_id"`
	OAuthScopes   string `json:"oauth_scopes"`
	// Variables are the values message scripts read as vars.NAME
	// (docs/scripting.md); not secrets. Left out when there are none.
	Variables map[string]string `json:"variables,omitempty"`
}

// Message is one kind of message with its fields.
type Message struct {
	Name              string   `json:"name"`
	Type              string   `json:"type"`
	Direction         string   `json:"direction"`
	Async             bool     `json:"async"`
	ReceiptMessage    string   `json:"receipt_message"`  // a message name, or ""
	ResponseMessage   string   `json:"response_message"` // a message name, or "" (format 3)
	Path              string   `json:"path"`
	Trigger           string   `json:"trigger"`
	TriggerFields     []string `json:"trigger_fields"` // the ticket fields trigger "fields" watches (format 3)
	BondOwnership     string   `json:"bond_ownership"`
	AllowedBondStates []string `json:"allowed_bond_states"`
	SetBondState      string   `json:"set_bond_state"` // "" = leave the bond's state
	Fields            []Field  `json:"fields"`
	// Scripts are the message's scripts by point ("stage_to_request": the
	// JavaScript; docs/scripting.md). Left out when there are none.
	Scripts map[string]string `json:"scripts,omitempty"`
}

// Field maps a ticket field to a payload property. The list is in the
// order of Position (fields are sent in that order); equal positions keep
// the list's order.
type Field struct {
	TicketField string `json:"ticket_field"`
	Property    string `json:"property"`
	Direction   string `json:"direction"` // Inbound, Outbound or Bidirectional (format 3; before: Bidirectional)
	Required    bool   `json:"required"`
	Default     string `json:"default"`  // a ticket value (format 3)
	Position    int    `json:"position"` // format 3; before: the index in the list
	// ValueMap is outbound, ticket value -> payload value; InboundValueMap
	// is inbound, payload value -> ticket value (format 3), empty meaning
	// the inverse of ValueMap (models.Field). Keys are written sorted.
	ValueMap        map[string]string `json:"value_map"`
	InboundValueMap map[string]string `json:"inbound_value_map"`
}

// ResponseAction is what to do with an HTTP status of this integration,
// for every message ("") or one message by name.
type ResponseAction struct {
	Message              string `json:"message"`
	StatusCode           int    `json:"status_code"`
	Retry                bool   `json:"retry"`
	SetTransactionState  string `json:"set_transaction_state"`  // "", Complete or Error (format 3)
	SetProcessState      string `json:"set_process_state"`      // "", Accepted or Rejected (format 3)
	SetIntegrationStatus string `json:"set_integration_status"` // "" = leave it
	SetIntegrationState  string `json:"set_integration_state"`  // "" or Paused (format 3)
	BondNote             string `json:"bond_note"`              // appended to the bond's history (format 3)
	Description          string `json:"description"`
}

// Encode writes the document as indented JSON with a final newline, in the
// current Format (a document read from an older format means the same in
// it), its lists in the order export writes them (by name). Empty lists and
// maps are written as [] and {}, never null, so an edited document and an
// exported one look alike.
func Encode(d *Document) ([]byte, error) {
	c := *d
	c.Format = Format
	c.Process.Fields = slices.Clone(nonNil(c.Process.Fields))
	for i := range c.Process.Fields {
		c.Process.Fields[i].Choices = nonNil(c.Process.Fields[i].Choices)
	}
	// Clone keeps an empty list empty, not nil, and leaves d as it is.
	c.Connections = slices.Clone(nonNil(c.Connections))
	c.ResponseActions = slices.Clone(nonNil(c.ResponseActions))
	c.Messages = slices.Clone(nonNil(d.Messages))
	slices.SortStableFunc(c.Connections, func(a, b Connection) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(c.Messages, func(a, b Message) int { return strings.Compare(a.Name, b.Name) })
	sortActions(c.ResponseActions)
	for i := range c.Messages {
		m := &c.Messages[i]
		m.AllowedBondStates = nonNil(m.AllowedBondStates)
		m.TriggerFields = nonNil(m.TriggerFields)
		m.Fields = slices.Clone(nonNil(m.Fields))
		for j := range m.Fields {
			if m.Fields[j].ValueMap == nil {
				m.Fields[j].ValueMap = map[string]string{}
			}
			if m.Fields[j].InboundValueMap == nil {
				m.Fields[j].InboundValueMap = map[string]string{}
			}
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "<" in a description stays readable
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encode package: %w", err)
	}
	return buf.Bytes(), nil
}

func nonNil[T any](xs []T) []T {
	if xs == nil {
		return []T{}
	}
	return xs
}
