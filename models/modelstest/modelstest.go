// Package modelstest holds test factories for the models: an integration
// with its connection and messages, and the people who act on it.
package modelstest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/store"
)

// IntegrationOpts describes the integration Integration creates. Nil fields
// take the defaults noted.
type IntegrationOpts struct {
	Name          *string          // default "remote"
	EndpointURL   string           // required
	Async         *bool            // messages want an async receipt; default false
	RetryLimit    *int             // default 3
	RetryDelayS   *int             // default 0 (retry at once)
	AsyncTimeoutS *int             // default 300
	SyncTimeoutS  *int             // default 10
	AttachLogs    *bool            // default true
	AuthType      *models.AuthType // default none
	AuthUsername  *string          // basic user or OAuth2 client id
	AuthSecret    *string          // password, token or client secret
	OAuthTokenURL *string          // OAuth2 token endpoint
	State         *models.IntegrationState
}

// Fixture is an integration ready to send, and the people who act on it.
type Fixture struct {
	Process     models.Process
	Integration models.Integration
	Connection  models.Connection
	Messages    map[string]models.Message // CreateIncident, UpdateIncident, ResolveIncident, Receipt
	Admin       models.Actor
	Manager     models.Actor
	Analyst     models.Actor
}

var userMu sync.Mutex

// Integration creates the Incident process (once), an integration with an
// active connection to o.EndpointURL and the standard Incident messages
// (Create, Update and Resolve triggered by ticket changes), plus an admin, a
// manager and an analyst.
func Integration(ctx context.Context, t testing.TB, db *gorm.DB, o *IntegrationOpts) *Fixture {
	t.Helper()
	name, async, retryLimit, retryDelay, asyncTimeout, syncTimeout, attach :=
		"remote", false, 3, 0, 300, 10, true
	set := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	if o.Name != nil {
		name = *o.Name
	}
	if o.Async != nil {
		async = *o.Async
	}
	if o.AttachLogs != nil {
		attach = *o.AttachLogs
	}
	set(&retryLimit, o.RetryLimit)
	set(&retryDelay, o.RetryDelayS)
	set(&asyncTimeout, o.AsyncTimeoutS)
	set(&syncTimeout, o.SyncTimeoutS)
	f := &Fixture{Messages: map[string]models.Message{}}
	f.Process = models.Process{Name: "Incident", TicketTable: "incident", ReferenceField: "number", NumberPrefix: "INC"}
	require.NoError(t, db.WithContext(ctx).Where("name = ?", "Incident").FirstOrCreate(&f.Process).Error)
	state := models.IntegrationActive
	if o.State != nil {
		state = *o.State
	}
	f.Integration = models.Integration{Name: name, ProcessID: f.Process.ID, State: state,
		Status: models.StatusAwaiting, SyncTimeoutS: syncTimeout, AsyncTimeoutS: asyncTimeout,
		RetryLimit: retryLimit, RetryDelayS: retryDelay, AttachLogs: attach}
	require.NoError(t, db.WithContext(ctx).Create(&f.Integration).Error)
	f.Connection = models.Connection{IntegrationID: f.Integration.ID, Name: "Test", Environment: "Test",
		EndpointURL: o.EndpointURL, AuthType: models.AuthNone, Active: true}
	if o.AuthType != nil {
		f.Connection.AuthType = *o.AuthType
	}
	if o.AuthUsername != nil {
		f.Connection.AuthUsername, f.Connection.OAuthClientID = *o.AuthUsername, *o.AuthUsername
	}
	if o.AuthSecret != nil {
		f.Connection.AuthSecret = store.NewStore(db, account.New(db, nil), nil).SealSecret(*o.AuthSecret) // the development key
	}
	if o.OAuthTokenURL != nil {
		f.Connection.OAuthTokenURL = *o.OAuthTokenURL
	}
	require.NoError(t, db.WithContext(ctx).Create(&f.Connection).Error)

	receipt := models.Message{IntegrationID: f.Integration.ID, Name: "Receipt", Type: models.MessageReceipt,
		Direction: models.Bidirectional, Trigger: models.TriggerNone, BondOwnership: models.OwnershipIgnore,
		Path: "receipt", AllowedBondStates: models.JSON[[]models.BondState]{V: []models.BondState{}}}
	require.NoError(t, db.WithContext(ctx).Create(&receipt).Error)
	f.Messages[receipt.Name] = receipt
	open, closed := models.BondOpen, models.BondClosed
	for _, m := range []models.Message{
		{Name: "CreateIncident", Type: models.MessageCreate, Trigger: models.TriggerCreate, SetBondState: &open, Path: "create"},
		{Name: "UpdateIncident", Type: models.MessageUpdate, Trigger: models.TriggerUpdate, Path: "update"},
		{Name: "ResolveIncident", Type: models.MessageUpdate, Trigger: models.TriggerResolve, SetBondState: &closed, Path: "resolve"},
	} {
		m.IntegrationID, m.Direction, m.Async, m.BondOwnership = f.Integration.ID, models.Bidirectional, async, models.OwnershipIgnore
		m.AllowedBondStates = models.JSON[[]models.BondState]{V: []models.BondState{}}
		if async {
			m.ReceiptMessageID = &receipt.ID
		}
		require.NoError(t, db.WithContext(ctx).Create(&m).Error)
		for i, fl := range []models.Field{
			{TicketField: "short_description", Property: "short_description"},
			{TicketField: "state", Property: "state"},
			{TicketField: "priority", Property: "priority", ValueMap: models.JSON[map[string]string]{V: map[string]string{"1": "Critical", "4": "Low"}}},
			{TicketField: "work_notes", Property: "comments"},
		} {
			fl.MessageID, fl.Position = m.ID, i
			if fl.ValueMap.V == nil {
				fl.ValueMap.V = map[string]string{}
			}
			require.NoError(t, db.WithContext(ctx).Create(&fl).Error)
		}
		f.Messages[m.Name] = m
	}
	userMu.Lock()
	defer userMu.Unlock()
	for _, u := range []struct {
		role models.Role
		dst  *models.Actor
	}{{models.RoleAdmin, &f.Admin}, {models.RoleManager, &f.Manager}, {models.RoleAnalyst, &f.Analyst}} {
		user := models.User{Name: name + "-" + string(u.role), Role: u.role, PasswordHash: "x", Active: true}
		require.NoError(t, db.WithContext(ctx).Where("name = ?", user.Name).FirstOrCreate(&user).Error)
		*u.dst = models.ActorOf(&user, "127.0.0.1")
	}
	return f
}

// Clock is an injectable clock: real time plus an offset that tests advance.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Ptr returns a pointer to v, for Opts fields.
func Ptr[T any](v T) *T { return &v }
