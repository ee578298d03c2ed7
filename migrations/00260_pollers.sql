-- +goose Up
-- Pollers (docs/pollers.md): for a remote system that cannot push, a poller
-- asks it for what changed on a schedule, and its poll processor's scripts
-- turn the answers into inbound messages.

-- A poll processor: the scripts of one kind of poll (Setup, Request,
-- Response). A Response may start further polls of other processors
-- (parent/child polls).
CREATE TABLE poll_processors (
    id               bigserial PRIMARY KEY,
    integration_id   bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    setup_script     text NOT NULL DEFAULT '' CHECK (length(setup_script) <= 100000),
    request_script   text NOT NULL DEFAULT '' CHECK (length(request_script) <= 100000),
    response_script  text NOT NULL DEFAULT '' CHECK (length(response_script) <= 100000),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (integration_id, name)
);

-- A poller: which processor runs when, as whom. The columns after "version"
-- are its running state, kept by the poll runner (worker/poll), not
-- configuration: the high-water mark, the lease that lets exactly one server
-- process run it at a time, the next run time (the database's clock) and the
-- back-off of a failing poller.
CREATE TABLE pollers (
    id               bigserial PRIMARY KEY,
    integration_id   bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    processor_id     bigint NOT NULL REFERENCES poll_processors (id),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    every_s          integer CHECK (every_s BETWEEN 1 AND 86400),
    cron             text NOT NULL DEFAULT '' CHECK (length(cron) <= 200),
    active           boolean NOT NULL DEFAULT false,
    run_as_user_id   bigint REFERENCES users (id),
    version          integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    mark             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(mark) = 'object'),
    next_run_at      timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_until      timestamptz,
    failures         integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    last_error       text NOT NULL DEFAULT '',
    last_run_at      timestamptz,
    UNIQUE (integration_id, name),
    CHECK ((every_s IS NULL) <> (cron = ''))
);
-- The claim: active pollers due now.
CREATE INDEX pollers_due ON pollers (next_run_at) WHERE active;

-- One run of a poller (a Poll Request), or a child poll a Response started.
CREATE TABLE poll_requests (
    id               bigserial PRIMARY KEY,
    poller_id        bigint NOT NULL REFERENCES pollers (id) ON DELETE CASCADE,
    integration_id   bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    processor_id     bigint REFERENCES poll_processors (id) ON DELETE SET NULL,
    parent_id        bigint REFERENCES poll_requests (id) ON DELETE CASCADE,
    state            text NOT NULL CHECK (state IN ('Running', 'Done', 'Error')),
    owner            text NOT NULL DEFAULT '',
    started_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    duration_ms      integer,
    http_requests    integer NOT NULL DEFAULT 0,
    items_found      integer NOT NULL DEFAULT 0,
    items_processed  integer NOT NULL DEFAULT 0,
    items_refused    integer NOT NULL DEFAULT 0,
    items_duplicate  integer NOT NULL DEFAULT 0,
    mark_before      jsonb NOT NULL DEFAULT '{}',
    mark_after       jsonb NOT NULL DEFAULT '{}',
    error            text NOT NULL DEFAULT '',
    CHECK ((state = 'Running') = (finished_at IS NULL))
);
CREATE INDEX poll_requests_poller ON poll_requests (poller_id, id DESC);
CREATE INDEX poll_requests_integration ON poll_requests (integration_id, id DESC);
CREATE INDEX poll_requests_running ON poll_requests (poller_id) WHERE state = 'Running';

-- The HTTP requests a poll made are HTTP Requests like the engine's.
ALTER TABLE http_requests ADD COLUMN poll_request_id bigint REFERENCES poll_requests (id) ON DELETE CASCADE;
CREATE INDEX http_requests_poll_request ON http_requests (poll_request_id, id) WHERE poll_request_id IS NOT NULL;

-- Configuration changes reach every server process (migration 00170). The
-- running-state columns of pollers notify nothing.
CREATE TRIGGER poll_processors_config AFTER INSERT OR DELETE OR UPDATE ON poll_processors
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER pollers_config AFTER INSERT OR DELETE OR UPDATE OF integration_id, processor_id, name, every_s, cron,
    active, run_as_user_id, version ON pollers
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();

-- +goose Down
DROP TRIGGER pollers_config ON pollers;
DROP TRIGGER poll_processors_config ON poll_processors;
ALTER TABLE http_requests DROP COLUMN poll_request_id;
DROP TABLE poll_requests, pollers, poll_processors;
