-- +goose Up
-- The engine settles a bulk job's items as their transactions finish, in the
-- same database transaction: it finds open items by the transaction they
-- follow (the replay for repair and replay jobs, the item itself otherwise).
CREATE INDEX bulk_job_items_following ON bulk_job_items ((coalesce(result_transaction_id, transaction_id)))
    WHERE state = 'acted';

-- +goose Down
DROP INDEX bulk_job_items_following;
