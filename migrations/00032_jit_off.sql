-- +goose Up
-- The app runs short indexed queries (OLTP). PostgreSQL's JIT compiles any
-- query whose cost estimate is high, even when a LIMIT makes it cheap: the
-- transactions list at a million rows spent 6 ms compiling to run 0.3 ms.
-- +goose StatementBegin
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET jit = off', current_database()); END $$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET jit', current_database()); END $$;
-- +goose StatementEnd
