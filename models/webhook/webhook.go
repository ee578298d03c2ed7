// Package webhook receives requests in a remote system's own shape (a
// ServiceNow business-rule webhook, a Jira webhook): the integration's inbound
// message scripts (docs/scripting.md) identify and translate each into our
// envelope, which the inbound API then receives exactly as an envelope: the
// same refusals, duplicates by message ID, per-bond order and process errors.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"

	"unifi/models/inbound"

	"unifi/models"
	"unifi/models/script"
)

// Service translates and receives webhook requests.
type Service struct {
	db      *gorm.DB
	inbound *inbound.Service
	scripts *script.Engine
	now     func() time.Time
}

// New returns a Service that reads scripts from db, runs them on scripts and
// hands the envelopes to in.
func New(db *gorm.DB, in *inbound.Service, scripts *script.Engine) *Service {
	return &Service{db: db, inbound: in, scripts: scripts, now: time.Now}
}

func refuse(kind inbound.RefusalKind, reason string) *inbound.Refusal {
	return &inbound.Refusal{Kind: kind, Reason: reason}
}

func refuseDetail(kind inbound.RefusalKind, reason, detail string) *inbound.Refusal {
	return &inbound.Refusal{Kind: kind, Reason: reason, Detail: detail}
}

// rawScripts is what translating needs of one integration.
type rawScripts struct {
	integrationID int64
	messages      []models.Message
	scripts       map[int64]map[script.Point]models.MessageScript // by message id
	vars          map[string]string
}

// ReceiveRaw authenticates a request in the remote's own shape, translates it
// with the integration's inbound scripts and receives the envelope they make.
// A script that fails refuses the request with the script's name, line and
// message (RefusalScript); nothing is stored but the refusal's HTTP Request
// record. A Stage to Target that calls reject(...) rejects the message as
// business rules would: an update becomes a Rejected transaction with the
// reason as its process error, a create is refused ("Message rejected: ...").
// The scripts' log lines go to the transaction's log.
func (s *Service) ReceiveRaw(ctx context.Context, req inbound.Request) (*inbound.Result, error) {
	// Authenticate before any script runs: an anonymous caller gets no CPU.
	caller, err := s.inbound.AuthenticateInbound(ctx, req.BasicUser, req.BasicPassword, req.HasBasic, req.Bearer, req.Meta.RemoteAddr)
	if err != nil {
		return nil, err
	}
	cfg, err := s.loadRawScripts(ctx, req.Integration)
	if err != nil {
		return nil, err
	}
	env, scripted, err := s.translateRaw(ctx, s.inbound, cfg, req)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("receive raw: %w", err)
	}
	// The caller is authenticated already: straight to the message, not
	// through ReceiveInbound, which would check the password a second time.
	req.Meta.Scripted = scripted
	return s.inbound.ReceiveMessage(ctx, req.Integration, caller, body, req.Meta)
}

// Translator reads the integration's inbound scripts once and returns what
// translates each request in the remote's own shape into our envelope, as
// ReceiveRaw does: the poller (worker/poll) calls it for every item of a
// page and receives the envelope on the inbound path in the page's
// database transaction; the scripts' findBond reads through in (the page's
// inbound.Service.InTx, so an item sees the bonds earlier items made). It is
// nil when no inbound message of the integration has an Identify message
// script: the items are then envelopes.
func (s *Service) Translator(ctx context.Context, integration string) (TranslateFunc, error) {
	cfg, err := s.loadRawScripts(ctx, integration)
	if err != nil {
		return nil, err
	}
	for _, m := range cfg.messages {
		if _, ok := cfg.scripts[m.ID][script.Identify]; ok {
			return func(ctx context.Context, in *inbound.Service, req inbound.Request) (*models.Envelope, *inbound.Scripted, error) {
				return s.translateRaw(ctx, in, cfg, req)
			}, nil
		}
	}
	return nil, nil
}

// TranslateFunc translates one request in the remote's own shape into our
// envelope and what the scripts decided beside it (a rejection, their log
// lines: for the request's RequestMeta.Scripted); in is the inbound service
// the scripts' findBond reads through.
type TranslateFunc func(ctx context.Context, in *inbound.Service, req inbound.Request) (*models.Envelope, *inbound.Scripted, error)

// loadRawScripts reads the integration's inbound messages, their scripts and
// its active connection's variables. Configuration, so GORM; the programs
// themselves are compiled once per script version by the engine.
func (s *Service) loadRawScripts(ctx context.Context, integration string) (*rawScripts, error) {
	db := s.db.WithContext(ctx)
	var in models.Integration
	if err := db.Where("name = ?", integration).Take(&in).Error; err != nil {
		return nil, refuse(inbound.RefusalUnknownIntegration, fmt.Sprintf("No integration named %q", integration))
	}
	cfg := &rawScripts{integrationID: in.ID, scripts: map[int64]map[script.Point]models.MessageScript{}, vars: map[string]string{}}
	if err := db.Where("integration_id = ? AND direction IN ?", in.ID, []models.Direction{models.Inbound, models.Bidirectional}).
		Order("id").Find(&cfg.messages).Error; err != nil {
		return nil, fmt.Errorf("load inbound scripts: %w", err)
	}
	var scripts []models.MessageScript
	if err := db.Joins("JOIN messages m ON m.id = message_scripts.message_id").
		Where("m.integration_id = ?", in.ID).Find(&scripts).Error; err != nil {
		return nil, fmt.Errorf("load inbound scripts: %w", err)
	}
	for _, sc := range scripts {
		if cfg.scripts[sc.MessageID] == nil {
			cfg.scripts[sc.MessageID] = map[script.Point]models.MessageScript{}
		}
		cfg.scripts[sc.MessageID][script.Point(sc.Point)] = sc
	}
	var vars []models.ConnectionVariable
	if err := db.Joins("JOIN connections c ON c.id = connection_variables.connection_id AND c.active").
		Where("c.integration_id = ?", in.ID).Find(&vars).Error; err != nil {
		return nil, fmt.Errorf("load inbound scripts: %w", err)
	}
	for _, v := range vars {
		cfg.vars[v.Name] = v.Value
	}
	return cfg, nil
}

