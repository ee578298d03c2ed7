package designer_test

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"unifi/handlers/handlerstest"
	"unifi/models"
)

// uploadPackage posts a package file to the import form as a browser does.
func uploadPackage(t *testing.T, c *handlerstest.Client, doc []byte) handlerstest.Response {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	require.NoError(t, w.WriteField("_csrf", c.CSRF()))
	f, err := w.CreateFormFile("document", "package.json")
	require.NoError(t, err)
	_, err = f.Write(doc)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return c.Do(http.MethodPost, "/integrations/import", body.String(), w.FormDataContentType(), nil)
}

// TestPackageExportImportPages: an admin exports the demo integration from
// its page, imports it under another name (dry run, then apply), gives the
// new connection its credentials and activates it; every step audited.
func TestPackageExportImportPages(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	admin := app.Login(t, "admin", "admin-demo-1")
	in, err := app.Store.GetIntegrationByName(ctx, models.DemoIntegrationName)
	require.NoError(t, err)

	page := admin.Get(fmt.Sprintf("/integrations/%d", in.ID))
	require.Equal(t, http.StatusOK, page.StatusCode)
	href, ok := page.TestID(t, "export").Attr("href")
	require.True(t, ok)
	res := admin.Get(href)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, `attachment; filename="demo.unifi.json"`, res.Header.Get("Content-Disposition"))
	require.Contains(t, res.Body, `"format": 2`)
	require.NotContains(t, res.Body, models.DemoPeerToken)

	doc := strings.Replace(res.Body, `"name": "demo"`, `"name": "copy"`, 1)
	plan := uploadPackage(t, admin, []byte(doc))
	require.Equal(t, http.StatusOK, plan.StatusCode, plan.Body)
	require.Contains(t, plan.TestID(t, "plan-summary").Text(), "Importing integration copy")
	require.Equal(t, 6, plan.TestID(t, "plan-create").Length(), "integration, connection, four messages")
	require.Equal(t, 1, plan.TestID(t, "plan-keep").Length(), "the Incident process exists")
	require.Equal(t, 1, plan.TestID(t, "need-credentials").Length())
	require.EqualValues(t, 1, app.CountRows(t, "integrations"), "the dry run stores nothing")

	form := url.Values{}
	digest, _ := plan.Doc(t).Find(`input[name="digest"]`).Attr("value")
	text := plan.Doc(t).Find(`textarea[name="document_text"]`).Text()
	require.Equal(t, doc, text, "the plan page carries the document as uploaded")
	form.Set("digest", digest)
	form.Set("document_text", text)

	// Another admin changes the configuration meanwhile: the plan is stale.
	require.NoError(t, app.Store.DB(ctx).Exec("UPDATE processes SET number_prefix = 'INCX'").Error)
	stale := admin.PostForm("/integrations/import/apply", form)
	require.Equal(t, http.StatusConflict, stale.StatusCode)
	require.Contains(t, stale.TestID(t, "error-message").Text(), "changed since the dry run")
	require.EqualValues(t, 1, app.CountRows(t, "integrations"))
	require.NoError(t, app.Store.DB(ctx).Exec("UPDATE processes SET number_prefix = 'INC'").Error)

	done := admin.PostForm("/integrations/import/apply", form)
	require.Equal(t, http.StatusSeeOther, done.StatusCode, done.Body)
	copied, err := app.Store.GetIntegrationByName(ctx, "copy")
	require.NoError(t, err)
	require.Equal(t, fmt.Sprintf("/integrations/%d/credentials", copied.ID), done.Header.Get("Location"))
	again := admin.Get(fmt.Sprintf("/integrations/%d/export", copied.ID))
	require.Equal(t, doc, again.Body, "the imported integration exports as the document")

	cred := admin.Get(done.Header.Get("Location"))
	require.Equal(t, http.StatusOK, cred.StatusCode)
	require.Contains(t, cred.TestID(t, "secret-state").Text(), "missing")
	require.Equal(t, 1, cred.TestID(t, "connection-inactive").Length())
	action, _ := cred.TestID(t, "credentials-form").Attr("action")
	var peer models.User
	require.NoError(t, app.Store.DB(ctx).Where("name = ?", models.DemoPeerAccount.Name).Take(&peer).Error)

	refused := admin.PostForm(action, url.Values{"activate": {"true"}})
	require.Equal(t, http.StatusUnprocessableEntity, refused.StatusCode)
	require.Contains(t, refused.TestID(t, "error-secret").Text(), "give its secret before activating it")

	saved := admin.PostForm(action, url.Values{"secret": {"the-new-token"}, "inbound_user_id": {fmt.Sprint(peer.ID)}, "activate": {"true"}})
	require.Equal(t, http.StatusSeeOther, saved.StatusCode, saved.Body)
	conn, err := app.Store.ActiveConnection(ctx, copied.ID)
	require.NoError(t, err)
	require.Equal(t, "the-new-token", conn.AuthSecret)
	require.Equal(t, peer.ID, *conn.InboundUserID)
	cred = admin.Get(done.Header.Get("Location"))
	require.NotContains(t, cred.Body, "the-new-token", "a secret is never shown back")
	require.Equal(t, 1, cred.TestID(t, "connection-active").Length())

	for _, action := range []string{"import package", "set connection credentials"} {
		var log models.ActivityLog
		require.NoError(t, app.Store.DB(ctx).Where("action = ? AND user_name = 'admin'", action).Take(&log).Error, action)
	}
}

