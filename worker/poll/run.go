package poll

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"golang.org/x/oauth2"
	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/webhook"
)

// maxPages bounds one run (or child poll): a Response that always gives a
// next page would otherwise poll for ever.
const maxPages = 10000

// maxChildDepth bounds child polls starting child polls.
const maxChildDepth = 3

// run is one claimed run of a poller, with its configuration read when it
// was claimed.
type run struct {
	rn          *Runner
	poller      models.Poller
	integration models.Integration
	conn        models.Connection // its secret opened
	caller      models.User
	vars        map[string]string
	schedule    models.Schedule
	mark        map[string]any // as committed
	failures    int
	dbNow       time.Time // the database's clock at the claim
	claimedAt   time.Time // the local monotonic clock at the claim
	tokens      oauth2.TokenSource
}

// RunDue claims one due poller and runs it; ran is false when none was due.
func (rn *Runner) RunDue(ctx context.Context) (ran bool, err error) {
	var (
		id       int64
		markRaw  []byte
		failures int
		dbNow    time.Time
		found    bool
	)
	err = pg.Query(rn.db.WithContext(ctx), sqlClaim, func(rows *sql.Rows) error {
		found = true
		return rows.Scan(&id, &markRaw, &failures, &dbNow)
	}, rn.owner, rn.lease.Seconds())
	if err != nil {
		return false, fmt.Errorf("claim poller: %w", err)
	}
	if !found {
		return false, nil
	}
	r := &run{rn: rn, failures: failures, dbNow: dbNow, claimedAt: time.Now()}
	r.poller.ID = id
	if err := json.Unmarshal(markRaw, &r.mark); err != nil || r.mark == nil {
		r.mark = map[string]any{}
	}
	return true, r.do(ctx)
}

// do runs a claimed poller and releases it.
func (r *run) do(ctx context.Context) error {
	rn := r.rn
	db := rn.db.WithContext(context.WithoutCancel(ctx))
	if _, err := pg.Exec(db, sqlAbandon, r.poller.ID); err != nil {
		return r.release(ctx, 0, fmt.Errorf("end abandoned poll requests: %w", err))
	}
	loadErr := r.load(ctx)
	proc := models.PollProcessor{}
	if loadErr == nil {
		loadErr = rn.db.WithContext(ctx).Take(&proc, r.poller.ProcessorID).Error
		if loadErr != nil {
			loadErr = pg.NotFound(loadErr, "poll processor")
		}
	}
	markJSON, _ := json.Marshal(r.mark)
	var pr int64
	var procID *int64
	if proc.ID != 0 {
		procID = &proc.ID
	}
	if err := pg.Query(db, sqlStartRequest, func(rows *sql.Rows) error { return rows.Scan(&pr) },
		r.poller.ID, r.integrationID(), procID, nil, rn.owner, string(markJSON)); err != nil {
		return r.release(ctx, 0, fmt.Errorf("record poll request: %w", err))
	}
	err := loadErr
	if err == nil {
		err = r.poll(ctx, pr, &proc, nil, true, 0)
	}
	return r.release(ctx, pr, err)
}

func (r *run) integrationID() int64 {
	if r.integration.ID != 0 {
		return r.integration.ID
	}
	var id int64
	_ = pg.Query(r.rn.db, `SELECT integration_id FROM pollers WHERE id = $1`, func(rows *sql.Rows) error {
		return rows.Scan(&id)
	}, r.poller.ID)
	return id
}

// load reads the poller's configuration: configuration, so GORM, read per
// run (a run every few seconds at most), so an edit applies from the next run.
func (r *run) load(ctx context.Context) error {
	db := r.rn.db.WithContext(ctx)
	if err := db.Take(&r.poller, r.poller.ID).Error; err != nil {
		return pg.NotFound(err, "poller")
	}
	sched, err := r.poller.Schedule()
	if err != nil {
		return fmt.Errorf("poller %s: schedule: %w", r.poller.Name, err)
	}
	r.schedule = sched
	if err := db.Take(&r.integration, r.poller.IntegrationID).Error; err != nil {
		return pg.NotFound(err, "integration")
	}
	if err := db.Where("integration_id = ? AND active", r.integration.ID).Take(&r.conn).Error; err != nil {
		return fmt.Errorf("integration %s has no active connection to poll", r.integration.Name)
	}
	if err := r.rn.store.OpenSecret(&r.conn); err != nil {
		return err
	}
	who := r.poller.RunAsUserID
	if who == nil {
		who = r.conn.InboundUserID
	}
	if who == nil {
		return fmt.Errorf("poller %s runs as nobody: choose its user, or generate the active connection's inbound account", r.poller.Name)
	}
	if err := db.Take(&r.caller, *who).Error; err != nil {
		return pg.NotFound(err, "the poller's user")
	}
	var vars []models.ConnectionVariable
	if err := db.Where("connection_id = ?", r.conn.ID).Find(&vars).Error; err != nil {
		return fmt.Errorf("read connection variables: %w", err)
	}
	r.vars = map[string]string{}
	for _, v := range vars {
		r.vars[v.Name] = v.Value
	}
	return nil
}

