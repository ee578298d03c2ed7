package worker

import (
	"unifi/models/script"

	"context"
	"net/http"
	"time"

	"unifi/worker/enginedb"
)

// Stopping reports whether Stop has begun (tests wait for it to order events).
func (p *Pool) Stopping() bool { return p.isStopping() }

// AttemptOnce sends w once with a fresh sender and returns what it decided.
func AttemptOnce(ctx context.Context, client *http.Client, w *enginedb.Work) (enginedb.AttemptResult, error) {
	return newSender(client, time.Now, script.NewEngine(script.Limits{})).attempt(ctx, w, nil)
}

// ClaimLimit is claimLimit.
var ClaimLimit = claimLimit

// SyncTimeoutError is syncTimeoutError.
var SyncTimeoutError = syncTimeoutError
