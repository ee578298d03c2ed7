-- +goose Up
-- Connection variables are the Designer's versioned records (models/designer):
-- an edit names the version it was based on and is refused (409) when someone
-- saved the variable meanwhile. message_scripts has its version from 00220.
ALTER TABLE connection_variables ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- +goose Down
ALTER TABLE connection_variables DROP COLUMN version;
