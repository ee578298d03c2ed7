-- +goose Up
-- The Designer (docs/designer.md). Every configuration record carries a
-- version: an edit names the version it was based on and is refused (409)
-- when the record has moved on meanwhile (models/designer).
ALTER TABLE processes        ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE integrations     ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE connections      ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE messages         ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE fields           ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);
ALTER TABLE response_actions ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- Activating a connection deactivates the others of its integration in one
-- statement (UPDATE ... SET active = (id = $1)). A unique index is checked row
-- by row, so that statement could trip over the old active row depending on
-- the order it visits rows; a deferrable constraint is checked at the end of
-- the statement, when exactly one is active again.
DROP INDEX connections_one_active;
ALTER TABLE connections ADD CONSTRAINT connections_one_active
    EXCLUDE USING btree (integration_id WITH =) WHERE (active) DEFERRABLE INITIALLY IMMEDIATE;

-- The configuration version of every server process: each statement that
-- changes configuration counts it up and notifies channel unifi_config with
-- the new number when it commits. Every server drops its cached
-- configuration (the engine's, the inbound API's snapshot) on the
-- notification, so a saved change is used everywhere within a second.
CREATE TABLE config_version (
    one         boolean PRIMARY KEY DEFAULT true CHECK (one),
    version     bigint NOT NULL DEFAULT 1,
    changed_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO config_version DEFAULT VALUES;

-- +goose StatementBegin
CREATE FUNCTION notify_config_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    UPDATE config_version SET version = version + 1, changed_at = now() RETURNING version INTO v;
    PERFORM pg_notify('unifi_config', v::text || ' ' || TG_TABLE_NAME);
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- Statement-level: one bump per statement. An integration's status and
-- paused_at are set by the engine and operations, not by configuration.
CREATE TRIGGER processes_config AFTER INSERT OR DELETE OR UPDATE ON processes
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER integrations_config AFTER INSERT OR DELETE OR UPDATE OF name, description, process_id, state,
    sync_timeout_s, async_timeout_s, retry_limit, retry_delay_s, attach_logs, heartbeat_s, version ON integrations
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER connections_config AFTER INSERT OR DELETE OR UPDATE ON connections
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER messages_config AFTER INSERT OR DELETE OR UPDATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER fields_config AFTER INSERT OR DELETE OR UPDATE ON fields
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();
CREATE TRIGGER response_actions_config AFTER INSERT OR DELETE OR UPDATE ON response_actions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();

-- +goose Down
DROP TRIGGER processes_config ON processes;
DROP TRIGGER integrations_config ON integrations;
DROP TRIGGER connections_config ON connections;
DROP TRIGGER messages_config ON messages;
DROP TRIGGER fields_config ON fields;
DROP TRIGGER response_actions_config ON response_actions;
DROP FUNCTION notify_config_change();
DROP TABLE config_version;
ALTER TABLE connections DROP CONSTRAINT connections_one_active;
CREATE UNIQUE INDEX connections_one_active ON connections (integration_id) WHERE active;
ALTER TABLE processes DROP COLUMN version;
ALTER TABLE integrations DROP COLUMN version;
ALTER TABLE connections DROP COLUMN version;
ALTER TABLE messages DROP COLUMN version;
ALTER TABLE fields DROP COLUMN version;
ALTER TABLE response_actions DROP COLUMN version;
