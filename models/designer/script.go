package designer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
	"unifi/models/script"
)

// Message scripts and connection variables (docs/scripting.md) are
// versioned records like the rest of the Designer's: a save names the
// version it was based on (0: there was none when the page was opened) and
// is refused with a *StaleVersionError when someone saved meanwhile. Their
// tables notify unifi_config (migration 00220), so a save is live on every
// server process.

// ScriptSet is an integration's messages with their scripts, and its active
// connection with that connection's variables, for the scripts page.
type ScriptSet struct {
	Integration models.Integration
	Messages    []models.Message
	Scripts     map[int64]map[script.Point]models.MessageScript // by message id, then point
	Connection  *models.Connection                              // the active one; nil: none
	Variables   []models.ConnectionVariable                     // the active connection's, by name
}

// Scripts reads integration id's script set.
func (d *Designer) Scripts(ctx context.Context, id int64) (*ScriptSet, error) {
	db := d.store.DB(ctx)
	set := &ScriptSet{Scripts: map[int64]map[script.Point]models.MessageScript{}}
	if err := db.Take(&set.Integration, id).Error; err != nil {
		return nil, pg.NotFound(err, fmt.Sprintf("integration %d", id))
	}
	if err := db.Where("integration_id = ?", id).Order("name").Find(&set.Messages).Error; err != nil {
		return nil, fmt.Errorf("list messages of integration %d: %w", id, err)
	}
	var scripts []models.MessageScript
	if err := db.Where("message_id IN (SELECT id FROM messages WHERE integration_id = ?)", id).Find(&scripts).Error; err != nil {
		return nil, fmt.Errorf("list scripts of integration %d: %w", id, err)
	}
	for _, s := range scripts {
		if set.Scripts[s.MessageID] == nil {
			set.Scripts[s.MessageID] = map[script.Point]models.MessageScript{}
		}
		set.Scripts[s.MessageID][script.Point(s.Point)] = s
	}
	var conn models.Connection
	err := db.Where("integration_id = ? AND active", id).Take(&conn).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return set, nil
	case err != nil:
		return nil, fmt.Errorf("active connection of integration %d: %w", id, err)
	}
	set.Connection = &conn
	if err := db.Where("connection_id = ?", conn.ID).Order("name").Find(&set.Variables).Error; err != nil {
		return nil, fmt.Errorf("variables of connection %d: %w", conn.ID, err)
	}
	return set, nil
}

// maxScript is the longest script source (the table's CHECK says the same).
const maxScript = 65536

// SaveScript sets message messageID's script at point to source, or removes
// it when source is blank; base is the script's version the edit started
// from (0: none). A source that does not compile is refused with its line,
// next to the "source" field.
func (d *Designer) SaveScript(ctx context.Context, actor models.Actor, messageID int64, point script.Point, base int, source string) (*models.MessageScript, error) {
	if !point.Valid() {
		return nil, &models.ValidationError{Fields: map[string]string{"point": fmt.Sprintf("%q is not a script point.", point)}}
	}
	source = strings.TrimRight(source, " \t\r\n")
	if strings.TrimSpace(source) == "" {
		source = ""
	}
	if p := models.TextProblem(source); p != "" {
		return nil, &models.ValidationError{Fields: map[string]string{"source": p}}
	}
	if len(source) > maxScript {
		return nil, &models.ValidationError{Fields: map[string]string{"source": "A script may be at most 64 KiB long."}}
	}
	var saved models.MessageScript
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var msg models.Message
		if err := tx.Take(&msg, messageID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("message %d", messageID))
		}
		label := msg.Name + " / " + point.Label()
		if source != "" {
			if err := script.Compile(script.Script{Name: label, Point: point, Source: source}); err != nil {
				return &models.ValidationError{Fields: map[string]string{"source": err.Error()}}
			}
		}
		var cur models.MessageScript
		err := tx.Where("message_id = ? AND point = ?", messageID, string(point)).Take(&cur).Error
		switch {
		case errors.Is(err, gorm.ErrRecordNotFound):
			if base != 0 { // the script the edit started from was removed meanwhile
				return &StaleVersionError{RecordType: "message_script", Label: label, Base: base}
			}
			if source == "" {
				return nil
			}
			saved = models.MessageScript{MessageID: messageID, Point: string(point), Source: source, Label: label}
			return Create(tx, actor, &saved)
		case err != nil:
			return fmt.Errorf("find script: %w", err)
		}
		saved = cur
		saved.Label = label
		if source == "" {
			return Delete(tx, actor, base, &saved)
		}
		saved.Source = source
		return Update(tx, actor, base, &saved)
	})
	if err != nil {
		return nil, fmt.Errorf("save %s script of message %d: %w", point, messageID, err)
	}
	return &saved, nil
}

var variableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// maxVariable is the longest variable value (the table's CHECK says the same).
const maxVariable = 4096

// ParseVariables reads the variables form: one name=value a line. Problems
// are refusals of the "variables" field.
func ParseVariables(raw string) (map[string]string, error) {
	vars := map[string]string{}
	seen := map[string]bool{}
	ve := &models.ValidationError{}
	for n, line := range strings.Split(raw, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		switch {
		case !ok:
			ve.Add("variables", fmt.Sprintf("Line %d has no '=': write name=value.", n+1))
		case !variableName.MatchString(name):
			ve.Add("variables", fmt.Sprintf("Line %d: %q is not a variable name: letters, digits and _, not starting with a digit.", n+1, name))
		case seen[name]:
			ve.Add("variables", fmt.Sprintf("Line %d: %s is given twice.", n+1, name))
		case len(value) > maxVariable:
			ve.Add("variables", fmt.Sprintf("Line %d: the value of %s is longer than %d bytes.", n+1, name, maxVariable))
		case models.TextProblem(value) != "":
			ve.Add("variables", fmt.Sprintf("Line %d: the value of %s: %s", n+1, name, models.TextProblem(value)))
		default:
			vars[name] = value
		}
		seen[name] = true
	}
	if err := ve.Err(); err != nil {
		return nil, err
	}
	return vars, nil
}

// SetVariables makes connectionID's variables vars. base is the version of
// each variable the edit started from, by name; a variable that someone
// added, changed or removed meanwhile refuses the whole save (409) and
// nothing is written. Each added, changed or removed variable is its own
// audited record.
func (d *Designer) SetVariables(ctx context.Context, actor models.Actor, connectionID int64, base map[string]int, vars map[string]string) error {
	err := d.Tx(ctx, func(tx *gorm.DB) error {
		var conn models.Connection
		if err := tx.Take(&conn, connectionID).Error; err != nil {
			return pg.NotFound(err, fmt.Sprintf("connection %d", connectionID))
		}
		var rows []models.ConnectionVariable
		if err := tx.Where("connection_id = ?", connectionID).Order("name").Find(&rows).Error; err != nil {
			return fmt.Errorf("variables of connection %d: %w", connectionID, err)
		}
		stored := map[string]models.ConnectionVariable{}
		for _, r := range rows {
			stored[r.Name] = r
		}
		for name, v := range base { // seen on the page, gone now
			if _, ok := stored[name]; !ok {
				return &StaleVersionError{RecordType: "connection_variable", Label: name, Base: v}
			}
		}
		names := make([]string, 0, len(vars)+len(rows))
		for name := range vars {
			names = append(names, name)
		}
		for name := range stored {
			if _, ok := vars[name]; !ok {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			value, keep := vars[name]
			cur, exists := stored[name]
			switch {
			case !exists:
				if err := Create(tx, actor, &models.ConnectionVariable{ConnectionID: connectionID, Name: name, Value: value}); err != nil {
					return err
				}
			case !keep:
				if err := Delete(tx, actor, base[name], &cur); err != nil {
					return err
				}
			default:
				cur.Value = value
				if err := Update(tx, actor, base[name], &cur); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("set variables of connection %d: %w", connectionID, err)
	}
	return nil
}
