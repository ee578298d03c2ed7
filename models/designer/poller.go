package designer

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/script"
)

// Pollers and poll processors in the Designer (docs/pollers.md).

// ProcessorForm is the poll processor form as typed.
type ProcessorForm struct {
	Name, SetupScript, RequestScript, ResponseScript string
}

// ProcessorFormOf is the form of a stored processor.
func ProcessorFormOf(p *models.PollProcessor) ProcessorForm {
	return ProcessorForm{Name: p.Name, SetupScript: p.SetupScript, RequestScript: p.RequestScript, ResponseScript: p.ResponseScript}
}

// maxScriptLen is the longest script a processor keeps (migration 00260).
const maxScriptLen = 100000

// ParseProcessor checks a processor form and applies it to p; a script that
// does not compile is refused with its line, next to it.
func ParseProcessor(f ProcessorForm, p *models.PollProcessor) error {
	ve := &models.ValidationError{}
	name := strings.TrimSpace(f.Name)
	if name == "" || len(name) > 100 {
		ve.Add("name", "Give the processor a name of 1 to 100 characters.")
	}
	scripts := []struct {
		field, src string
		point      script.Point
		required   bool
	}{{"setup_script", f.SetupScript, script.PollSetup, false}, {"request_script", f.RequestScript, script.PollRequest, true},
		{"response_script", f.ResponseScript, script.PollResponse, true}}
	for _, s := range scripts {
		switch {
		case strings.TrimSpace(s.src) == "" && s.required:
			ve.Add(s.field, "The "+s.point.Label()+" script is required: it is what the poll does.")
		case len(s.src) > maxScriptLen:
			ve.Add(s.field, fmt.Sprintf("A script is at most %d characters.", maxScriptLen))
		case strings.TrimSpace(s.src) != "":
			if err := script.Compile(script.Script{Name: name + " / " + s.point.Label(), Point: s.point, Source: s.src}); err != nil {
				ve.Add(s.field, err.Error())
			}
		}
	}
	if err := ve.Err(); err != nil {
		return err
	}
	p.Name, p.SetupScript, p.RequestScript, p.ResponseScript = name, f.SetupScript, f.RequestScript, f.ResponseScript
	return nil
}

// PollerForm is the poller form as typed.
type PollerForm struct {
	Name        string
	ProcessorID string
	Schedule    string // "every" or "cron"
	EveryS      string
	Cron        string
	Active      bool
	RunAsUserID string // "" : the active connection's inbound account
}

// PollerFormOf is the form of a stored poller.
func PollerFormOf(p *models.Poller) PollerForm {
	f := PollerForm{Name: p.Name, ProcessorID: strconv.FormatInt(p.ProcessorID, 10), Schedule: "cron", Cron: p.Cron, Active: p.Active}
	if p.EveryS != nil {
		f.Schedule, f.EveryS = "every", strconv.Itoa(*p.EveryS)
	}
	if p.RunAsUserID != nil {
		f.RunAsUserID = strconv.FormatInt(*p.RunAsUserID, 10)
	}
	return f
}

// ParsePoller checks a poller form against the integration's processors and
// the accounts it may run as, and applies it to p.
func ParsePoller(f PollerForm, p *models.Poller, processors []models.PollProcessor, accounts []models.User) error {
	ve := &models.ValidationError{}
	name := strings.TrimSpace(f.Name)
	if name == "" || len(name) > 100 {
		ve.Add("name", "Give the poller a name of 1 to 100 characters.")
	}
	procID, _ := strconv.ParseInt(f.ProcessorID, 10, 64)
	found := false
	for _, pr := range processors {
		found = found || pr.ID == procID
	}
	if !found {
		ve.Add("processor_id", "Choose one of the integration's poll processors (create one first).")
	}
	var every *int
	expr := ""
	switch f.Schedule {
	case "every":
		n, err := strconv.Atoi(strings.TrimSpace(f.EveryS))
		if err != nil {
			ve.Add("every_s", "Give the interval as a whole number of seconds.")
		} else {
			every = &n
		}
	case "cron":
		expr = strings.TrimSpace(f.Cron)
	default:
		ve.Add("schedule", "Choose an interval or a cron expression.")
	}
	if _, bad := ve.Fields["every_s"]; !bad && (f.Schedule == "every" || f.Schedule == "cron") {
		if _, err := models.ParseSchedule(every, expr); err != nil {
			field := "every_s"
			if f.Schedule == "cron" {
				field = "cron"
			}
			ve.Add(field, strings.ToUpper(err.Error()[:1])+err.Error()[1:]+".")
		}
	}
	var runAs *int64
	if f.RunAsUserID != "" {
		id, _ := strconv.ParseInt(f.RunAsUserID, 10, 64)
		ok := false
		for _, u := range accounts {
			ok = ok || u.ID == id
		}
		if !ok {
			ve.Add("run_as_user_id", "Choose an integration account, or the active connection's inbound account.")
		}
		runAs = &id
	}
	if err := ve.Err(); err != nil {
		return err
	}
	p.Name, p.ProcessorID, p.EveryS, p.Cron, p.Active, p.RunAsUserID = name, procID, every, expr, f.Active, runAs
	return nil
}

