-- +goose Up
-- The engine's batch statements (models.RecordAttempts: the attempts'
-- results, and the release of each finished bond's next transaction) append
-- the history of the state changes they make themselves, one INSERT per
-- statement, and set unifi.history = 'written' for their database
-- transaction; the row trigger, a PL/pgSQL call and an INSERT per changed
-- row, stays out of their way. Every other state change is still recorded by
-- the trigger.
DROP TRIGGER transactions_state_update ON transactions;
CREATE TRIGGER transactions_state_update AFTER UPDATE OF state ON transactions
    FOR EACH ROW
    WHEN (OLD.state IS DISTINCT FROM NEW.state AND current_setting('unifi.history', true) IS DISTINCT FROM 'written')
    EXECUTE FUNCTION record_transaction_state_change();

-- +goose Down
DROP TRIGGER transactions_state_update ON transactions;
CREATE TRIGGER transactions_state_update AFTER UPDATE OF state ON transactions
    FOR EACH ROW WHEN (OLD.state IS DISTINCT FROM NEW.state) EXECUTE FUNCTION record_transaction_state_change();
