-- +goose Up
-- expect_unchanged(ok, what) is true when ok is; otherwise it raises SQLSTATE
-- UF001 ("<what> changed since it was read"). A ticket edit sends its
-- statements in one round trip, planned from the ticket and configuration
-- the server read before (models/store/ticket_edit.go); its statements check
-- with this that both are still as read, and a failed check makes the
-- server roll back and plan the edit again from what it reads under the
-- ticket's lock.
-- +goose StatementBegin
CREATE FUNCTION expect_unchanged(ok boolean, what text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	IF ok THEN
		RETURN true;
	END IF;
	RAISE EXCEPTION '% changed since it was read', what USING ERRCODE = 'UF001';
END
$$;
-- +goose StatementEnd

-- +goose Down
DROP FUNCTION expect_unchanged(boolean, text);