// TestPackageRoles: export, documentation and credentials are configuration
// pages (admin and manager); import and saving credentials change it (admin).
func TestPackageRoles(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	in, err := app.Store.GetIntegrationByName(context.Background(), models.DemoIntegrationName)
	require.NoError(t, err)
	reads := []string{"/integrations/%d/export", "/integrations/%d/documentation", "/integrations/%d/credentials"}
	for _, who := range []struct {
		name, password string
		read, write    int
	}{{"admin", "admin-demo-1", 200, 200}, {"manager", "manager-demo-1", 200, 403}, {"analyst", "analyst-demo-1", 403, 403}} {
		c := app.Login(t, who.name, who.password)
		for _, p := range reads {
			require.Equal(t, who.read, c.Get(fmt.Sprintf(p, in.ID)).StatusCode, "%s GET %s", who.name, p)
		}
		require.Equal(t, who.write, c.Get("/integrations/import").StatusCode, who.name)
		if who.write == 403 {
			res := c.PostForm("/integrations/import", url.Values{"document_text": {"{}"}})
			require.Equal(t, http.StatusForbidden, res.StatusCode, who.name)
			require.Contains(t, res.Body, "change integration configuration", "the 403 says why")
			res = c.PostForm("/integrations/import/apply", url.Values{"document_text": {"{}"}, "digest": {"x"}})
			require.Equal(t, http.StatusForbidden, res.StatusCode, who.name)
			res = c.PostForm("/connections/1/credentials", url.Values{"secret": {"x"}})
			require.Equal(t, http.StatusForbidden, res.StatusCode, who.name)
		}
		cred := c.Get(fmt.Sprintf("/integrations/%d/credentials", in.ID))
		if who.name == "manager" {
			require.Zero(t, cred.TestID(t, "credentials-form").Length(), "read-only for a manager")
		}
	}
}

