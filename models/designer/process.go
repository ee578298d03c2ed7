package designer

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// ProcessForm is a process as typed into its form.
type ProcessForm struct {
	Name         string
	NumberPrefix string
}

// ProcessFormOf is the form of a stored process.
func ProcessFormOf(p *models.Process) ProcessForm {
	return ProcessForm{Name: p.Name, NumberPrefix: p.NumberPrefix}
}

var numberPrefix = regexp.MustCompile(`^[A-Z]{2,6}$`)

// ParseProcess checks f and applies it to p. Pure: whether the name or the
// prefix is taken is the database's to say.
func ParseProcess(f ProcessForm, p *models.Process) error {
	var ve models.ValidationError
	name, prefix := strings.TrimSpace(f.Name), strings.TrimSpace(f.NumberPrefix)
	switch n := utf8.RuneCountInString(name); {
	case models.TextProblem(name) != "":
		ve.Add("name", models.TextProblem(name))
	case n == 0:
		ve.Add("name", "Give the process a name, like Change or Problem.")
	case n > 40:
		ve.Add("name", fmt.Sprintf("Keep the name to 40 characters (it has %d).", n))
	}
	if !numberPrefix.MatchString(prefix) {
		ve.Add("number_prefix", fmt.Sprintf("Use 2 to 6 capital letters, like CHG; tickets are numbered CHG0000001 (got %q).", prefix))
	}
	if err := ve.Err(); err != nil {
		return err
	}
	p.Name, p.NumberPrefix = name, prefix
	return nil
}

// processTaken turns a taken name or prefix into the message next to the
// field. Two processes with one prefix would number their tickets alike.
func processTaken(tx *gorm.DB, p *models.Process) error {
	var others []models.Process
	if err := tx.Where("id <> ? AND (lower(name) = lower(?) OR number_prefix = ?)", p.ID, p.Name, p.NumberPrefix).
		Find(&others).Error; err != nil {
		return fmt.Errorf("check process %q: %w", p.Name, err)
	}
	var ve models.ValidationError
	for _, o := range others {
		if strings.EqualFold(o.Name, p.Name) {
			ve.Add("name", fmt.Sprintf("A process named %q already exists; choose another name.", o.Name))
		}
		if o.NumberPrefix == p.NumberPrefix {
			ve.Add("number_prefix", fmt.Sprintf("Process %s already numbers its tickets %s; choose another prefix.", o.Name, o.NumberPrefix))
		}
	}
	return ve.Err()
}

// Process returns process id.
func (d *Designer) Process(ctx context.Context, id int64) (*models.Process, error) {
	var p models.Process
	if err := d.store.DB(ctx).Take(&p, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("process %d", id))
	}
	return &p, nil
}

// CreateProcess creates a process; its tickets live in the tickets table
// and are numbered with its prefix.
func (d *Designer) CreateProcess(ctx context.Context, actor models.Actor, f ProcessForm) (*models.Process, error) {
	p := &models.Process{TicketTable: "tickets", ReferenceField: "number"}
	if err := ParseProcess(f, p); err != nil {
		return nil, err
	}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := processTaken(tx, p); err != nil {
			return err
		}
		return Create(tx, actor, p)
	})
	if err != nil {
		return nil, fmt.Errorf("create process: %w", err)
	}
	return p, nil
}

// UpdateProcess saves an edited process, provided it is still at version
// base. A new prefix numbers the tickets created from then on; the numbers
// already given stay.
func (d *Designer) UpdateProcess(ctx context.Context, actor models.Actor, id int64, base int, f ProcessForm) (*models.Process, error) {
	var p models.Process
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&p, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("process %d", id))
		}
		if err := ParseProcess(f, &p); err != nil {
			return err
		}
		if err := processTaken(tx, &p); err != nil {
			return err
		}
		return Update(tx, actor, base, &p)
	})
	if err != nil {
		return nil, fmt.Errorf("update process %d: %w", id, err)
	}
	return &p, nil
}

// ProcessFieldForm is a process field as typed into its form; Choices has
// one value per line.
type ProcessFieldForm struct {
	Name     string
	Label    string
	Type     string
	Choices  string
	Required bool
	Position string
}

// ProcessFieldFormOf is the form of a stored field.
func ProcessFieldFormOf(f *models.ProcessField) ProcessFieldForm {
	return ProcessFieldForm{Name: f.Name, Label: f.Label, Type: string(f.Type),
		Choices: strings.Join(f.Choices.V, "\n"), Required: f.Required, Position: fmt.Sprint(f.Position)}
}

