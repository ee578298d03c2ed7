-- +goose Up
-- An outbound message's time stamp is given when the change is made, never
-- lower than the last one given on its bond (docs/domain.md, "The message's
-- time stamp"): the receiver does not apply a message older than the newest it
-- applied on the bond, so a sender's clock stepped back (NTP at a restart), or
-- two server processes whose clocks disagree, must not make the stamps go back.

-- The newest time stamp given to an outbound message of this bond; NULL until
-- the first one after this migration.
ALTER TABLE bonds ADD COLUMN last_outbound_at timestamptz;

-- The envelope's time_stamp of an outbound message (a resend or a replay sends
-- the same); NULL for inbound Stages and for messages staged before this
-- migration (stamped when sent, as before).
ALTER TABLE stages ADD COLUMN time_stamp timestamptz;

-- +goose Down
ALTER TABLE stages DROP COLUMN time_stamp;
ALTER TABLE bonds DROP COLUMN last_outbound_at;
