package configpkg

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// Service exports and imports packages on one database.
type Service struct {
	db   *gorm.DB
	seal func(plain string) string // seals a connection secret as it is stored (the Store's SealSecret)
}

// New returns the service on db; seal turns a secret given after an import
// into its stored, sealed form.
func New(db *gorm.DB, seal func(plain string) string) *Service {
	return &Service{db: db, seal: seal}
}

// Export returns the package of the integration called name.
func (s *Service) Export(ctx context.Context, name string) (*Document, error) {
	d, _, err := load(s.db.WithContext(ctx), name)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, fmt.Errorf("export integration %q: %w", name, models.ErrNotFound)
	}
	return d, nil
}

// ExportByID is Export of the integration with id.
func (s *Service) ExportByID(ctx context.Context, id int64) (*Document, error) {
	var in models.Integration
	if err := s.db.WithContext(ctx).Select("name").Take(&in, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("export integration %d", id))
	}
	return s.Export(ctx, in.Name)
}

// stored is what the database holds for one integration's configuration,
// with the ids an import needs to change it.
type stored struct {
	integration models.Integration
	process     models.Process
	connections map[string]models.Connection
	messages    map[string]models.Message
	actions     map[actionKey]models.ResponseAction
}

type actionKey struct {
	message string
	code    int
}

// load reads the integration called name as a document; (nil, nil, nil)
// when there is no such integration.
func load(tx *gorm.DB, name string) (*Document, *stored, error) {
	st := &stored{connections: map[string]models.Connection{}, messages: map[string]models.Message{},
		actions: map[actionKey]models.ResponseAction{}}
	err := tx.Where("name = ?", name).Take(&st.integration).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("load integration %q: %w", name, err)
	}
	in := st.integration
	if err := tx.Take(&st.process, in.ProcessID).Error; err != nil {
		return nil, nil, fmt.Errorf("load process of integration %q: %w", name, err)
	}
	proc, _, err := processDoc(tx, &st.process)
	if err != nil {
		return nil, nil, err
	}
	var conns []models.Connection
	var msgs []models.Message
	var fields []models.Field
	var actions []models.ResponseAction
	if err := tx.Where("integration_id = ?", in.ID).Find(&conns).Error; err != nil {
		return nil, nil, fmt.Errorf("load connections of %q: %w", name, err)
	}
	if err := tx.Where("integration_id = ?", in.ID).Find(&msgs).Error; err != nil {
		return nil, nil, fmt.Errorf("load messages of %q: %w", name, err)
	}
	if err := tx.Where("message_id IN (SELECT id FROM messages WHERE integration_id = ?)", in.ID).
		Order("message_id, position, id").Find(&fields).Error; err != nil {
		return nil, nil, fmt.Errorf("load fields of %q: %w", name, err)
	}
	if err := tx.Where("integration_id = ?", in.ID).Find(&actions).Error; err != nil {
		return nil, nil, fmt.Errorf("load response actions of %q: %w", name, err)
	}
	var scripts []models.MessageScript
	if err := tx.Where("message_id IN (SELECT id FROM messages WHERE integration_id = ?)", in.ID).Find(&scripts).Error; err != nil {
		return nil, nil, fmt.Errorf("load message scripts of %q: %w", name, err)
	}
	var vars []models.ConnectionVariable
	if err := tx.Where("connection_id IN (SELECT id FROM connections WHERE integration_id = ?)", in.ID).Find(&vars).Error; err != nil {
		return nil, nil, fmt.Errorf("load connection variables of %q: %w", name, err)
	}
	scriptsOf, varsOf := map[int64]map[string]string{}, map[int64]map[string]string{}
	for _, s := range scripts {
		if scriptsOf[s.MessageID] == nil {
			scriptsOf[s.MessageID] = map[string]string{}
		}
		scriptsOf[s.MessageID][s.Point] = s.Source
	}
	for _, v := range vars {
		if varsOf[v.ConnectionID] == nil {
			varsOf[v.ConnectionID] = map[string]string{}
		}
		varsOf[v.ConnectionID][v.Name] = v.Value
	}
	d := &Document{Format: Format, Process: proc,
		Integration: Integration{Name: in.Name, Description: in.Description, SyncTimeoutS: in.SyncTimeoutS,
			AsyncTimeoutS: in.AsyncTimeoutS, RetryLimit: in.RetryLimit, RetryDelayS: in.RetryDelayS,
			AttachLogs: in.AttachLogs, HeartbeatS: in.HeartbeatS},
		Connections: []Connection{}, Messages: []Message{}, ResponseActions: []ResponseAction{}}
	for _, c := range conns {
		st.connections[c.Name] = c
		d.Connections = append(d.Connections, Connection{Name: c.Name, Environment: c.Environment,
			EndpointURL: c.EndpointURL, AuthType: string(c.AuthType), AuthUsername: c.AuthUsername,
			OAuthTokenURL: c.OAuthTokenURL, OAuthClientID: c.OAuthClientID, OAuthScopes: c.OAuthScopes,
			Variables: varsOf[c.ID]})
	}
	nameOf := map[int64]string{}
	for _, m := range msgs {
		nameOf[m.ID] = m.Name
		st.messages[m.Name] = m
	}
	byMessage := map[int64][]Field{}
	for _, f := range fields {
		byMessage[f.MessageID] = append(byMessage[f.MessageID], Field{TicketField: f.TicketField, Property: f.Property,
			Direction: string(f.Direction), Required: f.Required, Default: f.Default, Position: f.Position,
			ValueMap: nonNilMap(f.ValueMap.V), InboundValueMap: nonNilMap(f.InboundMap.V)})
	}
	for _, m := range msgs {
		x := Message{Name: m.Name, Type: string(m.Type), Direction: string(m.Direction), Async: m.Async, Path: m.Path,
			Trigger: string(m.Trigger), TriggerFields: nonNil(m.TriggerFields.V), BondOwnership: string(m.BondOwnership),
			AllowedBondStates: strs(m.AllowedBondStates.V...), Fields: nonNil(byMessage[m.ID]), Scripts: scriptsOf[m.ID]}
		if m.ReceiptMessageID != nil {
			x.ReceiptMessage = nameOf[*m.ReceiptMessageID]
		}
		if m.ResponseMessageID != nil {
			x.ResponseMessage = nameOf[*m.ResponseMessageID]
		}
		if m.SetBondState != nil {
			x.SetBondState = string(*m.SetBondState)
		}
		d.Messages = append(d.Messages, x)
	}
	for _, a := range actions {
		x := ResponseAction{StatusCode: a.StatusCode, Retry: a.Retry, BondNote: a.BondNote, Description: a.Description}
		if a.MessageID != nil {
			x.Message = nameOf[*a.MessageID]
		}
		if a.SetTransactionState != nil {
			x.SetTransactionState = a.SetTransactionState.String()
		}
		if a.SetProcessState != nil {
			x.SetProcessState = a.SetProcessState.String()
		}
		if a.SetIntegrationState != nil {
			x.SetIntegrationState = string(*a.SetIntegrationState)
		}
		if a.SetIntegrationStatus != nil {
			x.SetIntegrationStatus = string(*a.SetIntegrationStatus)
		}
		st.actions[actionKey{x.Message, x.StatusCode}] = a
		d.ResponseActions = append(d.ResponseActions, x)
	}
	if err := loadPollers(tx, in.ID, d); err != nil {
		return nil, nil, fmt.Errorf("load pollers of %q: %w", name, err)
	}
	// Encode sorts the lists by name in Go, not ORDER BY: the database's
	// collation may differ between instances.
	return d, st, nil
}

