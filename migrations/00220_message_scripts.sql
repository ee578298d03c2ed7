-- +goose Up
-- Message scripts (docs/scripting.md): per message, at most one script per
-- point. version counts saves of the script; the engine and the inbound API
-- compile a script once per (id, version).
CREATE TABLE message_scripts (
    id          bigserial PRIMARY KEY,
    message_id  bigint NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    point       text NOT NULL CHECK (point IN ('source_to_stage', 'stage_to_request', 'response', 'identify',
                    'reference_lookup', 'payload_to_stage', 'stage_to_target', 'trigger_condition')),
    source      text NOT NULL CHECK (length(source) <= 65536),
    version     bigint NOT NULL DEFAULT 1 CHECK (version > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, point)
);

-- Connection variables: values a script reads as vars.NAME, per connection,
-- so one message set serves Test and Production.
CREATE TABLE connection_variables (
    id             bigserial PRIMARY KEY,
    connection_id  bigint NOT NULL REFERENCES connections (id) ON DELETE CASCADE,
    name           text NOT NULL CHECK (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,63}$'),
    value          text NOT NULL CHECK (length(value) <= 4096),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (connection_id, name)
);

-- The inbound API's configuration copy includes both (migration 00060).
CREATE TRIGGER message_scripts_inbound_config AFTER INSERT OR DELETE OR UPDATE ON message_scripts
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER connection_variables_inbound_config AFTER INSERT OR DELETE OR UPDATE ON connection_variables
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();

-- A saved script or variable is live on every server process: the engine
-- drops its cached configuration on unifi_config (migration 00170).
CREATE TRIGGER message_scripts_config AFTER INSERT OR DELETE OR UPDATE ON message_scripts
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER connection_variables_config AFTER INSERT OR DELETE OR UPDATE ON connection_variables
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();

-- A script's log(...) lines are transaction log lines of their own kind.
ALTER TABLE transaction_logs DROP CONSTRAINT transaction_logs_kind_check;
ALTER TABLE transaction_logs ADD CONSTRAINT transaction_logs_kind_check CHECK (kind IN ('message send',
    'transaction send', 'transaction receive', 'transaction next queued', 'script'));

-- +goose Down
DELETE FROM transaction_logs WHERE kind = 'script';
ALTER TABLE transaction_logs DROP CONSTRAINT transaction_logs_kind_check;
ALTER TABLE transaction_logs ADD CONSTRAINT transaction_logs_kind_check CHECK (kind IN ('message send',
    'transaction send', 'transaction receive', 'transaction next queued'));
DROP TABLE connection_variables;
DROP TABLE message_scripts;
