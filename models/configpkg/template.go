package configpkg

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"net/url"
	"slices"

	"gorm.io/gorm"

	"unifi/models"
)

//go:embed templates/*.json
var templateFS embed.FS

// Template is a package shipped with the product, to start an integration
// from (docs/packages.md, "Templates").
type Template struct {
	Key         string
	Title       string
	Description string
	file        string
}

// Templates are the shipped templates.
var Templates = []Template{{
	Key:   "unifi-envelope",
	Title: "Bidirectional asynchronous (Unifi envelope)",
	Description: "Two instances of this product talking to each other: CreateIncident, UpdateIncident and " +
		"ResolveIncident both ways, each answered by an asynchronous Receipt, with the standard field mapping.",
	file: "templates/unifi-envelope.json",
}, {
	Key:   "servicenow-table-api",
	Title: "ServiceNow Table API (webhook)",
	Description: "A ServiceNow instance: incidents created, updated (with work notes) and resolved here become Table API " +
		"calls (POST and PATCH /api/now/table/incident, basic authentication), and its business-rule webhook " +
		"sends its changes to /api/v1/integrations/NAME/raw. Priority and state go through value maps; message " +
		"scripts build the requests and read the answers (docs/scripting.md). Give the instance's address " +
		"(https://INSTANCE.service-now.com), the integration user and its password.",
	file: "templates/servicenow-table-api.json",
}, {
	Key:   "jira-poll",
	Title: "Jira (poll)",
	Description: "A Jira site through its REST API v2: incidents created, updated (comments from work notes) and resolved " +
		"here become issues (POST /rest/api/2/issue, the key kept as the bond's reference), edits and transitions " +
		"there; Jira cannot push, so the poller \"Jira changes\" searches it every 10 s (JQL on updated, paged) and " +
		"receives each changed issue here. Priority and status go through value maps. Give the site's address, the " +
		"account's e-mail address and its API token; set the project key in the connection's variables (default SIM).",
	file: "templates/jira-poll.json",
}}

// TemplateDocument returns the package of the template with key.
func TemplateDocument(key string) (*Document, error) {
	i := slices.IndexFunc(Templates, func(t Template) bool { return t.Key == key })
	if i < 0 {
		return nil, fmt.Errorf("template %q: %w", key, models.ErrNotFound)
	}
	raw, err := templateFS.ReadFile(Templates[i].file)
	if err != nil {
		return nil, fmt.Errorf("template %q: %w", key, err)
	}
	return Decode(bytes.NewReader(raw))
}

// TemplateInput is the "New integration from a template" form.
type TemplateInput struct {
	Template    string
	Name        string // the integration's name; the other side's URL ends with it
	Description string // "" keeps the template's
	Environment string // "" keeps the template's
	EndpointURL string // where the other side receives our messages
	Username    string // the user name, for a template whose connection uses basic authentication
	Token       string // the bearer token (or, with basic authentication, the password) the other side gave us
	// InboundUserID is the integration account the other side calls us with.
	InboundUserID int64
}

// FromTemplate creates an integration from a template in one database
// transaction: the template's package imported under the given name, its
// connection pointed at the endpoint, given the token and the inbound
// account, and activated. Form problems are a *models.ValidationError by
// form field.
func (s *Service) FromTemplate(ctx context.Context, actor models.Actor, in TemplateInput) (*models.Integration, error) {
	d, err := TemplateDocument(in.Template)
	if err != nil {
		return nil, &models.ValidationError{Fields: map[string]string{"template": "Choose one of the templates."}}
	}
	ve := &models.ValidationError{}
	if !integrationName.MatchString(in.Name) {
		ve.Add("name", "Use "+integrationRE+".")
	}
	if p := models.TextProblem(in.Description); p != "" {
		ve.Add("description", p)
	} else if len([]rune(in.Description)) > maxLongText {
		ve.Add("description", fmt.Sprintf("At most %d characters.", maxLongText))
	}
	if in.Environment != "" && !slices.Contains(models.Environments, in.Environment) {
		ve.Add("environment", "Choose one of the environments.")
	}
	if u, err := url.Parse(in.EndpointURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		len(in.EndpointURL) > maxText || models.TextProblem(in.EndpointURL) != "" {
		ve.Add("endpoint_url", "Give the other side's address, starting with https:// (or http://), like https://peer.example.com/api/v1/integrations/NAME/messages.")
	}
	conn := &d.Connections[0]
	basic := conn.AuthType == string(models.AuthBasic)
	switch {
	case !basic:
	case in.Username == "":
		ve.Add("username", "Give the user name we call the other side as.")
	case len(in.Username) > maxText || models.TextProblem(in.Username) != "":
		ve.Add("username", fmt.Sprintf("At most %d characters of text.", maxText))
	}
	switch {
	case in.Token == "" && basic:
		ve.Add("token", "Give that user's password.")
	case in.Token == "":
		ve.Add("token", "Give the bearer token the other side issued for us.")
	case models.TextProblem(in.Token) != "":
		ve.Add("token", models.TextProblem(in.Token))
	case len(in.Token) > maxSecret:
		ve.Add("token", fmt.Sprintf("The token is longer than %d characters.", maxSecret))
	}
	if in.InboundUserID <= 0 {
		ve.Add("inbound_user_id", "Choose the integration account the other side calls us with.")
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	d.Integration.Name = in.Name
	if in.Description != "" {
		d.Integration.Description = in.Description
	}
	conn.EndpointURL = in.EndpointURL
	if basic {
		conn.AuthUsername = in.Username
	}
	if in.Environment != "" {
		conn.Environment = in.Environment
	}
	var out *models.Integration
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&models.Integration{}).Where("name = ?", in.Name).Count(&n).Error; err != nil {
			return fmt.Errorf("look for integration %q: %w", in.Name, err)
		}
		if n > 0 {
			return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("An integration called %q already exists.", in.Name)}}
		}
		created, err := applyTx(tx, actor, d, "")
		if err != nil {
			return err
		}
		var c models.Connection
		if err := tx.Where("integration_id = ? AND name = ?", created.ID, conn.Name).Take(&c).Error; err != nil {
			return fmt.Errorf("find the template's connection: %w", err)
		}
		if _, err := s.setCredentialsTx(tx, actor, c.ID, Credentials{Secret: in.Token, InboundUserID: in.InboundUserID, Activate: true}); err != nil {
			return err
		}
		out = created
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("new integration from template %q: %w", in.Template, err)
	}
	return out, nil
}
