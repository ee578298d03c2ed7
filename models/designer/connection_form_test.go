package designer_test

import (
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/models"
	"unifi/models/designer"
)

func TestParseConnection(t *testing.T) {
	t.Parallel()
	valid := func() designer.ConnectionForm {
		return designer.ConnectionForm{Name: "Production", Environment: "Production", EndpointURL: "https://itsm.example.com/api",
			AuthType: "basic", AuthUsername: "unifi", AuthSecret: "pw"}
	}
	tests := []struct {
		name      string
		change    func(f *designer.ConnectionForm)
		stored    *models.Connection // an edit of this stored connection; nil: a new one
		field     string
		wantKeep  bool
		wantPlain string
	}{
		{"Valid", func(*designer.ConnectionForm) {}, nil, "", false, "pw"},
		{"NoName", func(f *designer.ConnectionForm) { f.Name = "" }, nil, "name", false, ""},
		{"Environment", func(f *designer.ConnectionForm) { f.Environment = "Staging" }, nil, "environment", false, ""},
		{"NoScheme", func(f *designer.ConnectionForm) { f.EndpointURL = "itsm.example.com" }, nil, "endpoint_url", false, ""},
		{"FTP", func(f *designer.ConnectionForm) { f.EndpointURL = "ftp://x.example.com" }, nil, "endpoint_url", false, ""},
		{"CredentialsInURL", func(f *designer.ConnectionForm) { f.EndpointURL = "https://u:p@x.example.com" }, nil, "endpoint_url", false, ""},
		{"AuthKind", func(f *designer.ConnectionForm) { f.AuthType = "ntlm" }, nil, "auth_type", false, ""},
		{"BasicNoUser", func(f *designer.ConnectionForm) { f.AuthUsername = "" }, nil, "auth_username", false, ""},
		{"BasicNoSecret", func(f *designer.ConnectionForm) { f.AuthSecret = "" }, nil, "auth_secret", false, ""},
		{"EditKeepsSecret", func(f *designer.ConnectionForm) { f.AuthSecret = "" },
			&models.Connection{AuthType: models.AuthBasic, AuthSecret: "v1:x"}, "", true, ""},
		{"KindChangeNeedsSecret", func(f *designer.ConnectionForm) { f.AuthSecret = "" },
			&models.Connection{AuthType: models.AuthBearer, AuthSecret: "v1:x"}, "auth_secret", false, ""},
		{"OAuthNoTokenURL", func(f *designer.ConnectionForm) { f.AuthType, f.OAuthClientID = "oauth2", "cid" }, nil, "oauth_token_url", false, ""},
		{"OAuthNoClient", func(f *designer.ConnectionForm) {
			f.AuthType, f.OAuthTokenURL = "oauth2", "https://x.example.com/token"
		}, nil, "oauth_client_id", false, ""},
		{"NoneDropsSecret", func(f *designer.ConnectionForm) { f.AuthType = "none" }, nil, "", false, ""},
		{"SecretNUL", func(f *designer.ConnectionForm) { f.AuthSecret = "a\x00" }, nil, "auth_secret", false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := valid()
			tc.change(&f)
			c := &models.Connection{}
			if tc.stored != nil {
				c = tc.stored
			}
			plain, keep, err := designer.ParseConnection(f, c, c.AuthSecret != "")
			if tc.field == "" {
				require.NoError(t, err)
				require.Equal(t, tc.wantKeep, keep)
				require.Equal(t, tc.wantPlain, plain)
				return
			}
			var ve *models.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Contains(t, ve.Fields, tc.field, "%v", ve.Fields)
			require.NotEmpty(t, ve.Fields[tc.field])
		})
	}
}

func TestFailedStatus(t *testing.T) {
	t.Parallel()
	for status := 100; status < 600; status++ {
		want := status == 400 || status == 401 || status == 403 || status == 404 || status == 405
		require.Equal(t, want, designer.FailedStatus(status), "HTTP %d", status)
		require.NotEmpty(t, designer.Meaning(status))
	}
	require.Contains(t, designer.Meaning(http.StatusUnauthorized), "credentials")
	require.Contains(t, designer.Meaning(0), "No answer")
}

func TestForbidden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip   string
		want bool
	}{
		{"169.254.169.254", true}, {"169.254.0.1", true}, {"fd00:ec2::254", true}, {"fe80::1", true},
		{"127.0.0.1", false}, {"10.0.0.1", false}, {"fd00:ec2::253", false}, {"93.184.216.34", false}, {"::ffff:169.254.169.254", true},
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, designer.Forbidden(net.ParseIP(tc.ip)), tc.ip)
	}
}
