package inboundsql

import "unifi/models"

// The JSON the configuration statements (InboundConfig, InboundSnapshot)
// encode their rows in.

// WireField is a Field as the configuration statements encode it
// (json_build_object in InboundConfig and InboundSnapshot).
type WireField struct {
	ID          int64             `json:"id"`
	TicketField string            `json:"ticket_field"`
	Property    string            `json:"property"`
	Direction   models.Direction  `json:"direction"`
	Default     string            `json:"default_value"`
	ValueMap    map[string]string `json:"value_map"`
	InboundMap  map[string]string `json:"inbound_value_map"`
	Required    bool              `json:"required"`
}

// Field is the Field at position i of message messageID.
func (f WireField) Field(messageID int64, i int) models.Field {
	return models.Field{ID: f.ID, MessageID: messageID, TicketField: f.TicketField, Property: f.Property,
		Direction: f.Direction, Default: f.Default, ValueMap: models.JSON[map[string]string]{V: f.ValueMap},
		InboundMap: models.JSON[map[string]string]{V: f.InboundMap}, Required: f.Required, Position: i}
}

// SnapshotIntegration is one integration as InboundSnapshot encodes it.
type SnapshotIntegration struct {
	ID            int64                   `json:"id"`
	Name          string                  `json:"name"`
	State         models.IntegrationState `json:"state"`
	AttachLogs    bool                    `json:"attach_logs"`
	ProcessID     int64                   `json:"process_id"`
	NumberPrefix  string                  `json:"number_prefix"`
	TicketTable   string                  `json:"ticket_table"`
	HasConnection bool                    `json:"has_connection"`
	InboundUserID *int64                  `json:"inbound_user_id"`
	Messages      []struct {
		ID                int64              `json:"id"`
		Name              string             `json:"name"`
		Type              models.MessageType `json:"type"`
		Async             bool               `json:"async"`
		BondOwnership     models.Ownership   `json:"bond_ownership"`
		AllowedBondStates []models.BondState `json:"allowed_bond_states"`
		SetBondState      *models.BondState  `json:"set_bond_state"`
		ReceiptMessageID  *int64             `json:"receipt_message_id"`
		ReceiptName       *string            `json:"receipt_name"`
		Fields            []WireField        `json:"fields"`
		ResponseFields    []WireField        `json:"response_fields"`
	} `json:"messages"`
}

// SnapshotUser is one account with a token, as InboundSnapshot encodes it.
type SnapshotUser struct {
	ID        int64       `json:"id"`
	Name      string      `json:"name"`
	Role      models.Role `json:"role"`
	TokenHash string      `json:"token_hash"`
}
