-- +goose Up
-- Fewer index insertions per transaction write (issue 3): every delivered
-- transaction is written three times (created, Queued -> Sending, Sending ->
-- Complete; none of them a HOT update) and each of its state changes appends
-- a history row.
--
-- Message ids are unique across the whole table by construction (one
-- sequence, MSG0000123, and replays add .1, .2 to their root's id), so one
-- unique index on message_ident with text_pattern_ops replaces the unique
-- (integration_id, direction, message_ident) and the non-unique prefix-search
-- index: it serves equality (a receipt finds its transaction) and LIKE 'MSG12%'
-- (the transactions list's search) and still refuses a duplicate.
DROP INDEX transactions_message_ident_pattern;
ALTER TABLE transactions DROP CONSTRAINT transactions_integration_id_direction_message_ident_key;
CREATE UNIQUE INDEX transactions_message_ident ON transactions (message_ident text_pattern_ops);

-- The recent state changes are a short queue: the count compactor empties it
-- every two seconds (models.RunCountCompactor) and a reader that finds more
-- than 20,000 rows there compacts it first. Reading a table that small in
-- full is cheaper than keeping two indexes on every state change.
DROP INDEX transaction_state_changes_recent_integration, transaction_state_changes_recent_transaction;

-- +goose Down
CREATE INDEX transaction_state_changes_recent_integration ON transaction_state_changes_recent (integration_id);
CREATE INDEX transaction_state_changes_recent_transaction ON transaction_state_changes_recent (transaction_id);
DROP INDEX transactions_message_ident;
ALTER TABLE transactions ADD CONSTRAINT transactions_integration_id_direction_message_ident_key
    UNIQUE (integration_id, direction, message_ident);
CREATE INDEX transactions_message_ident_pattern ON transactions (message_ident text_pattern_ops);