// TestHostilePackageImport: hostile documents, as upload and as text, and a
// hostile apply or credentials form: a 4xx naming the place, no 5xx, and
// nothing stored.
func TestHostilePackageImport(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	admin := app.Login(t, "admin", "admin-demo-1")
	good := admin.Get("/integrations/1/export").Body
	require.Contains(t, good, `"format": 2`)
	counts := func() string {
		var parts []string
		for _, tbl := range []string{"processes", "process_fields", "integrations", "connections", "messages", "fields", "response_actions", "activity_logs"} {
			parts = append(parts, fmt.Sprintf("%s=%d", tbl, app.CountRows(t, tbl)))
		}
		return strings.Join(parts, " ")
	}
	before := counts()
	docs := map[string]string{
		"UnknownKey":   strings.Replace(good, `"retry_limit"`, `"retry_limit_x"`, 1),
		"WrongType":    strings.Replace(good, `"retry_limit": 3`, `"retry_limit": [3]`, 1),
		"NoSuchMsg":    strings.Replace(good, `"receipt_message": "Receipt"`, `"receipt_message": "Ghost"`, 1),
		"NewerFormat":  strings.Replace(good, `"format": 2`, `"format": 99`, 1),
		"TenMegabytes": `{"format": 1, "integration": {"description": "` + strings.Repeat("A", 10<<20) + `"}}`,
		"Truncated":    good[:len(good)/2],
		"Nesting":      `{"format": 1, "messages": ` + strings.Repeat("[", 50000),
		"HugeNumber":   strings.Replace(good, `"retry_limit": 3`, `"retry_limit": 99999999999999999999999`, 1),
		"HTMLName":     strings.Replace(good, `"name": "demo"`, `"name": "<script>alert(1)</script>"`, 1),
		// Process fields (format 2): a bad one, and a message mapping one the document lacks.
		"ProcessField": strings.Replace(good, `"fields": []`, `"fields": [{"name": "Risk!", "label": "Risk", "type": "text"}]`, 1),
		"NoSuchField":  strings.Replace(good, `"ticket_field": "description"`, `"ticket_field": "custom.ghost"`, 1),
	}
	for _, h := range handlerstest.Hostile {
		docs["Hostile"+h.Name] = h.Value
		docs["HostileIn"+h.Name] = strings.Replace(good, `"Peer instance"`, fmt.Sprintf("%q", h.Value), 1)
	}
	for name, doc := range docs {
		for _, how := range []string{"upload", "text"} {
			var res handlerstest.Response
			if how == "upload" {
				res = uploadPackage(t, admin, []byte(doc))
			} else if len(doc) < 900_000 { // the text field is a form value: the UI's form limit applies
				res = admin.PostForm("/integrations/import", url.Values{"document_text": {doc}})
			} else {
				continue
			}
			what := fmt.Sprintf("%s as %s", name, how)
			handlerstest.CheckAnswer(t, what, res.StatusCode, res.Body)
			if res.StatusCode == http.StatusOK { // a valid document: its plan; apply it with a forged digest
				res = admin.PostForm("/integrations/import/apply", url.Values{"document_text": {doc}, "digest": {"forged"}})
				require.Equal(t, http.StatusConflict, res.StatusCode, what)
				continue
			}
			require.GreaterOrEqual(t, res.StatusCode, 400, what)
			require.NotContains(t, res.Body, "<script>alert(1)</script>", what)
			require.Equal(t, before, counts(), "%s: nothing stored", what)
		}
	}
	big := uploadPackage(t, admin, []byte(docs["TenMegabytes"]))
	require.Equal(t, http.StatusUnprocessableEntity, big.StatusCode)
	require.Contains(t, big.TestID(t, "field-error-document").Text(), "larger than the limit of 2 MB")
	unknown := uploadPackage(t, admin, []byte(docs["UnknownKey"]))
	require.Contains(t, unknown.TestID(t, "field-error-document").Text(), "integration.retry_limit_x: unknown key")
	ghost := uploadPackage(t, admin, []byte(docs["NoSuchMsg"]))
	require.Contains(t, ghost.Body, `there is no message called &#34;Ghost&#34; in this document`)

	for _, h := range handlerstest.Hostile {
		for _, field := range []string{"secret", "inbound_user_id", "activate"} {
			res := admin.PostForm("/connections/1/credentials", url.Values{field: {h.Value}})
			handlerstest.CheckAnswer(t, "credentials "+field+"="+h.Name, res.StatusCode, res.Body)
		}
		res := admin.PostForm("/integrations/import/apply", url.Values{"document_text": {good}, "digest": {h.Value}})
		handlerstest.CheckAnswer(t, "apply digest="+h.Name, res.StatusCode, res.Body)
		require.GreaterOrEqual(t, res.StatusCode, 400)
	}
}

