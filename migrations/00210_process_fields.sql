-- +goose Up
-- Processes and their own ticket fields (docs/domain.md, Processes and their
-- fields). The number prefix of a process is processes.number_prefix (00001).
CREATE TABLE process_fields (
    id          bigserial PRIMARY KEY,
    process_id  bigint NOT NULL REFERENCES processes (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[a-z][a-z0-9_]{0,39}$'),
    label       text NOT NULL CHECK (length(label) BETWEEN 1 AND 80),
    type        text NOT NULL CHECK (type IN ('text', 'long_text', 'number', 'choice', 'datetime', 'boolean')),
    choices     jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(choices) = 'array'),
    required    boolean NOT NULL DEFAULT false,
    position    integer NOT NULL DEFAULT 0,
    version     integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (process_id, name),
    CHECK ((type = 'choice') = (jsonb_array_length(choices) > 0))
);

-- The inbound API validates mapped custom fields against these definitions:
-- a change makes its cached snapshot stale, like a change of the fields table.
CREATE TRIGGER process_fields_inbound_config AFTER INSERT OR DELETE OR UPDATE ON process_fields
    FOR EACH STATEMENT EXECUTE FUNCTION bump_inbound_config_version();

-- A process field is configuration like the process itself (migration
-- 00170): every server process drops its cached engine and inbound
-- configuration on the notification, so a new or changed field is validated
-- and mapped everywhere within a second.
CREATE TRIGGER process_fields_config AFTER INSERT OR DELETE OR UPDATE ON process_fields
    FOR EACH STATEMENT EXECUTE FUNCTION notify_config_change();

-- A ticket's values of its process's own fields, by field name: text, number,
-- boolean, or date-time as RFC 3339 text (models.ProcessField.ParseValue).
ALTER TABLE tickets ADD COLUMN custom jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(custom) = 'object');

-- A message Field maps a built-in ticket field or a process field,
-- "custom.<name>" (models.CustomPrefix).
ALTER TABLE fields DROP CONSTRAINT fields_ticket_field_check;
ALTER TABLE fields ADD CONSTRAINT fields_ticket_field_check CHECK (ticket_field IN ('short_description',
    'description', 'state', 'priority', 'urgency', 'impact', 'assignment_group', 'work_notes')
    OR ticket_field ~ '^custom\.[a-z][a-z0-9_]{0,39}$');

-- +goose Down
DELETE FROM fields WHERE ticket_field LIKE 'custom.%';
ALTER TABLE fields DROP CONSTRAINT fields_ticket_field_check;
ALTER TABLE fields ADD CONSTRAINT fields_ticket_field_check CHECK (ticket_field IN ('short_description',
    'description', 'state', 'priority', 'urgency', 'impact', 'assignment_group', 'work_notes'));
ALTER TABLE tickets DROP COLUMN custom;
DROP TABLE process_fields; -- its triggers with it
