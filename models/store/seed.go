package store

import (
	"context"
	"errors"
	"fmt"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/account"
	"unifi/models/configpkg"
	"unifi/models/pg"
)

// SeedDemoOpts configures SeedDemo.
type SeedDemoOpts struct {
	PeerURL string // where the demo peer listens, e.g. http://127.0.0.1:8081
}

// DemoTemplate is the template the demo integration is made from.
const DemoTemplate = "unifi-envelope"

// SeedDemo creates the demo once: users, then the integration made from the
// "Bidirectional asynchronous (Unifi envelope)" template (the Incident
// process, messages CreateIncident, UpdateIncident, ResolveIncident and
// Receipt with their fields) with its connection to the demo peer active. It reports
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
		// One source for the demo's configuration: the shipped template, as
		// an admin would create it with "New integration from a template".
		in, err := configpkg.New(tx, s.secrets.seal).FromTemplate(ctx, models.SystemActor, configpkg.TemplateInput{
			Template: DemoTemplate, Name: models.DemoIntegrationName, Environment: "Development",
			Description: "Demo integration with the bundled peer (unifi peer)",
			EndpointURL: o.PeerURL + "/api/v1/integrations/" + models.DemoIntegrationName + "/messages",
			Token:       models.DemoPeerToken, InboundUserID: peer.ID})
		if err != nil {
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