// TestNewIntegrationFromTemplate: the template form creates the integration
// with the template's messages and an active connection; refused values come
// back next to their fields with nothing stored, hostile ones never a 5xx.
func TestNewIntegrationFromTemplate(t *testing.T) {
	t.Parallel()
	app := handlerstest.New(t, nil)
	ctx := context.Background()
	db := app.Store.DB(ctx)
	admin := app.Login(t, "admin", "admin-demo-1")
	require.Equal(t, "/integrations/new/template",
		attr(t, admin.Get("/integrations").TestID(t, "new-from-template"), "href"))
	form := admin.Get("/integrations/new/template")
	require.Equal(t, http.StatusOK, form.StatusCode)
	var peer models.User
	require.NoError(t, db.Where("name = ?", models.DemoPeerAccount.Name).Take(&peer).Error)
	valid := url.Values{"template": {"unifi-envelope"}, "name": {"other-side"}, "environment": {"Test"},
		"endpoint_url": {"https://peer.example.com/api/v1/integrations/other-side/messages"}, "token": {"their-token"},
		"inbound_user_id": {fmt.Sprint(peer.ID)}}

	before := fmt.Sprint(app.CountRows(t, "integrations"), app.CountRows(t, "messages"), app.CountRows(t, "connections"))
	for field := range valid {
		for _, h := range handlerstest.Hostile {
			f := url.Values{}
			for k, v := range valid {
				f[k] = v
			}
			f.Set(field, h.Value)
			res := admin.PostForm("/integrations/new/template", f)
			what := fmt.Sprintf("template form %s=%s", field, h.Name)
			handlerstest.CheckAnswer(t, what, res.StatusCode, res.Body)
			if res.StatusCode == http.StatusSeeOther { // a value that is valid here (a name of digits, any description)
				var got models.Integration
				require.NoError(t, db.Where("name = ?", f.Get("name")).Take(&got).Error, what)
				if field == "description" && h.Value != "" {
					require.Equal(t, h.Value, got.Description, what)
				}
				require.NoError(t, db.Exec("DELETE FROM integrations WHERE id = ?", got.ID).Error)
			}
			require.Equal(t, before, fmt.Sprint(app.CountRows(t, "integrations"), app.CountRows(t, "messages"),
				app.CountRows(t, "connections")), "%s: nothing stored", what)
		}
	}
	res := admin.PostForm("/integrations/new/template", url.Values{"template": {"unifi-envelope"}, "name": {"demo"}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	for _, f := range []string{"endpoint_url", "token", "inbound_user_id"} {
		require.Equal(t, 1, res.TestID(t, "error-"+f).Length(), f)
	}

	res = admin.PostForm("/integrations/new/template", valid)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	in, err := app.Store.GetIntegrationByName(ctx, "other-side")
	require.NoError(t, err)
	conn, err := app.Store.ActiveConnection(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, "their-token", conn.AuthSecret)
	require.Equal(t, "Test", conn.Environment)
	require.Equal(t, peer.ID, *conn.InboundUserID)
	msgs, err := app.Store.ListMessages(ctx, in.ID)
	require.NoError(t, err)
	var names []string
	for _, m := range msgs {
		names = append(names, m.Name)
	}
	require.Equal(t, []string{"CreateIncident", "Receipt", "ResolveIncident", "UpdateIncident"}, names)

	res = admin.PostForm("/integrations/new/template", valid)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-name").Text(), `"other-side" already exists`)
	require.NotContains(t, res.Body, "their-token", "the token is not shown back")

	// The ServiceNow template authenticates with a user name and password, and brings its scripts.
	sn := url.Values{"template": {"servicenow-table-api"}, "name": {"servicenow"}, "environment": {"Test"},
		"endpoint_url": {"https://dev1234.service-now.com"}, "token": {"sn-password"}, "inbound_user_id": {fmt.Sprint(peer.ID)}}
	res = admin.PostForm("/integrations/new/template", sn)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode)
	require.Contains(t, res.TestID(t, "error-username").Text(), "user name")
	sn.Set("username", "unifi.integration")
	res = admin.PostForm("/integrations/new/template", sn)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, res.Body)
	in, err = app.Store.GetIntegrationByName(ctx, "servicenow")
	require.NoError(t, err)
	conn, err = app.Store.ActiveConnection(ctx, in.ID)
	require.NoError(t, err)
	require.Equal(t, models.AuthBasic, conn.AuthType)
	require.Equal(t, "unifi.integration", conn.AuthUsername)
	require.Equal(t, "sn-password", conn.AuthSecret)
	var scripts int64
	require.NoError(t, db.Model(&models.MessageScript{}).Where("message_id IN (SELECT id FROM messages WHERE integration_id = ?)", in.ID).
		Count(&scripts).Error)
	require.EqualValues(t, 15, scripts, "the template's message scripts")
	vars, err := app.Store.ConnectionVariables(ctx, conn.ID)
	require.NoError(t, err)
	require.Equal(t, "Solved (Permanently)", vars["close_code"])

	manager := app.Login(t, "manager", "manager-demo-1")
	require.Equal(t, http.StatusForbidden, manager.PostForm("/integrations/new/template", valid).StatusCode)
	require.Zero(t, manager.Get("/integrations").TestID(t, "new-from-template").Length())
}

func attr(t *testing.T, s interface{ Attr(string) (string, bool) }, name string) string {
	t.Helper()
	v, ok := s.Attr(name)
	require.True(t, ok, "attribute %s", name)
	return v
}
