-- +goose Up
-- The inbound API keeps each server process's copy of what it needs to check a
-- message (integrations, their processes, active connections, inbound messages
-- and fields, integration accounts' token hashes) in memory. This row names
-- the version of that configuration: every statement that changes any of it
-- sets a new random version, and a batch of inbound messages reads the version
-- in the same database transaction that applies them, so a process never
-- applies a message against a configuration that has changed (whichever
-- process, or psql, changed it). Random rather than counted: a database
-- restored from a backup cannot hand out a version a process saw before.
CREATE TABLE inbound_config_version (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    version  uuid NOT NULL DEFAULT gen_random_uuid()
);
INSERT INTO inbound_config_version DEFAULT VALUES;

-- +goose StatementBegin
CREATE FUNCTION bump_inbound_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE inbound_config_version SET version = gen_random_uuid();
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- Statement-level: one bump per statement, whatever it touched. Only the
-- columns the inbound checks read: a user's session epoch, an integration's
-- status or paused_at change often and do not matter here.
CREATE TRIGGER users_inbound_config AFTER INSERT OR DELETE OR UPDATE OF id, role, token_hash, active ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER processes_inbound_config AFTER INSERT OR DELETE OR UPDATE OF id, number_prefix, ticket_table ON processes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER integrations_inbound_config AFTER INSERT OR DELETE OR UPDATE OF id, name, state, attach_logs, process_id
    ON integrations FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER connections_inbound_config AFTER INSERT OR DELETE OR UPDATE OF id, integration_id, active, inbound_user_id
    ON connections FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER messages_inbound_config AFTER INSERT OR DELETE OR UPDATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER fields_inbound_config AFTER INSERT OR DELETE OR UPDATE ON fields
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER users_inbound_config_truncate AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER processes_inbound_config_truncate AFTER TRUNCATE ON processes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER integrations_inbound_config_truncate AFTER TRUNCATE ON integrations
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER connections_inbound_config_truncate AFTER TRUNCATE ON connections
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER messages_inbound_config_truncate AFTER TRUNCATE ON messages
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();
CREATE TRIGGER fields_inbound_config_truncate AFTER TRUNCATE ON fields
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();

-- +goose Down
DROP TRIGGER users_inbound_config ON users;
DROP TRIGGER processes_inbound_config ON processes;
DROP TRIGGER integrations_inbound_config ON integrations;
DROP TRIGGER connections_inbound_config ON connections;
DROP TRIGGER messages_inbound_config ON messages;
DROP TRIGGER fields_inbound_config ON fields;
DROP TRIGGER users_inbound_config_truncate ON users;
DROP TRIGGER processes_inbound_config_truncate ON processes;
DROP TRIGGER integrations_inbound_config_truncate ON integrations;
DROP TRIGGER connections_inbound_config_truncate ON connections;
DROP TRIGGER messages_inbound_config_truncate ON messages;
DROP TRIGGER fields_inbound_config_truncate ON fields;
DROP FUNCTION bump_inbound_config_version();
DROP TABLE inbound_config_version;