// ParseProcessField checks f and applies it to pf (models.ProcessField.Validate
// holds the rules). The name of a stored field does not change: ticket values
// and message fields refer to it.
func ParseProcessField(f ProcessFieldForm, pf *models.ProcessField) error {
	var ve models.ValidationError
	if pf.ID == 0 {
		pf.Name = f.Name
	} else if strings.TrimSpace(f.Name) != "" && strings.TrimSpace(f.Name) != pf.Name {
		ve.Add("name", fmt.Sprintf("The name of a field cannot change (tickets store their values under %q); add a new field instead.", pf.Name))
	}
	pf.Label, pf.Type, pf.Required = f.Label, models.FieldType(f.Type), f.Required
	pf.Choices.V = nil
	if pf.Type == models.FieldChoice || strings.TrimSpace(f.Choices) != "" {
		for _, line := range strings.Split(strings.ReplaceAll(f.Choices, "\r\n", "\n"), "\n") {
			if strings.TrimSpace(line) != "" {
				pf.Choices.V = append(pf.Choices.V, strings.TrimSpace(line))
			}
		}
	}
	if pos := strings.TrimSpace(f.Position); pos != "" {
		n, err := strconv.Atoi(pos)
		pf.Position = n
		if err != nil || n < 0 || n > 1000 {
			ve.Add("position", "Give the position as a whole number from 0 to 1000 (smaller comes first).")
		}
	}
	if err := pf.Validate(); err != nil {
		for k, msg := range err.(*models.ValidationError).Fields {
			ve.Add(k, msg)
		}
	}
	return ve.Err()
}

// ProcessField returns process field id.
func (d *Designer) ProcessField(ctx context.Context, id int64) (*models.ProcessField, error) {
	var f models.ProcessField
	if err := d.store.DB(ctx).Take(&f, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("process field %d", id))
	}
	return &f, nil
}

// processFieldTaken turns a unique violation on (process, name) into the message
// next to the name.
func processFieldTaken(err error, name string) error {
	if pg.IsUniqueViolation(err) {
		return &models.ValidationError{Fields: map[string]string{"name": fmt.Sprintf("This process already has a field named %q; choose another name.", name)}}
	}
	return err
}

// CreateProcessField adds a field to process processID.
func (d *Designer) CreateProcessField(ctx context.Context, actor models.Actor, processID int64, f ProcessFieldForm) (*models.ProcessField, error) {
	pf := &models.ProcessField{ProcessID: processID}
	if err := ParseProcessField(f, pf); err != nil {
		return nil, err
	}
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := checkProcess(tx, processID); err != nil {
			return err
		}
		return processFieldTaken(tx.Transaction(func(tx *gorm.DB) error { return Create(tx, actor, pf) }), pf.Name)
	})
	if err != nil {
		return nil, fmt.Errorf("create process field: %w", err)
	}
	return pf, nil
}

// UpdateProcessField saves an edited field, provided it is still at version
// base. Values already stored on tickets stay; the next save of such a
// ticket checks them against the new definition.
func (d *Designer) UpdateProcessField(ctx context.Context, actor models.Actor, id int64, base int, f ProcessFieldForm) (*models.ProcessField, error) {
	var pf models.ProcessField
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&pf, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("process field %d", id))
		}
		if err := ParseProcessField(f, &pf); err != nil {
			return err
		}
		return Update(tx, actor, base, &pf)
	})
	if err != nil {
		return nil, fmt.Errorf("update process field %d: %w", id, err)
	}
	return &pf, nil
}

// DeleteProcessField removes a field, provided no message maps it (the
// message would map a field that no longer exists) and it is still at
// version base. Values stored on tickets are dropped at their next save.
func (d *Designer) DeleteProcessField(ctx context.Context, actor models.Actor, id int64, base int) (*models.ProcessField, error) {
	var pf models.ProcessField
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		if err := tx.Take(&pf, id).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("process field %d", id))
		}
		var mapped []string
		if err := tx.Raw(`SELECT DISTINCT i.name || ' / ' || m.name FROM fields f JOIN messages m ON m.id = f.message_id
			JOIN integrations i ON i.id = m.integration_id WHERE i.process_id = ? AND f.ticket_field = ? ORDER BY 1`,
			pf.ProcessID, models.CustomPrefix+pf.Name).Scan(&mapped).Error; err != nil {
			return fmt.Errorf("find messages mapping %s: %w", pf.Name, err)
		}
		if len(mapped) > 0 {
			return &models.ConflictError{Reason: fmt.Sprintf("Field %s is mapped by message %s; remove it from those messages first.", pf.Name, strings.Join(mapped, ", "))}
		}
		return Delete(tx, actor, base, &pf)
	})
	if err != nil {
		return nil, fmt.Errorf("delete process field %d: %w", id, err)
	}
	return &pf, nil
}
