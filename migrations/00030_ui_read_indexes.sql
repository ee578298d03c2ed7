-- +goose Up
-- Indexes shaped for the admin UI's read queries. The transactions
-- list pages with a keyset on (created_at, id) newest first; each index below
-- lets one common filter walk that order without sorting.
CREATE INDEX transactions_integration_created ON transactions (integration_id, created_at DESC, id DESC);
CREATE INDEX transactions_state_created ON transactions (state, created_at DESC, id DESC);
CREATE INDEX transactions_bond_created ON transactions (bond_id, created_at DESC, id DESC);
-- Process errors are rare: a partial index finds the Rejected ones.
CREATE INDEX transactions_rejected_created ON transactions (created_at DESC, id DESC) WHERE process_state = 2;
-- Text search on identifiers: exact, or a replay suffix (MSG0000001.%).
CREATE INDEX transactions_number_pattern ON transactions (number text_pattern_ops);
CREATE INDEX transactions_message_ident_pattern ON transactions (message_ident text_pattern_ops);
CREATE INDEX bonds_internal_reference ON bonds (internal_reference);
CREATE INDEX bonds_external_reference ON bonds (external_reference) WHERE external_reference <> '';
-- Operations view: transactions finished recently.
CREATE INDEX transactions_finished ON transactions (finished_at DESC, id DESC) WHERE finished_at IS NOT NULL;
CREATE INDEX bonds_integration_updated ON bonds (integration_id, updated_at DESC, id DESC);
CREATE INDEX tickets_number_pattern ON tickets (number text_pattern_ops);
CREATE INDEX activity_logs_user ON activity_logs (user_name, id DESC);
CREATE INDEX activity_logs_action ON activity_logs (action, id DESC);

-- +goose Down
DROP INDEX transactions_integration_created, transactions_state_created, transactions_bond_created,
    transactions_rejected_created, transactions_number_pattern, transactions_message_ident_pattern,
    bonds_internal_reference, bonds_external_reference, transactions_finished, bonds_integration_updated,
    tickets_number_pattern, activity_logs_user, activity_logs_action;
