-- +goose Up
-- The addresses each account last logged in from. The login throttle locks an
-- account per (account, address) pair and slows every address after many
-- failures across addresses, except the addresses the account is known to use
-- (docs/decisions.md, "Login throttling").
CREATE TABLE login_known_addresses (
    user_name        text NOT NULL CHECK (length(user_name) <= 80),
    remote_addr      text NOT NULL CHECK (length(remote_addr) <= 80),
    last_success_at  timestamptz NOT NULL,
    PRIMARY KEY (user_name, remote_addr)
);
CREATE INDEX login_attempts_pair ON login_attempts (user_name, remote_addr, created_at) WHERE NOT succeeded;

-- +goose Down
DROP INDEX login_attempts_pair;
DROP TABLE login_known_addresses;