// poll runs a processor's pages: the poller's own (top) or a child poll.
func (r *run) poll(ctx context.Context, pr int64, p *models.PollProcessor, input map[string]any, top bool, depth int) error {
	if r.rn.processor == nil {
		return fmt.Errorf("poll processor %s: no script engine in this server", p.Name)
	}
	proc, err := r.rn.processor(p)
	if err != nil {
		return fmt.Errorf("poll processor %s: %w", p.Name, err)
	}
	call := Call{Mark: maps.Clone(r.mark), Input: input, Vars: r.vars}
	state, err := proc.Setup(ctx, call)
	if err != nil {
		return fmt.Errorf("%s / Setup: %w", p.Name, err)
	}
	for page := 0; ; page++ {
		if page >= maxPages {
			return fmt.Errorf("%s: more than %d pages in one run; the Response script never ends the run", p.Name, maxPages)
		}
		call.State, call.Page, call.Mark = state, page, maps.Clone(r.mark)
		if err := r.renewLease(ctx); err != nil {
			return err
		}
		req, err := proc.Request(ctx, call)
		if err != nil {
			return fmt.Errorf("%s / Request: %w", p.Name, err)
		}
		if req == nil {
			return nil // nothing to ask
		}
		resp, err := r.fetch(ctx, pr, req)
		if err != nil {
			return err
		}
		pageOut, err := proc.Response(ctx, call, resp)
		if err != nil {
			return fmt.Errorf("%s / Response: %w", p.Name, err)
		}
		if pageOut == nil {
			return nil
		}
		for _, c := range pageOut.Polls {
			if err := r.child(ctx, pr, c, depth+1); err != nil {
				return err
			}
		}
		if err := r.commit(ctx, pr, pageOut, top, resp); err != nil {
			return err
		}
		if pageOut.Next == nil {
			return nil
		}
		state = pageOut.Next
	}
}

// child runs a child poll to its end, recorded as its own poll request.
func (r *run) child(ctx context.Context, parent int64, c ChildPoll, depth int) error {
	if depth > maxChildDepth {
		return fmt.Errorf("child polls nested deeper than %d", maxChildDepth)
	}
	var p models.PollProcessor
	if err := r.rn.db.WithContext(ctx).Where("integration_id = ? AND name = ?", r.integration.ID, c.Processor).
		Take(&p).Error; err != nil {
		return fmt.Errorf("a Response started a poll of processor %q, which the integration does not have", c.Processor)
	}
	db := r.rn.db.WithContext(context.WithoutCancel(ctx))
	markJSON, _ := json.Marshal(r.mark)
	var pr int64
	if err := pg.Query(db, sqlStartRequest, func(rows *sql.Rows) error { return rows.Scan(&pr) },
		r.poller.ID, r.integration.ID, p.ID, parent, r.rn.owner, string(markJSON)); err != nil {
		return fmt.Errorf("record child poll: %w", err)
	}
	err := r.poll(ctx, pr, &p, c.Input, false, depth)
	r.finishRequest(ctx, pr, err)
	if err != nil {
		return fmt.Errorf("child poll %s: %w", p.Name, err)
	}
	return nil
}

// counts are what a page's items came to.
type counts struct{ found, processed, refused, duplicate int }

