-- +goose Up
-- transaction_keys holds the columns of a transaction that never change once
-- it is inserted (its integration, bond, place in the bond, time and
-- identifiers) with the indexes the pages and lookups read them by, apart
-- from transactions, whose rows the engine updates twice or more each (the
-- release and the completion; state is in the predicates of the partial
-- indexes, so no update of a transaction is HOT and every update adds an
-- entry to each of the table's indexes whose predicate the new row passes).
-- The five indexes moved here were updated on every state change for
-- columns that never changed: without them the engine bench's PostgreSQL
-- CPU per delivered transaction fell 17 % (0.268-0.286 against 0.338-0.409
-- ms) and its WAL 16 % (3,953-3,995 against 4,580-4,788 bytes), three
-- alternating runs each on a durable cluster (docs/engine.md, "Seventh
-- round"). The columns stay in transactions too: every reader of a row
-- finds them there; only a query that needs one of these orders or lookups
-- goes through this table.
--
-- Rows are written by a statement-level trigger on every insert into
-- transactions, so no insert path (the ticket edit, inbound, replay, the
-- generator's bulk load, COPY) can forget them, and removed with theirs.
-- There is no foreign key: its check would probe and lock the transaction's
-- row for each insert.
CREATE TABLE transaction_keys (
    id             bigint PRIMARY KEY,
    integration_id bigint      NOT NULL,
    bond_id        bigint      NOT NULL,
    seq            bigint      NOT NULL,
    created_at     timestamptz NOT NULL,
    number         text        NOT NULL,
    message_ident  text        NOT NULL
);

INSERT INTO transaction_keys (id, integration_id, bond_id, seq, created_at, number, message_ident)
SELECT id, integration_id, bond_id, seq, created_at, number, message_ident FROM transactions;

DROP INDEX transactions_bond_order, transactions_created, transactions_integration_created,
    transactions_message_ident, transactions_number_pattern;

-- A bond's transactions in order (the Bond page, a ticket's transactions).
CREATE INDEX transaction_keys_bond_order ON transaction_keys (bond_id, seq, id);
-- The newest transactions, of every integration and of one.
CREATE INDEX transaction_keys_created ON transaction_keys (created_at DESC, id DESC);
CREATE INDEX transaction_keys_integration_created ON transaction_keys (integration_id, created_at DESC, id DESC);
-- Message ids are unique (a replay's is its original's with ".N"); both
-- identifiers are searched exactly and by prefix.
CREATE UNIQUE INDEX transaction_keys_message_ident ON transaction_keys (message_ident text_pattern_ops);
CREATE INDEX transaction_keys_number ON transaction_keys (number text_pattern_ops);

-- +goose StatementBegin
CREATE FUNCTION record_transaction_keys_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transaction_keys (id, integration_id, bond_id, seq, created_at, number, message_ident)
    SELECT id, integration_id, bond_id, seq, created_at, number, message_ident FROM new_rows;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION record_transaction_keys_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM transaction_keys k USING old_rows o WHERE k.id = o.id;
    RETURN NULL;
END;
$$;
-- +goose StatementEnd

CREATE TRIGGER transactions_keys_insert AFTER INSERT ON transactions
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_transaction_keys_inserted();
CREATE TRIGGER transactions_keys_delete AFTER DELETE ON transactions
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION record_transaction_keys_deleted();

-- +goose Down
DROP TRIGGER transactions_keys_insert ON transactions;
DROP TRIGGER transactions_keys_delete ON transactions;
DROP FUNCTION record_transaction_keys_inserted();
DROP FUNCTION record_transaction_keys_deleted();
DROP TABLE transaction_keys;
CREATE INDEX transactions_bond_order ON transactions (bond_id, seq, id);
CREATE INDEX transactions_created ON transactions (created_at DESC, id DESC);
CREATE INDEX transactions_integration_created ON transactions (integration_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX transactions_message_ident ON transactions (message_ident text_pattern_ops);
CREATE INDEX transactions_number_pattern ON transactions (number text_pattern_ops);
