package models

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"
)

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

// SeedDemoOpts configures SeedDemo.
type SeedDemoOpts struct {
	PeerURL string // where the demo peer listens, e.g. http://127.0.0.1:8081
}

// SeedDemo creates the demo once: users, the Incident process, one integration
// with a connection to the demo peer and messages CreateIncident,
// UpdateIncident, ResolveIncident and Receipt with their fields. It reports
// whether it created anything (false when the demo is already there).
func (s *Store) SeedDemo(ctx context.Context, o SeedDemoOpts) (bool, error) {
	if _, err := s.GetIntegrationByName(ctx, DemoIntegrationName); err == nil {
		return false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	var created bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st := &Store{db: tx, now: s.now, passwordCost: s.passwordCost, secrets: s.secrets}
		for _, l := range append(DemoLogins, DemoPeerAccount) {
			tok := ""
			if l == DemoPeerAccount {
				tok = DemoPeerToken
			}
			if _, err := st.CreateUser(ctx, SystemActor, NewUserOpts{Name: l.Name, Role: l.Role, Password: l.Password, Token: tok}); err != nil {
				var ve *ValidationError
				if !errors.As(err, &ve) { // an existing user is fine
					return err
				}
			}
		}
		var peer User
		if err := tx.Where("name = ?", DemoPeerAccount.Name).Take(&peer).Error; err != nil {
			return err
		}
		proc := Process{Name: "Incident", TicketTable: "incident", ReferenceField: "number", NumberPrefix: "INC"}
		if err := tx.Where("name = ?", proc.Name).FirstOrCreate(&proc).Error; err != nil {
			return err
		}
		in := Integration{Name: DemoIntegrationName, Description: "Demo integration with the bundled peer (unifi peer)",
			ProcessID: proc.ID, State: IntegrationActive, Status: StatusAwaiting, SyncTimeoutS: 10,
			AsyncTimeoutS: 60, RetryLimit: 3, RetryDelayS: 2, AttachLogs: true}
		if err := tx.Create(&in).Error; err != nil {
			return err
		}
		conn := Connection{IntegrationID: in.ID, Name: "Demo peer (local)", Environment: "Development",
			EndpointURL: o.PeerURL + "/api/v1/integrations/" + DemoIntegrationName + "/messages", AuthType: AuthBearer,
			AuthSecret: s.secrets.seal(DemoPeerToken), InboundUserID: &peer.ID, Active: true}
		if err := tx.Create(&conn).Error; err != nil {
			return err
		}
		if err := createIncidentMessages(tx, in.ID); err != nil {
			return err
		}
		created = true
		return LogActivity(tx, SystemActor, "seed demo", "integration", in.ID, in.Name, nil, nil)
	})
	if err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	return created, nil
}

// createIncidentMessages adds the standard bidirectional asynchronous Incident
// messages (seed 000's guide) to an integration.
func createIncidentMessages(tx *gorm.DB, integrationID int64) error {
	receipt := Message{IntegrationID: integrationID, Name: "Receipt", Type: MessageReceipt, Direction: Bidirectional,
		Trigger: TriggerNone, BondOwnership: OwnershipIgnore}
	if err := tx.Create(&receipt).Error; err != nil {
		return err
	}
	open, closed := BondOpen, BondClosed
	msgs := []struct {
		m      Message
		fields []Field
	}{
		{Message{Name: "CreateIncident", Type: MessageCreate, Trigger: TriggerCreate, SetBondState: &open,
			BondOwnership: OwnershipIgnore}, incidentFields(true)},
		{Message{Name: "UpdateIncident", Type: MessageUpdate, Trigger: TriggerUpdate, BondOwnership: OwnershipIgnore,
			AllowedBondStates: JSON[[]BondState]{V: []BondState{BondOpen}}}, incidentFields(false)},
		{Message{Name: "ResolveIncident", Type: MessageUpdate, Trigger: TriggerResolve, SetBondState: &closed,
			BondOwnership: OwnershipIgnore, AllowedBondStates: JSON[[]BondState]{V: []BondState{BondOpen}}},
			[]Field{{TicketField: "state", Property: "state", ValueMap: stateMap()}, {TicketField: "work_notes", Property: "close_notes"}}},
	}
	for _, x := range msgs {
		m := x.m
		m.IntegrationID, m.Direction, m.Async, m.ReceiptMessageID = integrationID, Bidirectional, true, &receipt.ID
		if m.AllowedBondStates.V == nil {
			m.AllowedBondStates.V = []BondState{}
		}
		if err := tx.Create(&m).Error; err != nil {
			return err
		}
		for i, f := range x.fields {
			f.MessageID, f.Position = m.ID, i
			if f.ValueMap.V == nil {
				f.ValueMap.V = map[string]string{}
			}
			if err := tx.Create(&f).Error; err != nil {
				return err
			}
		}
	}
	return nil
}

func stateMap() JSON[map[string]string] {
	return JSON[map[string]string]{V: map[string]string{"New": "new", "In Progress": "in_progress",
		"On Hold": "on_hold", "Resolved": "resolved", "Closed": "closed", "Cancelled": "cancelled"}}
}

func incidentFields(create bool) []Field {
	priority := JSON[map[string]string]{V: map[string]string{"1": "Critical", "2": "High", "3": "Moderate",
		"4": "Low", "5": "Planning"}}
	level := JSON[map[string]string]{V: map[string]string{"1": "High", "2": "Medium", "3": "Low"}}
	return []Field{
		{TicketField: "short_description", Property: "short_description", Required: create},
		{TicketField: "description", Property: "description"},
		{TicketField: "state", Property: "state", ValueMap: stateMap()},
		{TicketField: "priority", Property: "priority", ValueMap: priority},
		{TicketField: "urgency", Property: "urgency", ValueMap: level},
		{TicketField: "impact", Property: "impact", ValueMap: level},
		{TicketField: "assignment_group", Property: "assignment_group"},
		{TicketField: "work_notes", Property: "comments"},
	}
}