// refuseScript turns a script failure into a refusal with the script's words.
func refuseScript(err error) error {
	if se := script.AsError(err); se != nil {
		return refuse(inbound.RefusalScript, "Error processing request: "+se.Error())
	}
	return err
}

// translateRaw runs Identify message on every inbound message with one (in
// id order) until one claims the request, then that message's Reference
// lookup, Payload to Stage and Stage to Target. Their findBond reads through
// lookups. Beside the envelope it returns what the scripts decided that the
// envelope cannot carry: Stage to Target's rejection and every script's log
// lines, in the order they ran.
func (s *Service) translateRaw(ctx context.Context, lookups *inbound.Service, cfg *rawScripts, req inbound.Request) (*models.Envelope, *inbound.Scripted, error) {
	var body any
	if json.Unmarshal(req.Body, &body) != nil {
		body = nil
	}
	headers := map[string]any{}
	for k, v := range req.Meta.Header {
		if lk := strings.ToLower(k); lk != "authorization" && lk != "cookie" {
			headers[lk] = strings.Join(v, ", ")
		}
	}
	in := script.Input{Vars: cfg.vars, Request: map[string]any{"method": req.Meta.Method, "url": req.Meta.URL,
		"headers": headers, "body": body, "text": string(req.Body)},
		FindBond: func(ref string) (map[string]any, error) { return lookups.FindBond(ctx, cfg.integrationID, ref) }}
	run := func(m *models.Message, p script.Point) (script.Script, bool) {
		sc, ok := cfg.scripts[m.ID][p]
		return script.Script{ID: sc.ID, Version: sc.Version, Point: p, Source: sc.Source, Name: m.Name + " / " + p.Label()}, ok
	}
	scripted := &inbound.Scripted{}
	var msg *models.Message
	for i := range cfg.messages {
		m := &cfg.messages[i]
		spec, ok := run(m, script.Identify)
		if !ok {
			continue
		}
		out, err := s.scripts.Run(spec, in)
		scripted.AddLogs(out.Logs)
		if err != nil {
			return nil, nil, refuseScript(err)
		}
		switch v := out.Value.(type) {
		case bool:
			if v {
				msg = m
			}
		case string:
			for j := range cfg.messages {
				if cfg.messages[j].Name == v {
					msg = &cfg.messages[j]
				}
			}
			if msg == nil && v != "" {
				return nil, nil, refuseDetail(inbound.RefusalUnknownName, inbound.TextUnknownMessageName, fmt.Sprintf("%s named %q", spec.Name, v))
			}
		case nil:
		default:
			return nil, nil, refuseScript(&script.Error{Script: spec.Name, Kind: script.KindResult,
				Message: "must return true, false, a message name or nothing"})
		}
		if msg != nil {
			break
		}
	}
	if msg == nil {
		return nil, nil, refuse(inbound.RefusalNoName, inbound.TextNoMessageName)
	}
	env := &models.Envelope{Message: models.EnvelopeHeader{Name: msg.Name, TimeStamp: s.now().UTC()}}
	if spec, ok := run(msg, script.ReferenceLookup); ok {
		ref, out, err := s.scripts.Object(spec, in, false)
		scripted.AddLogs(out.Logs)
		if err != nil {
			return nil, nil, refuseScript(err)
		}
		str := func(k string) string {
			if v, ok := ref[k]; ok && v != nil {
				return strings.TrimSpace(fmt.Sprint(v))
			}
			return ""
		}
		env.Message.SourceReference, env.Message.TargetReference = str("source_reference"), str("target_reference")
		env.Message.SourceID, env.Message.TargetID = str("message_id"), str("target_id")
	}
	stage, _ := body.(map[string]any)
	if spec, ok := run(msg, script.PayloadToStage); ok {
		m, out, err := s.scripts.Object(spec, in, false)
		scripted.AddLogs(out.Logs)
		if err != nil {
			return nil, nil, refuseScript(err)
		}
		stage = m
	}
	if spec, ok := run(msg, script.StageToTarget); ok {
		in.Stage = stage
		m, out, err := s.scripts.Object(spec, in, true)
		scripted.AddLogs(out.Logs)
		switch {
		case err != nil:
			return nil, nil, refuseScript(err)
		case out.Rejected != "":
			// A rejection is the message's outcome, not a failed script:
			// the inbound path records it as business rules' would be.
			scripted.Rejected = out.Rejected
		case m != nil:
			stage = m
		}
	}
	if stage == nil && scripted.Rejected != "" {
		stage = map[string]any{} // rejected: nothing of it is applied
	}
	if stage == nil {
		return nil, nil, refuseScript(&script.Error{Script: msg.Name, Kind: script.KindResult,
			Message: "the request has no Stage: the body is not a JSON object and there is no Payload to Stage script"})
	}
	env.Data = stage
	if env.Message.SourceID == "" {
		return nil, nil, refuseScript(&script.Error{Script: msg.Name + " / " + script.ReferenceLookup.Label(),
			Kind: script.KindResult, Message: "no message_id: duplicates could not be recognised"})
	}
	return env, scripted, nil
}