// commit applies a page's items on the inbound path and moves the mark, in
// one database transaction that first checks this process still holds the
// lease: either all of it is kept or none. A child poll's items do not move
// the mark (its parent's page, committed after it, does).
func (r *run) commit(ctx context.Context, pr int64, page *Page, top bool, resp *Response) error {
	mark := r.mark
	var n counts
	meta := itemMeta(resp)
	var translate webhook.TranslateFunc
	if r.rn.webhook != nil && len(page.Items) > 0 {
		var err error
		if translate, err = r.rn.webhook.Translator(ctx, r.integration.Name); err != nil {
			return fmt.Errorf("read the integration's inbound scripts: %w", err)
		}
	}
	var pre []translated
	if r.rn.deliver == nil {
		var wait func()
		pre, wait = r.translateAhead(ctx, page, meta, translate)
		defer wait()
	}
	err := r.rn.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		held := false
		if err := pg.Query(tx, sqlHoldLease, func(*sql.Rows) error { held = true; return nil },
			r.poller.ID, r.rn.owner, r.rn.lease.Seconds()); err != nil {
			return fmt.Errorf("hold lease: %w", err)
		}
		if !held {
			return errLeaseLost
		}
		n = counts{found: len(page.Items)}
		var err error
		if r.rn.deliver != nil {
			err = r.deliverEach(ctx, tx, page, meta, translate, &n)
		} else {
			err = r.deliverPage(ctx, tx, page, meta, translate, pre, &n)
		}
		if err != nil {
			return err
		}
		for _, it := range page.Items {
			if top && it.Mark != nil {
				mark = it.Mark
			}
		}
		if top && page.Mark != nil {
			mark = page.Mark
		}
		markJSON, err := json.Marshal(mark)
		if err != nil {
			return fmt.Errorf("the mark is not JSON: %w", err)
		}
		if top {
			if _, err := pg.Exec(tx, sqlAdvanceMark, r.poller.ID, string(markJSON)); err != nil {
				return fmt.Errorf("advance mark: %w", err)
			}
		}
		_, err = pg.Exec(tx, sqlPageDone, pr, n.found, n.processed, n.refused, n.duplicate, string(markJSON))
		return err
	})
	if err != nil {
		return err
	}
	r.mark = mark
	return nil
}

// renewLease extends the lease between pages; losing it ends the run.
func (r *run) renewLease(ctx context.Context) error {
	n, err := pg.Exec(r.rn.db.WithContext(ctx), sqlRenewLease, r.poller.ID, r.rn.owner, r.rn.lease.Seconds())
	if err != nil {
		return fmt.Errorf("renew lease: %w", err)
	}
	if n == 0 {
		return errLeaseLost
	}
	return nil
}

// release ends the poll request and hands the poller back: after a good run
// its next run is the schedule's, after a failure it backs off. A run
// stopped by the server's shutdown is not a failure: the poller is free to
// run again at once on another process.
func (r *run) release(ctx context.Context, pr int64, runErr error) error {
	db := r.rn.db.WithContext(context.WithoutCancel(ctx))
	stopped := ctx.Err() != nil
	if stopped {
		runErr = errors.New("this server process stopped during the poll; the next run starts again from the stored mark")
	}
	if pr != 0 {
		r.finishRequest(ctx, pr, runErr)
	}
	var err error
	switch {
	case stopped || errors.Is(runErr, errLeaseLost):
		_, err = pg.Exec(db, `UPDATE pollers SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2`,
			r.poller.ID, r.rn.owner)
	case runErr == nil:
		next := r.schedule.Next(r.dbNow.Add(time.Since(r.claimedAt)))
		_, err = pg.Exec(db, sqlFinishOK, r.poller.ID, r.rn.owner, r.schedule.Every.Seconds(), next)
	default:
		wait := models.PollBackoff(r.failures+1, r.schedule.Every)
		_, err = pg.Exec(db, sqlFinishFailed, r.poller.ID, r.rn.owner, clip(runErr.Error()), wait.Seconds())
		r.rn.logger.WarnContext(ctx, "poll failed", "poller_id", r.poller.ID, "poll_request_id", pr,
			"failures", r.failures+1, "backoff_s", wait.Seconds(), "error", runErr)
	}
	if err != nil {
		return fmt.Errorf("release poller %d: %w", r.poller.ID, err)
	}
	return nil
}

// finishRequest ends a poll request as Done or Error.
func (r *run) finishRequest(ctx context.Context, pr int64, runErr error) {
	state, text := models.PollDone, ""
	if runErr != nil {
		state, text = models.PollError, clip(runErr.Error())
	}
	if _, err := pg.Exec(r.rn.db.WithContext(context.WithoutCancel(ctx)), sqlFinishRequest, pr, state, text); err != nil {
		r.rn.logger.ErrorContext(ctx, "finish poll request", "poll_request_id", pr, "error", err)
	}
}
