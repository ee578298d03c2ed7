package designer

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"

	"unifi/models"
)

// ConnectionForm is a connection as typed into its form. AuthSecret is the
// new secret (password, token or client secret): left empty on an edit,
// the stored one is kept. It is never filled in from the stored record.
type ConnectionForm struct {
	Name          string
	Environment   string
	EndpointURL   string
	AuthType      string
	AuthUsername  string
	AuthSecret    string
	OAuthTokenURL string
	OAuthClientID string
	OAuthScopes   string
}

// ConnectionFormOf is the form of a stored connection, its secret left out.
func ConnectionFormOf(c *models.Connection) ConnectionForm {
	return ConnectionForm{Name: c.Name, Environment: c.Environment, EndpointURL: c.EndpointURL, AuthType: string(c.AuthType),
		AuthUsername: c.AuthUsername, OAuthTokenURL: c.OAuthTokenURL, OAuthClientID: c.OAuthClientID, OAuthScopes: c.OAuthScopes}
}

// AuthTypes lists the outbound authentication kinds.
var AuthTypes = []models.AuthType{models.AuthNone, models.AuthBasic, models.AuthBearer, models.AuthOAuth2}

const (
	maxURL      = 2000
	maxConnText = 200
)

// ParseConnection checks every value of f and applies it to c (a new
// connection or a copy of the stored one): hasSecret says whether c holds a
// stored secret, which an empty secret field keeps. It returns the new
// secret to seal ("" to keep the stored one, or none for AuthNone, which
// drops it: keep reports which), or a *models.ValidationError naming each
// refused field. Pure: whether the endpoint resolves to a forbidden address
// is CheckEndpoint's to say.
func ParseConnection(f ConnectionForm, c *models.Connection, hasSecret bool) (secret string, keep bool, err error) {
	var ve models.ValidationError
	text := func(field, v, what string, required bool) string {
		v = strings.TrimSpace(v)
		switch p := models.TextProblem(v); {
		case p != "":
			ve.Add(field, p)
		case required && v == "":
			ve.Add(field, "Enter "+what+".")
		case utf8.RuneCountInString(v) > maxConnText:
			ve.Add(field, fmt.Sprintf("Use at most %d characters.", maxConnText))
		}
		return v
	}
	name := text("name", f.Name, "a name for the connection, such as Production", true)
	if !slices.Contains(models.Environments, f.Environment) {
		ve.Add("environment", "Choose one of: "+strings.Join(models.Environments, ", ")+".")
	}
	endpoint := strings.TrimSpace(f.EndpointURL)
	if msg := urlProblem(endpoint, "the endpoint URL"); msg != "" {
		ve.Add("endpoint_url", msg)
	}
	auth := models.AuthType(f.AuthType)
	if !slices.Contains(AuthTypes, auth) {
		ve.Add("auth_type", "Choose none, basic, bearer or OAuth2 client credentials.")
	}
	if p := models.TextProblem(f.AuthSecret); p != "" {
		ve.Add("auth_secret", p)
	} else if len(f.AuthSecret) > 4096 {
		ve.Add("auth_secret", "Use at most 4096 bytes.")
	}
	needSecret := func(what string) {
		if f.AuthSecret == "" && (!hasSecret || c.AuthType != auth) {
			ve.Add("auth_secret", "Enter the "+what+".")
		}
	}
	var user, tokenURL, clientID, scopes string
	switch auth {
	case models.AuthBasic:
		user = text("auth_username", f.AuthUsername, "the user name", true)
		needSecret("password")
	case models.AuthBearer:
		needSecret("bearer token")
	case models.AuthOAuth2:
		tokenURL = strings.TrimSpace(f.OAuthTokenURL)
		if msg := urlProblem(tokenURL, "the token URL"); msg != "" {
			ve.Add("oauth_token_url", msg)
		}
		clientID = text("oauth_client_id", f.OAuthClientID, "the client ID", true)
		scopes = text("oauth_scopes", f.OAuthScopes, "", false)
		needSecret("client secret")
	}
	if err := ve.Err(); err != nil {
		return "", false, err
	}
	c.Name, c.Environment, c.EndpointURL, c.AuthType = name, f.Environment, endpoint, auth
	c.AuthUsername, c.OAuthTokenURL, c.OAuthClientID, c.OAuthScopes = user, tokenURL, clientID, scopes
	if auth == models.AuthNone {
		return "", false, nil
	}
	return f.AuthSecret, f.AuthSecret == "", nil
}

// urlProblem says why raw is not an endpoint we can call, or "".
func urlProblem(raw, what string) string {
	if raw == "" {
		return "Enter " + what + ", such as https://itsm.example.com/api/v1/integrations/acme/messages."
	}
	if p := models.TextProblem(raw); p != "" {
		return p
	}
	if len(raw) > maxURL {
		return fmt.Sprintf("Use at most %d characters.", maxURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		return "Enter a full address starting with https:// or http://, such as https://itsm.example.com/api."
	case u.User != nil:
		return "Put the user name and password under Authentication, not in the address: addresses are shown and logged."
	case u.Fragment != "" || strings.ContainsAny(raw, " \t\r\n"):
		return "Remove the spaces or the # part from the address."
	}
	return ""
}

// metadataIPv6 is the cloud metadata service's IPv6 address (AWS).
var metadataIPv6 = net.ParseIP("fd00:ec2::254")

// Forbidden reports whether ip is a link-local or metadata address: a
// connection must not reach the cloud metadata service or the host's
// neighbours unless the operator allows it (ALLOW_LINK_LOCAL_ENDPOINTS).
func Forbidden(ip net.IP) bool {
	return ip.IsLinkLocalUnicast() || ip.Equal(metadataIPv6) || ip.IsLinkLocalMulticast()
}
