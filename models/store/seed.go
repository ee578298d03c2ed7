package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/pg"
)

// SeedDemoOpts configures SeedDemo.
type SeedDemoOpts struct {
	PeerURL string // where the demo peer listens, e.g. http://127.0.0.1:8081
}

// SeedDemo creates the demo once: users, the Incident process, one integration
// with a connection to the demo peer and messages CreateIncident,
// UpdateIncident, ResolveIncident and Receipt with their fields. It reports
// whether it created anything (false when the demo is already there).
func (s *Store) SeedDemo(ctx context.Context, o SeedDemoOpts) (bool, error) {
	if _, err := s.GetIntegrationByName(ctx, models.DemoIntegrationName); err == nil {
		return false, nil
	} else if !errors.Is(err, models.ErrNotFound) {
		return false, err
	}
	var created bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		st := s.accounts.WithTx(tx)
		for _, l := range append(models.DemoLogins, models.DemoPeerAccount) {
			tok := ""
			if l == models.DemoPeerAccount {
				tok = models.DemoPeerToken
			}
			if _, err := st.CreateUser(ctx, models.SystemActor, account.NewUserOpts{Name: l.Name, Role: l.Role, Password: l.Password, Token: tok}); err != nil {
				var ve *models.ValidationError
				if !errors.As(err, &ve) { // an existing user is fine
					return err
				}
			}
		}
		var peer models.User
		if err := tx.Where("name = ?", models.DemoPeerAccount.Name).Take(&peer).Error; err != nil {
			return err
		}
		proc := models.Process{Name: "Incident", TicketTable: "incident", ReferenceField: "number", NumberPrefix: "INC"}
		if err := tx.Where("name = ?", proc.Name).FirstOrCreate(&proc).Error; err != nil {
			return err
		}
		in := models.Integration{Name: models.DemoIntegrationName, Description: "Demo integration with the bundled peer (unifi peer)",
			ProcessID: proc.ID, State: models.IntegrationActive, Status: models.StatusAwaiting, SyncTimeoutS: 10,
			AsyncTimeoutS: 60, RetryLimit: 3, RetryDelayS: 2, AttachLogs: true}
		if err := tx.Create(&in).Error; err != nil {
			return err
		}
		conn := models.Connection{IntegrationID: in.ID, Name: "Demo peer (local)", Environment: "Development",
			EndpointURL: o.PeerURL + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages", AuthType: models.AuthBearer,
			AuthSecret: s.secrets.seal(models.DemoPeerToken), InboundUserID: &peer.ID, Active: true}
		if err := tx.Create(&conn).Error; err != nil {
			return err
		}
		if err := createIncidentMessages(tx, in.ID); err != nil {
			return err
		}
		created = true
		return pg.LogActivity(tx, models.SystemActor, "seed demo", "integration", in.ID, in.Name, nil, nil)
	})
	if err != nil {
		return false, fmt.Errorf("seed demo: %w", err)
	}
	return created, nil
}

// createIncidentMessages adds the standard bidirectional asynchronous Incident
// messages (docs/domain.md, "Records") to an integration.
func createIncidentMessages(tx *gorm.DB, integrationID int64) error {
	receipt := models.Message{IntegrationID: integrationID, Name: "Receipt", Type: models.MessageReceipt, Direction: models.Bidirectional,
		Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore}
	if err := tx.Create(&receipt).Error; err != nil {
		return err
	}
	open, closed := models.BondOpen, models.BondClosed
	msgs := []struct {
		m      models.Message
		fields []models.Field
	}{
		{models.Message{Name: "CreateIncident", Type: models.MessageCreate, Trigger: models.TriggerCreate, SetBondState: &open,
			BondOwnership: models.OwnershipIgnore}, incidentFields(true)},
		{models.Message{Name: "UpdateIncident", Type: models.MessageUpdate, Trigger: models.TriggerUpdate, BondOwnership: models.OwnershipIgnore,
			AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{models.BondOpen}}}, incidentFields(false)},
		{models.Message{Name: "ResolveIncident", Type: models.MessageUpdate, Trigger: models.TriggerResolve, SetBondState: &closed,
			BondOwnership: models.OwnershipIgnore, AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{models.BondOpen}}},
			[]models.Field{{TicketField: "state", Property: "state", ValueMap: stateMap()}, {TicketField: "work_notes", Property: "close_notes"}}},
	}
	for _, x := range msgs {
		m := x.m
		m.IntegrationID, m.Direction, m.Async, m.ReceiptMessageID = integrationID, models.Bidirectional, true, &receipt.ID
		if m.AllowedBondStates.V == nil {
			m.AllowedBondStates.V = []models.BondState{}
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

func stateMap() models.JSON[map[string]string] {
	return models.JSON[map[string]string]{V: map[string]string{"New": "new", "In Progress": "in_progress",
		"On Hold": "on_hold", "Resolved": "resolved", "Closed": "closed", "Cancelled": "cancelled"}}
}

func incidentFields(create bool) []models.Field {
	priority := models.JSON[map[string]string]{V: map[string]string{"1": "Critical", "2": "High", "3": "Moderate",
		"4": "Low", "5": "Planning"}}
	level := models.JSON[map[string]string]{V: map[string]string{"1": "High", "2": "Medium", "3": "Low"}}
	return []models.Field{
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
