-- +goose Up
-- The update trigger's history statement (migration 00130) joins the
-- statement's old and new rows, two transition tables without statistics.
-- PL/pgSQL plans it once per session, from the row count of the first
-- statement that fires it: after a one-row update the plan is a nested loop,
-- kept for the session, so every later statement compares each of its new
-- rows with each of its old ones. Measured (PostgreSQL 15, a session's
-- one-row update first, then one statement of n rows): 5,000 rows 1.7 s,
-- 10,000 rows 6.6 s, growing with n squared; planned as a hash join,
-- 0.16 s, 0.25 s, and 50,000 rows 0.95 s. The engine's release and
-- completion statements change 150-160 rows each in a delivery, where the
-- nested loop was 16 % of PostgreSQL's CPU in a drain (perf, 2026-12-07).
ALTER FUNCTION record_transaction_states_updated() SET enable_nestloop = off;

-- +goose Down
ALTER FUNCTION record_transaction_states_updated() RESET enable_nestloop;
