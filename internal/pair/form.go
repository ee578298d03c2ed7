package pair

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
)

// adminClient is a browser-like client of one instance, logged in as an
// admin: the pair's integrations are made through the product's own forms,
// as an admin would, not by writing the database.
type adminClient struct {
	base string
	http *http.Client
}

var (
	csrfField = regexp.MustCompile(`name="_csrf" value="([^"]+)"`)
	// option finds an <option> of a select by its label.
	option = func(label string) *regexp.Regexp {
		return regexp.MustCompile(`<option value="(\d+)"[^>]*>` + regexp.QuoteMeta(label) + `</option>`)
	}
)

// login opens a session as name.
func login(ctx context.Context, base, name, password string) (*adminClient, error) {
	jar, _ := cookiejar.New(nil)
	c := &adminClient{base: base, http: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	page, err := c.get(ctx, "/login")
	if err != nil {
		return nil, err
	}
	if _, err := c.post(ctx, "/login", page, url.Values{"name": {name}, "password": {password}}); err != nil {
		return nil, fmt.Errorf("log in as %s: %w", name, err)
	}
	return c, nil
}

func (c *adminClient) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return "", err
	}
	res, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", path, res.Status)
	}
	return string(body), nil
}

// post submits a form with the CSRF token of page and expects the 303 of a
// success; it returns where it redirects.
func (c *adminClient) post(ctx context.Context, path, page string, form url.Values) (string, error) {
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("POST %s: no CSRF token on the form's page", path)
	}
	form.Set("_csrf", m[1])
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.http.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusSeeOther {
		return "", fmt.Errorf("POST %s: %s: %s", path, res.Status, fieldErrors(string(body)))
	}
	return res.Header.Get("Location"), nil
}

var fieldError = regexp.MustCompile(`class="field-error"[^>]*>([^<]*)<`)

// fieldErrors collects the messages a refused form shows next to its fields.
func fieldErrors(page string) string {
	var out []string
	for _, m := range fieldError.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return strings.Join(out, "; ")
}

// TemplateForm is what `make pair` types into "New integration from a
// template".
type TemplateForm struct {
	Template     string
	Name         string
	Environment  string
	EndpointURL  string
	Token        string
	InboundLogin string // the integration account, chosen by name in the form's list
}

// createFromTemplate fills in and submits the template form; it returns the
// new integration's page.
func (c *adminClient) createFromTemplate(ctx context.Context, f TemplateForm) (string, error) {
	page, err := c.get(ctx, "/integrations/new/template")
	if err != nil {
		return "", err
	}
	m := option(f.InboundLogin).FindStringSubmatch(page)
	if m == nil {
		return "", fmt.Errorf("the template form offers no integration account %q", f.InboundLogin)
	}
	return c.post(ctx, "/integrations/new/template", page, url.Values{"template": {f.Template}, "name": {f.Name},
		"environment": {f.Environment}, "endpoint_url": {f.EndpointURL}, "token": {f.Token}, "inbound_user_id": {m[1]}})
}
