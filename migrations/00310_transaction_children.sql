-- +goose Up
-- The rows that belong to one transaction (its HTTP Requests, log lines and
-- Stage) name it without a foreign key. A foreign key's check is a query per
-- inserted row that probes the transaction's row and locks it FOR KEY SHARE:
-- a WAL record and a dirtied page even when the same database transaction
-- has just updated that row, as the engine has when it records an attempt
-- (7.5-13 microseconds and 56 bytes of WAL a row, measured on this machine).
-- The engine writes an HTTP Request and two log lines per delivered
-- transaction: with this migration, PostgreSQL's CPU per delivered
-- transaction fell 13 % (median 0.291 against 0.336 ms, six alternating
-- pairs on a durable cluster) and delivery rose 7 %; a drain of 100,000
-- took 15 % less time, 19 % less PostgreSQL CPU (docs/engine.md, "Eighth
-- round", bench/results/engine-children-ab.txt). The Stage's check is one
-- per transaction created (the ticket edit, inbound): gone for the same
-- reason.
--
-- Nothing can point at a missing transaction: transactions are never
-- deleted (they are the history; an integration that has any cannot be
-- deleted), and every writer of these rows takes the transaction's id from
-- the row it has just inserted, claimed or read. TestStateChangesRecorded
-- (internal/statehistory) lists every statement that writes transactions:
-- a DELETE would show there. Should a tool or a test delete transactions, a
-- statement trigger deletes their rows with them, as ON DELETE CASCADE did.
-- field_conflicts keeps its key (ON DELETE SET NULL): it is written once per
-- conflict, not per delivery.
ALTER TABLE http_requests DROP CONSTRAINT http_requests_transaction_id_fkey;
ALTER TABLE transaction_logs DROP CONSTRAINT transaction_logs_transaction_id_fkey;
ALTER TABLE stages DROP CONSTRAINT stages_transaction_id_fkey;

-- +goose StatementBegin
CREATE FUNCTION delete_transaction_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM http_requests r USING old_rows o WHERE r.transaction_id = o.id;
    DELETE FROM transaction_logs l USING old_rows o WHERE l.transaction_id = o.id;
    DELETE FROM stages s USING old_rows o WHERE s.transaction_id = o.id;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER transactions_children_delete AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION delete_transaction_children();

-- +goose Down
DROP TRIGGER transactions_children_delete ON transactions;
DROP FUNCTION delete_transaction_children();
ALTER TABLE http_requests ADD CONSTRAINT http_requests_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES transactions (id) ON DELETE CASCADE;
ALTER TABLE transaction_logs ADD CONSTRAINT transaction_logs_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES transactions (id) ON DELETE CASCADE;
ALTER TABLE stages ADD CONSTRAINT stages_transaction_id_fkey
    FOREIGN KEY (transaction_id) REFERENCES transactions (id) ON DELETE CASCADE;