func pollNameTaken(err error, what, name string) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("This integration already has a %s named %q.", what, name)}}
	}
	return err
}

// PollProcessors lists an integration's poll processors.
func (d *Designer) PollProcessors(ctx context.Context, integrationID int64) ([]models.PollProcessor, error) {
	var out []models.PollProcessor
	if err := d.store.DB(ctx).Where("integration_id = ?", integrationID).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list poll processors of integration %d: %w", integrationID, err)
	}
	return out, nil
}

// PollProcessor returns one processor.
func (d *Designer) PollProcessor(ctx context.Context, id int64) (*models.PollProcessor, error) {
	var p models.PollProcessor
	if err := d.store.DB(ctx).Take(&p, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("poll processor %d", id))
	}
	return &p, nil
}

// CreatePollProcessor adds a processor to an integration.
func (d *Designer) CreatePollProcessor(ctx context.Context, actor models.Actor, integrationID int64, f ProcessorForm) (*models.PollProcessor, error) {
	p := &models.PollProcessor{IntegrationID: integrationID}
	if err := ParseProcessor(f, p); err != nil {
		return nil, err
	}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&models.Integration{}, integrationID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("integration %d", integrationID))
		}
		return pollNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, p) }), "poll processor", p.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("create poll processor: %w", err)
	}
	return p, nil
}

// UpdatePollProcessor saves an edited processor at version base; the next
// run of every poller using it runs the new scripts.
func (d *Designer) UpdatePollProcessor(ctx context.Context, actor models.Actor, id int64, base int, f ProcessorForm) (*models.PollProcessor, error) {
	var p models.PollProcessor
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&p, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("poll processor %d", id))
		}
		if err := ParseProcessor(f, &p); err != nil {
			return err
		}
		return pollNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &p) }), "poll processor", p.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("update poll processor %d: %w", id, err)
	}
	return &p, nil
}

// DeletePollProcessor deletes a processor no poller runs.
func (d *Designer) DeletePollProcessor(ctx context.Context, actor models.Actor, id int64, base int) error {
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var p models.PollProcessor
		if err := tx.Take(&p, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("poll processor %d", id))
		}
		var users []string
		if err := tx.Model(&models.Poller{}).Where("processor_id = ?", id).Order("name").Pluck("name", &users).Error; err != nil {
			return fmt.Errorf("find pollers of processor: %w", err)
		}
		if len(users) > 0 {
			return &models.ConflictError{Reason: fmt.Sprintf("Poll processor %s is run by poller %s: delete the poller or choose another processor for it first.",
				p.Name, strings.Join(users, ", "))}
		}
		return Delete(tx, actor, base, &p)
	})
	if err != nil {
		return fmt.Errorf("delete poll processor %d: %w", id, err)
	}
	return nil
}

// PollerRow is a poller with its running state, for the pollers page and
// the integration page.
type PollerRow struct {
	models.Poller
	ProcessorName string
	State         models.PollerState
}

// Pollers lists an integration's pollers with their running state.
func (d *Designer) Pollers(ctx context.Context, integrationID int64) ([]PollerRow, error) {
	var out []PollerRow
	var rb pg.Batch
	QueuePollers(&rb, &out, integrationID)
	if err := rb.Run(ctx, d.store.DB(ctx)); err != nil {
		return nil, fmt.Errorf("list pollers of integration %d: %w", integrationID, err)
	}
	return out, nil
}

// QueuePollers queues the read of an integration's pollers, by name, with
// their processor's name and running state, into dst: one statement the
// integration page sends in its own batch (through GORM, a list and two
// lookups per poller were a round trip of their own and 14 % of the page's
// Go CPU in the pages bench). It names models.Poller's columns: keep them
// in step with the model.
func QueuePollers(rb *pg.Batch, dst *[]PollerRow, integrationID int64) {
	pg.QueueScan(rb, func(rows pgx.Rows) error {
		defer rows.Close()
		for rows.Next() {
			var r PollerRow // afresh for each row: a scan writes into the pointers it finds
			p, st := &r.Poller, &r.State
			if err := rows.Scan(&p.ID, &p.IntegrationID, &p.ProcessorID, &p.Name, &p.EveryS, &p.Cron,
				&p.Active, &p.RunAsUserID, &p.Version, &p.CreatedAt, &p.UpdatedAt, &r.ProcessorName,
				&st.Mark, &st.NextRunAt, &st.LeaseOwner, &st.LeaseUntil, &st.Failures, &st.LastError, &st.LastRunAt,
			); err != nil {
				return err
			}
			st.PollerID = p.ID
			*dst = append(*dst, r)
		}
		return rows.Err()
	}, `SELECT p.id, p.integration_id, p.processor_id, p.name, p.every_s, p.cron,
		p.active, p.run_as_user_id, p.version, p.created_at, p.updated_at, pp.name,
		p.mark, p.next_run_at, p.lease_owner, p.lease_until, p.failures, p.last_error, p.last_run_at
		FROM pollers p JOIN poll_processors pp ON pp.id = p.processor_id
		WHERE p.integration_id = $1 ORDER BY p.name`, integrationID)
}

