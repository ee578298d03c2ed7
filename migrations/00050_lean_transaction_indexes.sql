-- +goose Up
-- Writes first. A state change is never a HOT update (state is
-- indexed), so it adds an entry to every full index of transactions and to
-- each partial index whose predicate the new row meets. A delivered
-- transaction changes state twice (Queued -> Sending, Sending -> Complete):
-- every full index costs two index insertions per delivery. These four
-- served reads that other indexes serve as well:
--   ticket        a ticket's transactions are found through its bonds
--                 (bonds_ticket, then transactions_bond_order);
--   bond_created  a bond's transactions: transactions_bond_order, then a sort
--                 of that one bond's rows;
--   state_created, integration_state: Complete (5) is most of the table,
--                 and the created-order indexes find it with a filter; every
--                 other state is rare enough to need an index and is indexed
--                 as before. Queries name the state as a literal, so that the
--                 planner can prove the partial index applies
--                 (models.stateSQL).
DROP INDEX transactions_ticket, transactions_bond_created, transactions_state_created,
    transactions_integration_state;
CREATE INDEX transactions_integration_state ON transactions (integration_id, state, created_at, id)
    WHERE state <> 5;
CREATE INDEX transactions_state_created ON transactions (state, created_at DESC, id DESC)
    WHERE state <> 5;
CREATE INDEX bonds_ticket ON bonds (ticket_id);

-- +goose Down
DROP INDEX bonds_ticket, transactions_state_created, transactions_integration_state;
CREATE INDEX transactions_integration_state ON transactions (integration_id, state, created_at, id);
CREATE INDEX transactions_state_created ON transactions (state, created_at DESC, id DESC);
CREATE INDEX transactions_bond_created ON transactions (bond_id, created_at DESC, id DESC);
CREATE INDEX transactions_ticket ON transactions (ticket_id, id);
