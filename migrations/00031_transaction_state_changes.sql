-- +goose Up
-- Every transaction state change is recorded (the Transaction page's timeline)
-- and the integration page's counts by state stay fast at millions of rows.
--
-- Writes must not contend: a trigger only APPENDS a row to
-- transaction_state_changes_recent (no row locks on shared counters). A
-- compaction (models.CompactTransactionCounts, run by readers and a ticker)
-- moves those rows in one statement into the archive table and adds them to
-- transaction_state_counts. Counts = counts + the recent rows not yet moved, in
-- one snapshot, so a reader never sees a change twice or not at all.
CREATE TABLE transaction_state_changes (
    id              bigint NOT NULL,
    transaction_id  bigint NOT NULL,
    integration_id  bigint NOT NULL,
    from_state      smallint,               -- NULL: the transaction was created
    to_state        smallint,               -- NULL: the transaction was deleted
    changed_at      timestamptz NOT NULL
);
CREATE INDEX transaction_state_changes_transaction ON transaction_state_changes (transaction_id, id);
-- Operations view: transactions that broke in the last hour.
CREATE INDEX transaction_state_changes_broken ON transaction_state_changes (integration_id, changed_at)
    WHERE to_state IN (7, 8);

CREATE SEQUENCE transaction_state_change_seq;
CREATE TABLE transaction_state_changes_recent (
    id              bigint NOT NULL DEFAULT nextval('transaction_state_change_seq'),
    transaction_id  bigint NOT NULL,
    integration_id  bigint NOT NULL,
    from_state      smallint,
    to_state        smallint,
    changed_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX transaction_state_changes_recent_integration ON transaction_state_changes_recent (integration_id);
CREATE INDEX transaction_state_changes_recent_transaction ON transaction_state_changes_recent (transaction_id);

CREATE TABLE transaction_state_counts (
    integration_id  bigint NOT NULL,
    state           smallint NOT NULL,
    n               bigint NOT NULL,
    PRIMARY KEY (integration_id, state)
);

-- +goose StatementBegin
CREATE FUNCTION record_transaction_state_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The generator (unifi gen) writes history and counts in bulk itself.
    IF current_setting('unifi.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
        VALUES (NEW.id, NEW.integration_id, NULL, NEW.state);
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
        VALUES (NEW.id, NEW.integration_id, OLD.state, NEW.state);
    ELSE
        INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
        VALUES (OLD.id, OLD.integration_id, OLD.state, NULL);
    END IF;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER transactions_state_insert AFTER INSERT ON transactions
    FOR EACH ROW EXECUTE FUNCTION record_transaction_state_change();
CREATE TRIGGER transactions_state_update AFTER UPDATE OF state ON transactions
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION record_transaction_state_change();
CREATE TRIGGER transactions_state_delete AFTER DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION record_transaction_state_change();

-- +goose Down
DROP TRIGGER transactions_state_insert ON transactions;
DROP TRIGGER transactions_state_update ON transactions;
DROP TRIGGER transactions_state_delete ON transactions;
DROP FUNCTION record_transaction_state_change();
DROP TABLE transaction_state_counts, transaction_state_changes_recent, transaction_state_changes;
DROP SEQUENCE transaction_state_change_seq;
