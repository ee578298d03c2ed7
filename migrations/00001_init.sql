-- +goose Up
-- The whole data model of docs/domain.md ("Records"). State columns carry CHECK constraints; the
-- transaction states are the sequence numbers of docs/domain.md (Sending 0 .. Ignored 9).

CREATE TABLE users (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    role           text NOT NULL CHECK (role IN ('admin', 'manager', 'analyst', 'integration')),
    password_hash  text NOT NULL,
    token_hash     text UNIQUE,            -- sha256 of the bearer token (integration users)
    session_epoch  integer NOT NULL DEFAULT 0, -- bumped at logout: older session cookies stop working
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE processes (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name <> ''),
    ticket_table     text NOT NULL CHECK (ticket_table <> ''),
    reference_field  text NOT NULL DEFAULT 'number',
    number_prefix    text NOT NULL DEFAULT 'INC' CHECK (number_prefix ~ '^[A-Z]{2,6}$'),
    created_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE integrations (
    id               bigserial PRIMARY KEY,
    name             text NOT NULL UNIQUE CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    description      text NOT NULL DEFAULT '',
    process_id       bigint NOT NULL REFERENCES processes (id),
    state            text NOT NULL DEFAULT 'Active' CHECK (state IN ('Active', 'Paused', 'Off')),
    status           text NOT NULL DEFAULT 'Awaiting' CHECK (status IN ('Up', 'Down', 'Awaiting')),
    sync_timeout_s   integer NOT NULL DEFAULT 30 CHECK (sync_timeout_s BETWEEN 1 AND 600),
    async_timeout_s  integer NOT NULL DEFAULT 300 CHECK (async_timeout_s BETWEEN 1 AND 604800),
    retry_limit      integer NOT NULL DEFAULT 3 CHECK (retry_limit BETWEEN 0 AND 100),
    retry_delay_s    integer NOT NULL DEFAULT 5 CHECK (retry_delay_s BETWEEN 0 AND 86400),
    attach_logs      boolean NOT NULL DEFAULT true,
    heartbeat_s      integer NOT NULL DEFAULT 0 CHECK (heartbeat_s >= 0),
    paused_at        timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE connections (
    id               bigserial PRIMARY KEY,
    integration_id   bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    name             text NOT NULL CHECK (name <> ''),
    environment      text NOT NULL CHECK (environment IN ('Production', 'Pre-Production', 'Test', 'Development', 'Sandbox')),
    endpoint_url     text NOT NULL CHECK (endpoint_url ~ '^https?://'),
    auth_type        text NOT NULL DEFAULT 'none' CHECK (auth_type IN ('none', 'basic', 'bearer', 'oauth2')),
    auth_username    text NOT NULL DEFAULT '',
    auth_secret      text NOT NULL DEFAULT '',   -- password, token or client secret
    oauth_token_url  text NOT NULL DEFAULT '',
    oauth_client_id  text NOT NULL DEFAULT '',
    oauth_scopes     text NOT NULL DEFAULT '',
    inbound_user_id  bigint REFERENCES users (id),
    active           boolean NOT NULL DEFAULT false,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (integration_id, name)
);
-- Exactly one connection of an integration is active.
CREATE UNIQUE INDEX connections_one_active ON connections (integration_id) WHERE active;

CREATE TABLE messages (
    id                   bigserial PRIMARY KEY,
    integration_id       bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    name                 text NOT NULL CHECK (name ~ '^[A-Za-z][A-Za-z0-9_]{0,63}$'),
    type                 text NOT NULL CHECK (type IN ('Create', 'Update', 'Receipt', 'Response', 'Heartbeat')),
    direction            text NOT NULL CHECK (direction IN ('Inbound', 'Outbound', 'Bidirectional')),
    async                boolean NOT NULL DEFAULT false,
    receipt_message_id   bigint REFERENCES messages (id),
    path                 text NOT NULL DEFAULT '',
    trigger              text NOT NULL DEFAULT 'none' CHECK (trigger IN ('none', 'create', 'update', 'resolve')),
    bond_ownership       text NOT NULL DEFAULT 'ignore' CHECK (bond_ownership IN ('ignore', 'must_own', 'must_not_own')),
    allowed_bond_states  jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(allowed_bond_states) = 'array'),
    set_bond_state       text CHECK (set_bond_state IN ('Pending', 'Open', 'Suspended', 'Vendor suspended', 'Closed')),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    UNIQUE (integration_id, name),
    CHECK (NOT async OR receipt_message_id IS NOT NULL)
);

CREATE TABLE fields (
    id             bigserial PRIMARY KEY,
    message_id     bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    ticket_field   text NOT NULL CHECK (ticket_field IN ('short_description', 'description', 'state', 'priority',
                                                         'urgency', 'impact', 'assignment_group', 'work_notes')),
    property       text NOT NULL CHECK (property ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    value_map      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(value_map) = 'object'), -- ticket value -> payload value
    required       boolean NOT NULL DEFAULT false,
    position       integer NOT NULL DEFAULT 0,
    UNIQUE (message_id, property),
    UNIQUE (message_id, ticket_field)
);

CREATE TABLE response_actions (
    id                      bigserial PRIMARY KEY,
    integration_id          bigint REFERENCES integrations (id) ON DELETE CASCADE, -- NULL: applies everywhere
    message_id              bigint REFERENCES messages (id) ON DELETE CASCADE,     -- NULL: every message
    status_code             integer NOT NULL CHECK (status_code BETWEEN 100 AND 599),
    retry                   boolean NOT NULL,
    set_integration_status  text CHECK (set_integration_status IN ('Up', 'Down', 'Awaiting')),
    description             text NOT NULL DEFAULT '',
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX response_actions_scope ON response_actions
    (coalesce(integration_id, 0), coalesce(message_id, 0), status_code);
INSERT INTO response_actions (status_code, retry, set_integration_status, description)
VALUES (401, false, 'Down', 'No retry for requests with 401 response: credentials do not fix themselves');

CREATE SEQUENCE ticket_number_seq;
CREATE TABLE tickets (
    id                 bigserial PRIMARY KEY,
    process_id         bigint NOT NULL REFERENCES processes (id),
    number             text NOT NULL UNIQUE,
    short_description  text NOT NULL CHECK (length(short_description) BETWEEN 1 AND 160),
    description        text NOT NULL DEFAULT '' CHECK (length(description) <= 32000),
    state              text NOT NULL DEFAULT 'New'
                       CHECK (state IN ('New', 'In Progress', 'On Hold', 'Resolved', 'Closed', 'Cancelled')),
    priority           smallint NOT NULL DEFAULT 4 CHECK (priority BETWEEN 1 AND 5),
    urgency            smallint NOT NULL DEFAULT 3 CHECK (urgency BETWEEN 1 AND 3),
    impact             smallint NOT NULL DEFAULT 3 CHECK (impact BETWEEN 1 AND 3),
    assignment_group   text NOT NULL DEFAULT '' CHECK (length(assignment_group) <= 100),
    work_notes         text NOT NULL DEFAULT '' CHECK (length(work_notes) <= 32000),
    version            integer NOT NULL DEFAULT 1,
    created_by_id      bigint REFERENCES users (id),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tickets_updated ON tickets (updated_at DESC, id DESC);

CREATE TABLE bonds (
    id                  bigserial PRIMARY KEY,
    integration_id      bigint NOT NULL REFERENCES integrations (id),
    ticket_id           bigint NOT NULL REFERENCES tickets (id),
    internal_reference  text NOT NULL,
    external_reference  text NOT NULL DEFAULT '',
    state               text NOT NULL DEFAULT 'Pending'
                        CHECK (state IN ('Pending', 'Open', 'Suspended', 'Vendor suspended', 'Closed')),
    owner               boolean NOT NULL DEFAULT false,
    history             text NOT NULL DEFAULT '',
    process_error       text NOT NULL DEFAULT '',
    next_seq            bigint NOT NULL DEFAULT 0,     -- last sequence number handed to a transaction
    last_inbound_at     timestamptz,                   -- sender time stamp of the newest applied inbound message
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (integration_id, ticket_id)
);
CREATE INDEX bonds_external ON bonds (integration_id, external_reference) WHERE external_reference <> '';
CREATE INDEX bonds_updated ON bonds (updated_at DESC, id DESC);
CREATE INDEX bonds_process_error ON bonds (ticket_id) WHERE process_error <> '';

CREATE SEQUENCE message_number_seq;
CREATE SEQUENCE transaction_number_seq;
CREATE TABLE transactions (
    id                   bigserial PRIMARY KEY,
    number               text NOT NULL,                  -- TRN0000001, replays TRN0000001.1
    message_ident        text NOT NULL,                  -- the Message ID: MSG0000001, replays MSG0000001.1
    external_message_id  text NOT NULL DEFAULT '',
    integration_id       bigint NOT NULL REFERENCES integrations (id),
    bond_id              bigint NOT NULL REFERENCES bonds (id),
    message_id           bigint NOT NULL REFERENCES messages (id),
    ticket_id            bigint NOT NULL REFERENCES tickets (id),
    table_name           text NOT NULL DEFAULT 'incident',
    direction            text NOT NULL CHECK (direction IN ('Inbound', 'Outbound')),
    state                smallint NOT NULL CHECK (state BETWEEN 0 AND 9),
    process_state        smallint NOT NULL DEFAULT 0 CHECK (process_state BETWEEN 0 AND 2),
    seq                  bigint NOT NULL,                -- position in the bond's order
    attempts             integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at      timestamptz NOT NULL DEFAULT now(),
    receipt_due_at       timestamptz,
    lease_owner          text,
    lease_expires_at     timestamptz,
    error                text NOT NULL DEFAULT '',
    process_error        text NOT NULL DEFAULT '',
    replay_of_id         bigint REFERENCES transactions (id),
    replay_count         integer NOT NULL DEFAULT 0,     -- replays made from this (root) transaction
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    UNIQUE (integration_id, direction, message_ident),
    CHECK (state <> 2 OR receipt_due_at IS NOT NULL),
    CHECK (direction = 'Outbound' OR state IN (1, 3, 5, 8, 9)),
    CHECK (direction = 'Inbound' OR state IN (0, 2, 4, 5, 6, 7, 8, 9))
);
-- An inbound source_id is received once per integration (duplicate check).
CREATE UNIQUE INDEX transactions_inbound_source ON transactions (integration_id, external_message_id)
    WHERE direction = 'Inbound';
-- At most one outbound transaction per bond is in progress; later ones wait in Queued (6).
CREATE UNIQUE INDEX transactions_bond_head ON transactions (bond_id)
    WHERE direction = 'Outbound' AND state IN (0, 2, 4, 7, 8);
CREATE INDEX transactions_bond_order ON transactions (bond_id, seq, id);
CREATE INDEX transactions_integration_state ON transactions (integration_id, state, created_at, id);
CREATE INDEX transactions_created ON transactions (created_at DESC, id DESC);
CREATE INDEX transactions_ticket ON transactions (ticket_id, id);
CREATE INDEX transactions_replay_of ON transactions (replay_of_id) WHERE replay_of_id IS NOT NULL;
CREATE INDEX transactions_external_ident ON transactions (external_message_id) WHERE external_message_id <> '';
-- Work the engine claims: Sending (0) and Sending Receipt (3), by due time.
CREATE INDEX transactions_claimable ON transactions (next_attempt_at, id) WHERE state IN (0, 3);
CREATE INDEX transactions_receipt_due ON transactions (receipt_due_at) WHERE state = 2;

CREATE TABLE stages (
    id              bigserial PRIMARY KEY,
    transaction_id  bigint NOT NULL UNIQUE REFERENCES transactions (id) ON DELETE CASCADE,
    data            jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(data) = 'object'),
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE http_requests (
    id                bigserial PRIMARY KEY,
    transaction_id    bigint REFERENCES transactions (id) ON DELETE CASCADE,  -- NULL for a refused inbound request
    integration_id    bigint REFERENCES integrations (id),
    direction         text NOT NULL CHECK (direction IN ('Inbound', 'Outbound')),
    state             smallint NOT NULL CHECK (state BETWEEN 0 AND 4),
    attempt           integer NOT NULL DEFAULT 1 CHECK (attempt >= 1),
    method            text NOT NULL,
    url               text NOT NULL,
    request_headers   jsonb NOT NULL DEFAULT '{}',
    request_body      text NOT NULL DEFAULT '',
    response_status   integer,
    response_headers  jsonb NOT NULL DEFAULT '{}',
    response_body     text NOT NULL DEFAULT '',
    duration_ms       integer,
    error             text NOT NULL DEFAULT '',
    response_action   text NOT NULL DEFAULT '',
    send_after        timestamptz,                  -- a Pending (0) retry waits until then
    replay_of_id      bigint REFERENCES http_requests (id),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 0 OR send_after IS NOT NULL)
);
CREATE INDEX http_requests_transaction ON http_requests (transaction_id, id);
CREATE INDEX http_requests_integration ON http_requests (integration_id, created_at DESC, id DESC);

CREATE TABLE transaction_logs (
    id              bigserial PRIMARY KEY,
    transaction_id  bigint NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('message send', 'transaction send', 'transaction receive',
                                                  'transaction next queued')),
    level           text NOT NULL DEFAULT 'info' CHECK (level IN ('debug', 'info', 'warn', 'error')),
    line            text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transaction_logs_transaction ON transaction_logs (transaction_id, id);

CREATE TABLE activity_logs (
    id            bigserial PRIMARY KEY,
    user_id       bigint REFERENCES users (id),
    user_name     text NOT NULL,
    action        text NOT NULL,
    record_type   text NOT NULL,
    record_id     bigint,
    record_label  text NOT NULL DEFAULT '',
    before        jsonb,
    after         jsonb,
    remote_addr   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX activity_logs_created ON activity_logs (created_at DESC, id DESC);
CREATE INDEX activity_logs_record ON activity_logs (record_type, record_id, id DESC);

CREATE TABLE bulk_jobs (
    id                bigserial PRIMARY KEY,
    kind              text NOT NULL CHECK (kind IN ('resume', 'repair', 'replay', 'ignore')),
    integration_id    bigint REFERENCES integrations (id),
    state             text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'complete', 'failed', 'cancelled')),
    total             integer NOT NULL DEFAULT 0 CHECK (total >= 0),
    done              integer NOT NULL DEFAULT 0 CHECK (done >= 0),
    failed            integer NOT NULL DEFAULT 0 CHECK (failed >= 0),
    started_by_id     bigint REFERENCES users (id),
    lease_owner       text,
    lease_expires_at  timestamptz,
    error             text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    CHECK (done + failed <= total)
);
-- One running resume or repair per integration.
CREATE UNIQUE INDEX bulk_jobs_one_running ON bulk_jobs (integration_id, kind)
    WHERE state = 'running' AND kind IN ('resume', 'repair');
CREATE INDEX bulk_jobs_running ON bulk_jobs (id) WHERE state = 'running';

CREATE TABLE bulk_job_items (
    job_id                 bigint NOT NULL REFERENCES bulk_jobs (id) ON DELETE CASCADE,
    transaction_id         bigint NOT NULL REFERENCES transactions (id),
    position               integer NOT NULL,
    state                  text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'acted', 'done', 'failed')),
    result_transaction_id  bigint REFERENCES transactions (id),
    error                  text NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, transaction_id)
);
CREATE INDEX bulk_job_items_work ON bulk_job_items (job_id, state, position);

-- +goose Down
DROP TABLE bulk_job_items, bulk_jobs, activity_logs, transaction_logs, http_requests, stages, transactions,
    bonds, tickets, response_actions, fields, messages, connections, integrations, processes, users CASCADE;
DROP SEQUENCE transaction_number_seq, message_number_seq, ticket_number_seq;
