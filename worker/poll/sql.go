package poll

// The poll runner's statements (docs/pollers.md). Every lease and due time is
// compared with the database's clock. Inside a page's transaction the lease
// is checked with clock_timestamp(): now() is the transaction's start.

// sqlClaim takes one due poller no other server process holds, and leases it
// to this process ($1 owner, $2 lease seconds).
const sqlClaim = `
WITH due AS (
    SELECT p.id FROM pollers p
    JOIN integrations i ON i.id = p.integration_id
    WHERE p.active AND i.state <> 'Off' AND p.next_run_at <= now()
      AND (p.lease_until IS NULL OR p.lease_until < now())
    ORDER BY p.next_run_at, p.id
    LIMIT 1
    FOR UPDATE OF p SKIP LOCKED)
UPDATE pollers p SET lease_owner = $1, lease_until = now() + make_interval(secs => $2), last_run_at = now()
FROM due WHERE p.id = due.id
RETURNING p.id, p.mark, p.failures, now()`

// sqlNextDue is how long until the next poller is due (NULL: none active).
const sqlNextDue = `
SELECT extract(epoch FROM min(greatest(p.next_run_at, coalesce(p.lease_until, p.next_run_at))) - now())
FROM pollers p JOIN integrations i ON i.id = p.integration_id
WHERE p.active AND i.state <> 'Off'`

// sqlAbandon ends the runs a process that lost its lease left Running: the
// process that holds the lease now ($1 poller) runs it from the stored mark.
const sqlAbandon = `
UPDATE poll_requests SET state = 'Error', finished_at = now(),
    duration_ms = least(extract(epoch FROM now() - started_at) * 1000, 2147483647)::int,
    error = 'The server process running this poll stopped before it finished (its lease ran out); the next run started again from the stored mark.'
WHERE poller_id = $1 AND state = 'Running'`

// sqlHoldLease, first in a page's transaction, checks that this process still
// holds the poller's lease, renews it and locks the row until the page
// commits ($1 poller, $2 owner, $3 lease seconds). No row: the lease is lost.
const sqlHoldLease = `
UPDATE pollers SET lease_until = clock_timestamp() + make_interval(secs => $3)
WHERE id = $1 AND lease_owner = $2 AND lease_until > clock_timestamp()
RETURNING mark`

// sqlRenewLease renews the lease between pages (before an HTTP request).
const sqlRenewLease = `
UPDATE pollers SET lease_until = clock_timestamp() + make_interval(secs => $3)
WHERE id = $1 AND lease_owner = $2 AND lease_until > clock_timestamp()`

// sqlAdvanceMark stores the high-water mark, in the page's transaction.
const sqlAdvanceMark = `UPDATE pollers SET mark = $2 WHERE id = $1`

// sqlFinishOK releases the lease after a good run; the next run is the
// schedule's ($3 seconds after now, or at $4 for a cron schedule).
const sqlFinishOK = `
UPDATE pollers SET lease_owner = NULL, lease_until = NULL, failures = 0, last_error = '',
    next_run_at = CASE WHEN $3::float8 > 0 THEN now() + make_interval(secs => $3) ELSE $4::timestamptz END
WHERE id = $1 AND lease_owner = $2`

// sqlFinishFailed releases the lease after a failed run and backs off
// ($3 error, $4 seconds to wait).
const sqlFinishFailed = `
UPDATE pollers SET lease_owner = NULL, lease_until = NULL, failures = failures + 1, last_error = $3,
    next_run_at = now() + make_interval(secs => $4)
WHERE id = $1 AND lease_owner = $2`

// sqlStartRequest records a run (or a child poll) as Running.
const sqlStartRequest = `
INSERT INTO poll_requests (poller_id, integration_id, processor_id, parent_id, state, owner, mark_before, mark_after)
VALUES ($1, $2, $3, $4, 'Running', $5, $6, $6)
RETURNING id`

// sqlPageDone adds a committed page's counts to its poll request, in the
// page's transaction.
const sqlPageDone = `
UPDATE poll_requests SET items_found = items_found + $2, items_processed = items_processed + $3,
    items_refused = items_refused + $4, items_duplicate = items_duplicate + $5, mark_after = $6
WHERE id = $1`

// sqlFinishRequest ends a poll request ($2 Done or Error, $3 error).
const sqlFinishRequest = `
UPDATE poll_requests SET state = $2, error = $3, finished_at = clock_timestamp(),
    duration_ms = least(extract(epoch FROM clock_timestamp() - started_at) * 1000, 2147483647)::int
WHERE id = $1 AND state = 'Running'`

// sqlRecordHTTP stores one HTTP request a poll made and counts it on the poll
// request.
const sqlRecordHTTP = `
WITH r AS (
    INSERT INTO http_requests (integration_id, poll_request_id, direction, state, attempt, method, url,
        request_headers, request_body, response_status, response_headers, response_body, duration_ms, error,
        response_action)
    VALUES ($1, $2, 'Outbound', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'poll')
    RETURNING poll_request_id)
UPDATE poll_requests SET http_requests = http_requests + 1 WHERE id = (SELECT poll_request_id FROM r)`
