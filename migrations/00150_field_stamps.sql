-- +goose Up
-- Concurrent edits converge (docs/domain.md, "Concurrent edits converge"):
-- every ticket field carries the stamp of its last change, a message carries
-- the stamps of its fields, and a change that loses is recorded.

-- field -> {"at": sender time of the last change, "by": who}; '{}' for
-- tickets changed before stamps existed (their fields lose to any change).
ALTER TABLE tickets ADD COLUMN field_stamps jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(field_stamps) = 'object');

-- The wire stamps of an outbound message, by payload property, captured
-- with its Stage when the change was made (a replay sends them again); NULL
-- for inbound Stages and for transactions made before stamps existed.
ALTER TABLE stages ADD COLUMN stamps jsonb CHECK (stamps IS NULL OR jsonb_typeof(stamps) = 'object');

-- A change that lost: two changes of one field made without seeing each
-- other; one was kept on both sides, the other overwritten (on the side that
-- held it) or dropped (on the side it was sent to). Each side records what
-- it saw.
CREATE TABLE field_conflicts (
    id              bigserial PRIMARY KEY,
    ticket_id       bigint NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
    bond_id         bigint NOT NULL REFERENCES bonds (id) ON DELETE CASCADE,
    integration_id  bigint NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    transaction_id  bigint REFERENCES transactions (id) ON DELETE SET NULL, -- the inbound message that met it
    field           text NOT NULL,
    kept_value      text NOT NULL,
    lost_value      text NOT NULL,
    kept_at         timestamptz NOT NULL,
    kept_by         text NOT NULL DEFAULT '',
    lost_at         timestamptz, -- NULL: the lost value was never stamped
    lost_by         text NOT NULL DEFAULT '',
    kept            text NOT NULL CHECK (kept IN ('ours', 'theirs')), -- whose change was kept
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX field_conflicts_ticket ON field_conflicts (ticket_id, id);
CREATE INDEX field_conflicts_bond ON field_conflicts (bond_id, id);
CREATE INDEX field_conflicts_integration ON field_conflicts (integration_id, id);

-- +goose Down
DROP TABLE field_conflicts;
ALTER TABLE stages DROP COLUMN stamps;
ALTER TABLE tickets DROP COLUMN field_stamps;
