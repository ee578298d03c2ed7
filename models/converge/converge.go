// Package converge records and reads what concurrent edits of a bonded
// ticket did (docs/domain.md, "Concurrent edits converge"): the wire stamps
// an inbound envelope carries, the changes that lost (field_conflicts) and
// the note they leave in the bond's history. The rule itself is pure and
// lives in models (models.DecideField, models.MergeInbound); the inbound API
// applies it (models/inbound) and the ticket store stamps local changes
// (models/store).
package converge

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"

	"unifi/models"
	"unifi/models/pg"
)

// Limits on an envelope's stamps, so that nothing unbounded reaches the
// database.
const (
	maxStamps   = 100
	maxStampBy  = 100
	maxStampWas = 32000
)

// ParseStamps reads an envelope's "stamps" object: property -> {"at": RFC
// 3339 time, "by": text, "was": the old value}. It returns nil for an absent
// or null object (a sender that keeps no stamps), and adds what is wrong to
// problems under "stamps".
func ParseStamps(raw json.RawMessage, present bool, problems *models.ValidationError) map[string]models.WireStamp {
	if !present || strings.TrimSpace(string(raw)) == "null" {
		return nil
	}
	var in map[string]struct {
		At  string `json:"at"`
		By  any    `json:"by"`
		Was any    `json:"was"`
	}
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		problems.Add("stamps", `Give an object of {"at", "by", "was"} by property.`)
		return nil
	}
	if len(in) > maxStamps {
		problems.Add("stamps", fmt.Sprintf("Give at most %d stamps.", maxStamps))
		return nil
	}
	out := make(map[string]models.WireStamp, len(in))
	for prop, s := range in {
		key := "stamps." + prop
		at, err := time.Parse(time.RFC3339Nano, s.At)
		if err != nil {
			problems.Add(key+".at", "Give a date and time in RFC 3339 form, e.g. 2026-11-22T10:15:00.123456Z.")
			continue
		}
		ws := models.WireStamp{At: at.UTC().Truncate(models.StampResolution)}
		if s.By != nil {
			by, ok := s.By.(string)
			if !ok || utf8.RuneCountInString(by) > maxStampBy || !cleanText(by) {
				problems.Add(key+".by", fmt.Sprintf("Give text of at most %d characters.", maxStampBy))
				continue
			}
			ws.By = by
		}
		if s.Was != nil {
			was, ok := models.PayloadText(s.Was)
			if !ok {
				problems.Add(key+".was", "Give text or a number.")
				continue
			}
			if utf8.RuneCountInString(was) > maxStampWas || strings.ContainsRune(was, 0) {
				problems.Add(key+".was", fmt.Sprintf("Give text of at most %d characters, without NUL.", maxStampWas))
				continue
			}
			ws.Was = &was
		}
		out[prop] = ws
	}
	return out
}

// cleanText reports whether s is valid UTF-8 without control characters.
func cleanText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Where is where conflicts happened: the ticket, its bond and integration,
// and the inbound transaction that met them.
type Where struct {
	TicketID, BondID, IntegrationID, TransactionID int64
}

// sqlRecord inserts conflicts, one row per element of the arrays.
const sqlRecord = `INSERT INTO field_conflicts (ticket_id, bond_id, integration_id, transaction_id, field, kept_value,
		lost_value, kept_at, kept_by, lost_at, lost_by, kept, created_at)
	SELECT $1, $2, $3, $4, c.field, c.kept_value, c.lost_value, c.kept_at, c.kept_by, c.lost_at, c.lost_by, c.kept, $5
	FROM unnest($6::text[], $7::text[], $8::text[], $9::timestamptz[], $10::text[], $11::timestamptz[], $12::text[],
		$13::text[]) AS c(field, kept_value, lost_value, kept_at, kept_by, lost_at, lost_by, kept)`

// Record stores conflicts at w, in tx (the inbound message's database
// transaction), in one statement.
func Record(tx *gorm.DB, w Where, conflicts []models.FieldConflict, now time.Time) error {
	if len(conflicts) == 0 {
		return nil
	}
	n := len(conflicts)
	field, kept, lost, keptBy, lostBy, whose := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	keptAt, lostAt := make([]time.Time, n), make([]*time.Time, n)
	for i, c := range conflicts {
		field[i], kept[i], lost[i] = c.Field, c.Kept, c.Lost
		keptAt[i], keptBy[i], lostBy[i] = c.KeptStamp.At, c.KeptStamp.By, c.LostStamp.By
		if !c.LostStamp.IsZero() {
			at := c.LostStamp.At
			lostAt[i] = &at
		}
		whose[i] = Theirs
		if c.KeptLocal {
			whose[i] = Ours
		}
	}
	if _, err := pg.Exec(tx, sqlRecord, w.TicketID, w.BondID, w.IntegrationID, w.TransactionID, now,
		field, kept, lost, keptAt, keptBy, lostAt, lostBy, whose); err != nil {
		return fmt.Errorf("record %d concurrent edits of ticket %d: %w", n, w.TicketID, err)
	}
	return nil
}

// Whose change was kept: field_conflicts.kept.
const (
	Ours   = "ours"
	Theirs = "theirs"
)

// Note is the bond history's words for conflicts, e.g. "concurrent edit of
// priority: kept 2 (theirs, changed 2026-12-05T10:00:00.000007Z by ann),
// overwrote 1 (ours, changed 2026-12-05T10:00:00.000005Z by bob)".
func Note(conflicts []models.FieldConflict) string {
	parts := make([]string, 0, len(conflicts))
	sorted := append([]models.FieldConflict(nil), conflicts...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Field < sorted[j].Field })
	for _, c := range sorted {
		keptSide, lostSide, verb := Theirs, Ours, "overwrote"
		if c.KeptLocal {
			keptSide, lostSide, verb = Ours, Theirs, "dropped"
		}
		parts = append(parts, fmt.Sprintf("concurrent edit of %s: kept %s (%s, %s), %s %s (%s, %s)", c.Field,
			quote(c.Kept), keptSide, stampWords(c.KeptStamp), verb, quote(c.Lost), lostSide, stampWords(c.LostStamp)))
	}
	return strings.Join(parts, "; ")
}

func stampWords(s models.FieldStamp) string {
	if s.IsZero() {
		return "never stamped"
	}
	w := "changed " + s.At.UTC().Format(time.RFC3339Nano)
	if s.By != "" {
		w += " by " + s.By
	}
	return w
}

// quote shows a value in a note, cut to 60 characters.
func quote(v string) string {
	if utf8.RuneCountInString(v) > 60 {
		v = string([]rune(v)[:57]) + "..."
	}
	return strconv.Quote(v)
}
