-- +goose Up
-- Login attempts, kept in the database so throttling holds across every server process.
CREATE TABLE login_attempts (
    id           bigserial PRIMARY KEY,
    user_name    text NOT NULL,
    remote_addr  text NOT NULL,
    succeeded    boolean NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_attempts_user ON login_attempts (user_name, created_at) WHERE NOT succeeded;
CREATE INDEX login_attempts_addr ON login_attempts (remote_addr, created_at) WHERE NOT succeeded;

-- +goose Down
DROP TABLE login_attempts;
