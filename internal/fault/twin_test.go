package fault_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"unifi/models"
)

func ticketFields(k models.Ticket) []any {
	return []any{k.ShortDescription, k.Description, k.State, k.Priority, k.Urgency, k.Impact, k.AssignmentGroup, k.WorkNotes}
}

// ticketAPI calls A's tickets API as the demo analyst, trying again while the
// server is down (bounded by ctx).
type ticketAPI struct {
	base   string
	client *http.Client
}

func (c *ticketAPI) call(ctx context.Context, method, path string, body, out any) error {
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var last string
	for ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth("analyst", "analyst-demo-1")
		res, err := c.client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode/100 == 2 {
				if out != nil {
					return json.Unmarshal(b, out)
				}
				return nil
			}
			last = fmt.Sprintf("%d %s", res.StatusCode, b)
			if res.StatusCode < 500 && res.StatusCode != http.StatusTooManyRequests {
				return fmt.Errorf("%s %s: %s", method, path, last)
			}
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s %s: gave up: %s", method, path, last)
}
