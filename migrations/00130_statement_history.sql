-- +goose Up
-- Every transaction state change is recorded by statement-level triggers with
-- transition tables: one PL/pgSQL call and one INSERT ... SELECT per statement
-- that touches transactions, whatever the number of rows. This replaces the
-- row triggers of migration 00031 and the opt-out of migration 00100 (the
-- engine's statements wrote their own history and set unifi.history =
-- 'written' for the rest of their database transaction, so any later state
-- change in it went unrecorded). There is no opt-out left but unifi.bulk_load,
-- which the generator (unifi gen) sets for its own inserts: it writes history
-- and counts in bulk itself.
--
-- The rows are those the row triggers wrote, in the same order (the order in
-- which the statement changed the rows: transition tables are read in that
-- order, and the sequence's values are taken after the ORDER BY).
-- PostgreSQL allows no column list (UPDATE OF state) with transition tables;
-- an update that changes no state inserts nothing.
DROP TRIGGER transactions_state_insert ON transactions;
DROP TRIGGER transactions_state_update ON transactions;
DROP TRIGGER transactions_state_delete ON transactions;

-- +goose StatementBegin
CREATE FUNCTION record_transaction_states_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('unifi.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
    SELECT n.id, n.integration_id, NULL, n.state
    FROM (SELECT id, integration_id, state, row_number() OVER () AS ord FROM new_rows) n
    ORDER BY n.ord;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION record_transaction_states_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('unifi.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
    SELECT n.id, n.integration_id, o.state, n.state
    FROM (SELECT id, integration_id, state, row_number() OVER () AS ord FROM new_rows) n
    JOIN old_rows o ON o.id = n.id
    WHERE o.state IS DISTINCT FROM n.state
    ORDER BY n.ord;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION record_transaction_states_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('unifi.bulk_load', true) = 'on' THEN
        RETURN NULL;
    END IF;
    INSERT INTO transaction_state_changes_recent (transaction_id, integration_id, from_state, to_state)
    SELECT o.id, o.integration_id, o.state, NULL
    FROM (SELECT id, integration_id, state, row_number() OVER () AS ord FROM old_rows) o
    ORDER BY o.ord;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER transactions_state_insert AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_transaction_states_inserted();
CREATE TRIGGER transactions_state_update AFTER UPDATE ON transactions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_transaction_states_updated();
CREATE TRIGGER transactions_state_delete AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_transaction_states_deleted();

-- +goose Down
DROP TRIGGER transactions_state_insert ON transactions;
DROP TRIGGER transactions_state_update ON transactions;
DROP TRIGGER transactions_state_delete ON transactions;
DROP FUNCTION record_transaction_states_inserted();
DROP FUNCTION record_transaction_states_updated();
DROP FUNCTION record_transaction_states_deleted();
CREATE TRIGGER transactions_state_insert AFTER INSERT ON transactions
    FOR EACH ROW EXECUTE FUNCTION record_transaction_state_change();
CREATE TRIGGER transactions_state_update AFTER UPDATE OF state ON transactions
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND current_setting('unifi.history', true) IS DISTINCT FROM 'written')
    EXECUTE FUNCTION record_transaction_state_change();
CREATE TRIGGER transactions_state_delete AFTER DELETE ON transactions
    FOR EACH ROW EXECUTE FUNCTION record_transaction_state_change();
