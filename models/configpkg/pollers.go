package configpkg

import (
	"fmt"
	"slices"
	"strings"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/script"
)

// Pollers in a package (docs/pollers.md): the poll processors with their
// scripts and the pollers that run them. Who a poller runs as belongs to one
// instance, so it is not in the package: an imported poller runs as the
// active connection's inbound account.

// PollProcessor is a poll processor by name.
type PollProcessor struct {
	Name           string `json:"name"`
	SetupScript    string `json:"setup_script"`
	RequestScript  string `json:"request_script"`
	ResponseScript string `json:"response_script"`
}

// Poller runs a processor (by name) on a schedule: every_s seconds, or a cron expression.
type Poller struct {
	Name      string `json:"name"`
	Processor string `json:"processor"`
	EveryS    *int   `json:"every_s,omitempty"`
	Cron      string `json:"cron,omitempty"`
	Active    bool   `json:"active"`
}

// validatePollers checks the document's processors and pollers with the
// Designer's own rules.
func validatePollers(d *Document, ps *problems) {
	procs := map[string]bool{}
	for i, p := range d.PollProcessors {
		at := fmt.Sprintf("poll_processors[%d]", i)
		if ps.required(at+".name", p.Name) {
			ps.text(at+".name", p.Name, 100)
		}
		for _, sc := range []struct {
			field, src string
			point      script.Point
		}{{"setup_script", p.SetupScript, script.PollSetup}, {"request_script", p.RequestScript, script.PollRequest},
			{"response_script", p.ResponseScript, script.PollResponse}} {
			switch {
			case sc.src == "" && sc.point == script.PollSetup:
			case !ps.required(at+"."+sc.field, sc.src):
			case len(sc.src) > maxScript:
				ps.add(at+"."+sc.field, "is longer than %d bytes", maxScript)
			default:
				if err := script.Compile(script.Script{Name: p.Name + " / " + sc.point.Label(), Point: sc.point, Source: sc.src}); err != nil {
					ps.add(at+"."+sc.field, "%s", err.Error())
				}
			}
		}
		if procs[p.Name] {
			ps.add(at+".name", "another poll processor is already called %q", p.Name)
		}
		procs[p.Name] = true
	}
	names := map[string]bool{}
	for i, p := range d.Pollers {
		at := fmt.Sprintf("pollers[%d]", i)
		if ps.required(at+".name", p.Name) {
			ps.text(at+".name", p.Name, 100)
		}
		if names[p.Name] {
			ps.add(at+".name", "another poller is already called %q", p.Name)
		}
		names[p.Name] = true
		if !procs[p.Processor] {
			ps.add(at+".processor", "there is no poll processor called %q in this document", p.Processor)
		}
		if _, err := models.ParseSchedule(p.EveryS, p.Cron); err != nil {
			ps.add(at+".schedule", "%s", err.Error())
		}
	}
}

// loadPollers reads an integration's processors and pollers into d.
func loadPollers(tx *gorm.DB, integrationID int64, d *Document) error {
	var procs []models.PollProcessor
	if err := tx.Where("integration_id = ?", integrationID).Find(&procs).Error; err != nil {
		return fmt.Errorf("load poll processors: %w", err)
	}
	var pollers []models.Poller
	if err := tx.Where("integration_id = ?", integrationID).Find(&pollers).Error; err != nil {
		return fmt.Errorf("load pollers: %w", err)
	}
	nameOf := map[int64]string{}
	for _, p := range procs {
		nameOf[p.ID] = p.Name
		d.PollProcessors = append(d.PollProcessors, PollProcessor{Name: p.Name, SetupScript: p.SetupScript,
			RequestScript: p.RequestScript, ResponseScript: p.ResponseScript})
	}
	for _, p := range pollers {
		d.Pollers = append(d.Pollers, Poller{Name: p.Name, Processor: nameOf[p.ProcessorID], EveryS: p.EveryS, Cron: p.Cron, Active: p.Active})
	}
	slices.SortFunc(d.PollProcessors, func(a, b PollProcessor) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(d.Pollers, func(a, b Poller) int { return strings.Compare(a.Name, b.Name) })
	return nil
}

// applyPollers creates or changes the document's processors and pollers by
// name (never deleting one the document leaves out, like messages).
func applyPollers(tx *gorm.DB, integrationID int64, d *Document) error {
	ids := map[string]int64{}
	for _, p := range d.PollProcessors {
		var cur models.PollProcessor
		err := tx.Where("integration_id = ? AND name = ?", integrationID, p.Name).Limit(1).Find(&cur).Error
		if err != nil {
			return fmt.Errorf("poll processor %q: %w", p.Name, err)
		}
		if cur.ID == 0 {
			cur = models.PollProcessor{IntegrationID: integrationID, Name: p.Name, SetupScript: p.SetupScript,
				RequestScript: p.RequestScript, ResponseScript: p.ResponseScript, Version: 1}
			if err := tx.Create(&cur).Error; err != nil {
				return fmt.Errorf("create poll processor %q: %w", p.Name, err)
			}
		} else if cur.SetupScript != p.SetupScript || cur.RequestScript != p.RequestScript || cur.ResponseScript != p.ResponseScript {
			if err := tx.Model(&cur).Updates(map[string]any{"setup_script": p.SetupScript, "request_script": p.RequestScript,
				"response_script": p.ResponseScript, "version": cur.Version + 1, "updated_at": now}).Error; err != nil {
				return fmt.Errorf("change poll processor %q: %w", p.Name, err)
			}
		}
		ids[p.Name] = cur.ID
	}
	for _, p := range d.Pollers {
		var cur models.Poller
		if err := tx.Where("integration_id = ? AND name = ?", integrationID, p.Name).Limit(1).Find(&cur).Error; err != nil {
			return fmt.Errorf("poller %q: %w", p.Name, err)
		}
		if cur.ID == 0 {
			cur = models.Poller{IntegrationID: integrationID, Name: p.Name, ProcessorID: ids[p.Processor], EveryS: p.EveryS,
				Cron: p.Cron, Active: p.Active, Version: 1}
			if err := tx.Create(&cur).Error; err != nil {
				return fmt.Errorf("create poller %q: %w", p.Name, err)
			}
			continue
		}
		if err := tx.Model(&cur).Updates(map[string]any{"processor_id": ids[p.Processor], "every_s": p.EveryS, "cron": p.Cron,
			"active": p.Active, "version": cur.Version + 1, "updated_at": now}).Error; err != nil {
			return fmt.Errorf("change poller %q: %w", p.Name, err)
		}
	}
	return nil
}

func (r *reader) pollProcessor(path string, x *PollProcessor) error {
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "setup_script":
			return done(r.str(p, &x.SetupScript))
		case "request_script":
			return done(r.str(p, &x.RequestScript))
		case "response_script":
			return done(r.str(p, &x.ResponseScript))
		}
		return false, nil
	}, "name", "request_script", "response_script")
}

func (r *reader) poller(path string, x *Poller) error {
	return r.object(path, func(key, p string) (bool, error) {
		switch key {
		case "name":
			return done(r.str(p, &x.Name))
		case "processor":
			return done(r.str(p, &x.Processor))
		case "every_s":
			var n int
			err := r.integer(p, &n)
			x.EveryS = &n
			return done(err)
		case "cron":
			return done(r.str(p, &x.Cron))
		case "active":
			return done(r.boolean(p, &x.Active))
		}
		return false, nil
	}, "name", "processor")
}
