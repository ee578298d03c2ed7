-- +goose Up
-- Fewer index insertions per transaction write: every delivered
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

-- The recent state changes are a short queue: the server's count compactor
-- empties it every two seconds (models.RunCountCompactor), a few thousand
-- rows under full load. The Transaction page's timeline reads one
-- transaction's rows from it, and reading that little in full is cheaper than
-- an index entry for every state change. The counts keep their index: the
-- operations view reads them for every integration.
DROP INDEX transaction_state_changes_recent_transaction;

-- +goose Down
CREATE INDEX transaction_state_changes_recent_transaction ON transaction_state_changes_recent (transaction_id);
DROP INDEX transactions_message_ident;
ALTER TABLE transactions ADD CONSTRAINT transactions_integration_id_direction_message_ident_key
    UNIQUE (integration_id, direction, message_ident);
CREATE INDEX transactions_message_ident_pattern ON transactions (message_ident text_pattern_ops);
