-- +goose Up
-- One index on transaction_logs instead of two. Its rows are only ever read
-- by transaction (the Transaction page: WHERE transaction_id = $1 ORDER BY id;
-- ON DELETE CASCADE deletes by transaction_id), never by id alone, so the
-- primary key on (id) was an index insertion per log row that no query used.
-- The key (transaction_id, id) serves both reads; ids still come from one
-- sequence. A delivered transaction writes two log rows (its attempt, and the
-- next transaction of its bond being released): two index insertions fewer
-- per delivery (docs/engine.md, "Against River").
ALTER TABLE transaction_logs DROP CONSTRAINT transaction_logs_pkey;
DROP INDEX transaction_logs_transaction;
ALTER TABLE transaction_logs ADD CONSTRAINT transaction_logs_pkey PRIMARY KEY (transaction_id, id);

-- No page lists HTTP requests by integration (a transaction's are read by
-- http_requests_transaction, a poll's by http_requests_poll_request): the
-- only reads by integration are DeleteIntegration's delete of its refused
-- requests and the foreign key's check when an integration is deleted, and
-- both find rows by integration_id alone. A key of one column instead of
-- three: a smaller entry per request, and duplicates deduplicated.
DROP INDEX http_requests_integration;
CREATE INDEX http_requests_integration ON http_requests (integration_id);

-- +goose Down
DROP INDEX http_requests_integration;
CREATE INDEX http_requests_integration ON http_requests (integration_id, created_at DESC, id DESC);
ALTER TABLE transaction_logs DROP CONSTRAINT transaction_logs_pkey;
ALTER TABLE transaction_logs ADD CONSTRAINT transaction_logs_pkey PRIMARY KEY (id);
CREATE INDEX transaction_logs_transaction ON transaction_logs (transaction_id, id);
