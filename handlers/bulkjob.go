package handlers

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"unifi/handlers/page"
	"unifi/web/components"
)

// bulkJobPoll is how often the progress stream reads the stored job.
const bulkJobPoll = 500 * time.Millisecond

// bulkJobStreamMax bounds one stream; the browser reconnects after it.
const bulkJobStreamMax = 10 * time.Minute

// BulkJobEvents streams a bulk job's progress as Server-Sent Events. It reads
// the job from the database every half second (no per-process memory, so any
// server and any admin's browser sees the same figures) and sends a
// "progress" event with the dialog body whenever it changed, then a "done"
// event once the job has ended.
func (h *Handlers) BulkJobEvents(c echo.Context) error {
	id, err := page.PathID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	job, failures, err := h.Query.LoadBulkJobProgress(ctx, id, 50)
	if err != nil {
		return err
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	var last string
	tick := time.NewTicker(bulkJobPoll)
	defer tick.Stop()
	deadline := time.After(bulkJobStreamMax)
	for {
		var buf bytes.Buffer
		v := components.BulkJobView{Job: *job, Failures: failures, Now: h.Store.Now()}
		if err := components.BulkJobBody(v).Render(ctx, &buf); err != nil {
			return nil // the response has started; the browser reconnects
		}
		if body := buf.String(); body != last || v.Finished() {
			last = body
			writeEvent(w, "progress", body)
		} else {
			fmt.Fprint(w, ": still running\n\n")
		}
		if v.Finished() {
			writeEvent(w, "done", "")
			w.Flush()
			return nil
		}
		w.Flush()
		select {
		case <-ctx.Done():
			return nil
		case <-deadline:
			return nil
		case <-tick.C:
		}
		if job, failures, err = h.Query.LoadBulkJobProgress(ctx, id, 50); err != nil {
			return nil
		}
	}
}

func writeEvent(w *echo.Response, name, data string) {
	fmt.Fprintf(w, "event: %s\n", name)
	for _, line := range strings.Split(data, "\n") {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	fmt.Fprint(w, "\n")
}
