package inbound

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"unifi/models"
	"unifi/models/inbound/inboundsql"
)

// The inbound configuration cache. Checking an inbound update needs the
// integration, its process, its active connection, the message and its
// fields, and the caller's account: two queries per message, as many as the
// write itself. A process keeps all of it in memory as one snapshot, tagged
// with the version in inbound_config_version that it was read at (migration
// 00060: every statement changing any of it sets a new random version, from
// whichever process or tool).
//
// The snapshot only ever routes a message to a batch (inbound_batch.go); it
// never refuses anything. The batch reads the version in its own database
// transaction and applies only messages checked against that very version;
// the others, and everything the snapshot does not accept, take the full
// path, which reads the database. So a configuration change is honoured by
// the first batch that commits after it, in every process.

// inboundSnapshot is the configuration as of one version. It is never changed
// once loaded: requests share it without locks.
type inboundSnapshot struct {
	version      string
	integrations map[string]*inboundIntegration // by name
	tokens       map[string]*models.User        // by HashToken, integration accounts only
	stale        atomic.Bool                    // a newer version has been seen
}

// inboundIntegration is one integration's entry: its configuration with each
// inbound message (the shape the full path reads for one message).
type inboundIntegration struct {
	messages map[string]*inboundConfig // by message name
}

// inboundCache holds the current snapshot.
type inboundCache struct {
	cur atomic.Pointer[inboundSnapshot]
	mu  sync.Mutex // one load at a time
}

// snapshot returns a snapshot that was current when last checked, loading one
// when there is none or a newer version has been seen.
func (s *Service) inboundSnapshot(ctx context.Context) (*inboundSnapshot, error) {
	c := &s.inbound.cache // s.inbound is set: only the group path asks
	if p := c.cur.Load(); p != nil && !p.stale.Load() {
		return p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.cur.Load(); p != nil && !p.stale.Load() {
		return p, nil
	}
	p, err := s.loadInboundSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	c.cur.Store(p)
	return p, nil
}

// noteInboundVersion records the configuration version a query saw: a
// snapshot of another version is dropped at its next use.
func (s *Service) noteInboundVersion(version string) {
	if s.inbound == nil {
		return
	}
	if p := s.inbound.cache.cur.Load(); p != nil && version != "" && p.version != version {
		p.stale.Store(true)
	}
}

// ConfigChanged drops the snapshot: the next message reads the
// configuration again. The server calls it when the database notifies a
// configuration change (designer.Watch), so a change is used at once rather
// than when a batch first notices the new version.
func (s *Service) ConfigChanged(context.Context) {
	if s.inbound == nil {
		return
	}
	if p := s.inbound.cache.cur.Load(); p != nil {
		p.stale.Store(true)
	}
}

// loadInboundSnapshot reads the version and the configuration in one
// statement, so they belong together.
func (s *Service) loadInboundSnapshot(ctx context.Context) (*inboundSnapshot, error) {
	version, ins, users, err := s.readInboundSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	snap := &inboundSnapshot{version: version, integrations: make(map[string]*inboundIntegration, len(ins)),
		tokens: make(map[string]*models.User, len(users))}
	for _, u := range users {
		if models.RoleMay(u.Role, models.ActionUseAPI) != nil {
			continue // refused by the full path, in its words
		}
		h := u.TokenHash
		snap.tokens[h] = &models.User{ID: u.ID, Name: u.Name, Role: u.Role, TokenHash: &h, Active: true}
	}
	for _, in := range ins {
		snap.integrations[in.Name] = snapshotEntry(in)
	}
	return snap, nil
}

// readInboundSnapshot runs inboundsql.InboundSnapshot and decodes its JSON.
func (s *Service) readInboundSnapshot(ctx context.Context) (string, []inboundsql.SnapshotIntegration, []inboundsql.SnapshotUser, error) {
	var version, integrations, accounts string
	err := s.pool().QueryRowContext(ctx, inboundsql.InboundSnapshot).Scan(&version, &integrations, &accounts)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && version == "") {
		return "", nil, nil, fmt.Errorf("read inbound configuration: %w", models.ErrNotFound)
	}
	if err != nil {
		return "", nil, nil, fmt.Errorf("read inbound configuration: %w", err)
	}
	var ins []inboundsql.SnapshotIntegration
	if err := json.Unmarshal([]byte(integrations), &ins); err != nil {
		return "", nil, nil, fmt.Errorf("read inbound configuration: %w", err)
	}
	var users []inboundsql.SnapshotUser
	if err := json.Unmarshal([]byte(accounts), &users); err != nil {
		return "", nil, nil, fmt.Errorf("read inbound accounts: %w", err)
	}
	return version, ins, users, nil
}

// snapshotEntry is the snapshot's configuration of each inbound message of in.
func snapshotEntry(in inboundsql.SnapshotIntegration) *inboundIntegration {
	entry := &inboundIntegration{messages: make(map[string]*inboundConfig, len(in.Messages))}
	for _, m := range in.Messages {
		cfg := &inboundConfig{Integration: models.Integration{ID: in.ID, Name: in.Name, State: in.State,
			AttachLogs: in.AttachLogs, ProcessID: in.ProcessID}, NumberPrefix: in.NumberPrefix,
			TicketTable: in.TicketTable, HasConnection: in.HasConnection, InboundUserID: in.InboundUserID,
			Message: &models.Message{ID: m.ID, IntegrationID: in.ID, Name: m.Name, Type: m.Type, Async: m.Async,
				ReceiptMessageID: m.ReceiptMessageID, BondOwnership: m.BondOwnership,
				AllowedBondStates: models.JSON[[]models.BondState]{V: m.AllowedBondStates}, SetBondState: m.SetBondState},
			ReceiptName: inboundDeref(m.ReceiptName)}
		for i, f := range m.Fields {
			cfg.Fields = append(cfg.Fields, f.Field(m.ID, i))
		}
		cfg.ResponseFields = responseFields(m.ResponseFields)
		entry.messages[m.Name] = cfg
	}
	return entry
}

// lookup returns the configuration for a message name on an integration and
// the account a bearer token belongs to, when the snapshot knows both and the
// account may send to the integration; ok is false otherwise (the full path
// then decides, in its words).
func (p *inboundSnapshot) lookup(integrationName, messageName, tokenHash string) (*inboundConfig, *models.User, bool) {
	in, ok := p.integrations[integrationName]
	if !ok {
		return nil, nil, false
	}
	cfg, ok := in.messages[messageName]
	if !ok {
		return nil, nil, false
	}
	u, ok := p.tokens[tokenHash]
	if !ok || cfg.allows(u) != nil {
		return nil, nil, false
	}
	return cfg, u, true
}