// processDoc is process p as a document, with its own fields in the order
// of the ticket form, and those fields' rows by name (for an import).
func processDoc(tx *gorm.DB, p *models.Process) (Process, map[string]models.ProcessField, error) {
	var rows []models.ProcessField
	if err := tx.Where("process_id = ?", p.ID).Order("position, id").Find(&rows).Error; err != nil {
		return Process{}, nil, fmt.Errorf("load fields of process %q: %w", p.Name, err)
	}
	d := Process{Name: p.Name, TicketTable: p.TicketTable, ReferenceField: p.ReferenceField,
		NumberPrefix: p.NumberPrefix, Fields: []ProcessField{}}
	byName := make(map[string]models.ProcessField, len(rows))
	for _, f := range rows {
		byName[f.Name] = f
		d.Fields = append(d.Fields, ProcessField{Name: f.Name, Label: f.Label, Type: string(f.Type),
			Required: f.Required, Choices: nonNil(f.Choices.V)})
	}
	return d, byName, nil
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// sortActions orders response actions by message name ("" first), then status.
func sortActions(xs []ResponseAction) {
	slices.SortFunc(xs, func(a, b ResponseAction) int {
		if a.Message != b.Message {
			if a.Message < b.Message {
				return -1
			}
			return 1
		}
		return a.StatusCode - b.StatusCode
	})
}
