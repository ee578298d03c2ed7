-- +goose Up
-- Every server keeps the users it has read (models.UserCache: the session
-- check of each request). A change to a user (role, password, active, a
-- logout's session_epoch) or its deletion notifies its id on channel
-- unifi_users when it commits, and every server drops that user.
-- +goose StatementBegin
CREATE FUNCTION notify_user_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('unifi_users', OLD.id::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER users_notify_change AFTER UPDATE OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION notify_user_change();

-- +goose Down
DROP TRIGGER users_notify_change ON users;
DROP FUNCTION notify_user_change();
