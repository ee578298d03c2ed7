-- +goose Up
-- Releasing the next transaction of a bond reads its first Queued one.
CREATE INDEX transactions_bond_queued ON transactions (bond_id, seq, id)
    WHERE direction = 'Outbound' AND state = 6;
-- Replayed HTTP requests wait in Ready (1) for the engine.
CREATE INDEX http_requests_ready ON http_requests (id) WHERE state = 1;

-- +goose Down
DROP INDEX http_requests_ready;
DROP INDEX transactions_bond_queued;