// Poller returns one poller.
func (d *Designer) Poller(ctx context.Context, id int64) (*models.Poller, error) {
	var p models.Poller
	if err := d.store.DB(ctx).Take(&p, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("poller %d", id))
	}
	return &p, nil
}

// IntegrationAccounts are the accounts a poller may run as: integration
// accounts (the role that uses the inbound API).
func (d *Designer) IntegrationAccounts(ctx context.Context) ([]models.User, error) {
	var out []models.User
	if err := d.store.DB(ctx).Where("role = ?", models.RoleIntegration).Order("name").Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list integration accounts: %w", err)
	}
	return out, nil
}

// parsePoller checks f against the integration's processors and accounts.
func (d *Designer) parsePoller(ctx context.Context, f PollerForm, p *models.Poller) error {
	procs, err := d.PollProcessors(ctx, p.IntegrationID)
	if err != nil {
		return err
	}
	accounts, err := d.IntegrationAccounts(ctx)
	if err != nil {
		return err
	}
	return ParsePoller(f, p, procs, accounts)
}

// CreatePoller adds a poller to an integration; when active it runs at once.
func (d *Designer) CreatePoller(ctx context.Context, actor models.Actor, integrationID int64, f PollerForm) (*models.Poller, error) {
	p := &models.Poller{IntegrationID: integrationID}
	if err := d.parsePoller(ctx, f, p); err != nil {
		return nil, err
	}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		return pollNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, p) }), "poller", p.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("create poller: %w", err)
	}
	return p, nil
}

// UpdatePoller saves an edited poller at version base. A changed schedule
// applies from the next run; switching it on makes it due at once.
func (d *Designer) UpdatePoller(ctx context.Context, actor models.Actor, id int64, base int, f PollerForm) (*models.Poller, error) {
	var p models.Poller
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&p, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("poller %d", id))
		}
		was := p.Active
		if err := d.parsePoller(ctx, f, &p); err != nil {
			return err
		}
		if err := pollNameTaken(tx.Transaction(func(tx *gorm.DB) error { return Update(tx, actor, base, &p) }), "poller", p.Name); err != nil {
			return err
		}
		if p.Active && !was {
			// Running state, not configuration: due now, back-off forgotten.
			_, err := pg.Exec(tx, `UPDATE pollers SET next_run_at = now(), failures = 0 WHERE id = $1`, p.ID)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("update poller %d: %w", id, err)
	}
	return &p, nil
}

// DeletePoller deletes a poller and its poll requests.
func (d *Designer) DeletePoller(ctx context.Context, actor models.Actor, id int64, base int) error {
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var p models.Poller
		if err := tx.Take(&p, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("poller %d", id))
		}
		return Delete(tx, actor, base, &p)
	})
	if err != nil {
		return fmt.Errorf("delete poller %d: %w", id, err)
	}
	return nil
}

// PollRequests is a poller's latest runs, newest first.
func (d *Designer) PollRequests(ctx context.Context, pollerID int64, limit int) ([]models.PollRequest, error) {
	var out []models.PollRequest
	if err := d.store.DB(ctx).Where("poller_id = ?", pollerID).Order("id DESC").Limit(limit).Find(&out).Error; err != nil {
		return nil, fmt.Errorf("list poll requests of poller %d: %w", pollerID, err)
	}
	return out, nil
}

// PollRequest is one run with the HTTP requests it made and its child polls.
func (d *Designer) PollRequest(ctx context.Context, id int64) (*models.PollRequest, []models.HTTPRequest, []models.PollRequest, error) {
	db := d.store.DB(ctx)
	var pr models.PollRequest
	if err := db.Take(&pr, id).Error; err != nil {
		return nil, nil, nil, pg.NotFound(err, fmt.Sprintf("poll request %d", id))
	}
	var reqs []models.HTTPRequest
	if err := db.Where("poll_request_id = ?", id).Order("id").Limit(500).Find(&reqs).Error; err != nil {
		return nil, nil, nil, fmt.Errorf("poll request %d: HTTP requests: %w", id, err)
	}
	var children []models.PollRequest
	if err := db.Where("parent_id = ?", id).Order("id").Find(&children).Error; err != nil {
		return nil, nil, nil, fmt.Errorf("poll request %d: child polls: %w", id, err)
	}
	return &pr, reqs, children, nil
}
