-- +goose Up
-- Messages in the Designer (docs/designer-messages.md).

-- A message's response message (the message the remote answers a synchronous
-- request with), and the "fields" trigger: the message goes out when any of
-- the ticket fields listed in trigger_fields changes.
ALTER TABLE messages ADD COLUMN response_message_id bigint REFERENCES messages (id) ON DELETE SET NULL;
ALTER TABLE messages ADD COLUMN trigger_fields jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(trigger_fields) = 'array');
ALTER TABLE messages DROP CONSTRAINT messages_trigger_check;
ALTER TABLE messages ADD CONSTRAINT messages_trigger_check
    CHECK (trigger IN ('none', 'create', 'update', 'resolve', 'fields'));
ALTER TABLE messages ADD CONSTRAINT messages_trigger_fields_named
    CHECK (trigger <> 'fields' OR jsonb_array_length(trigger_fields) > 0);
-- A field's direction (a field may map only one way), its default (used when
-- the ticket's value is empty outbound, or the property is absent inbound),
-- and the inbound value map (payload value -> ticket value). value_map stays
-- the outbound map (ticket value -> payload value). Existing fields get the
-- inverse of their outbound map where it is unambiguous, which is what the
-- inbound mapping did until now.
ALTER TABLE fields ADD COLUMN direction text NOT NULL DEFAULT 'Bidirectional'
    CHECK (direction IN ('Inbound', 'Outbound', 'Bidirectional'));
ALTER TABLE fields ADD COLUMN default_value text NOT NULL DEFAULT '' CHECK (length(default_value) <= 1000);
ALTER TABLE fields ADD COLUMN inbound_value_map jsonb NOT NULL DEFAULT '{}'
    CHECK (jsonb_typeof(inbound_value_map) = 'object');
UPDATE fields f SET inbound_value_map = inv.m
FROM (SELECT f2.id, jsonb_object_agg(e.value, e.key) AS m
      FROM fields f2, jsonb_each_text(f2.value_map) e
      GROUP BY f2.id
      HAVING count(DISTINCT e.value) = count(*)) inv
WHERE f.id = inv.id;

-- What a response action sets besides retry and the integration status: the
-- transaction's transport state (5 Complete: the answer counts as delivered;
-- 8 Error), its process state (1 Accepted, 2 Rejected), the integration's
-- state (only Paused: the engine never switches an integration Off), and a
-- note appended to the bond's history.
ALTER TABLE response_actions ADD COLUMN set_transaction_state smallint CHECK (set_transaction_state IN (5, 8));
ALTER TABLE response_actions ADD COLUMN set_process_state smallint CHECK (set_process_state IN (1, 2));
ALTER TABLE response_actions ADD COLUMN set_integration_state text CHECK (set_integration_state IN ('Paused'));
ALTER TABLE response_actions ADD COLUMN bond_note text NOT NULL DEFAULT '' CHECK (length(bond_note) <= 500);
ALTER TABLE response_actions ADD CONSTRAINT response_actions_state_needs_no_retry
    CHECK (NOT retry OR set_transaction_state IS NULL);

-- +goose Down
ALTER TABLE response_actions DROP CONSTRAINT response_actions_state_needs_no_retry;
ALTER TABLE response_actions DROP COLUMN bond_note;
ALTER TABLE response_actions DROP COLUMN set_integration_state;
ALTER TABLE response_actions DROP COLUMN set_process_state;
ALTER TABLE response_actions DROP COLUMN set_transaction_state;
ALTER TABLE fields DROP COLUMN inbound_value_map;
ALTER TABLE fields DROP COLUMN default_value;
ALTER TABLE fields DROP COLUMN direction;
ALTER TABLE messages DROP CONSTRAINT messages_trigger_fields_named;
ALTER TABLE messages DROP CONSTRAINT messages_trigger_check;
ALTER TABLE messages ADD CONSTRAINT messages_trigger_check CHECK (trigger IN ('none', 'create', 'update', 'resolve'));
ALTER TABLE messages DROP COLUMN trigger_fields;
ALTER TABLE messages DROP COLUMN response_message_id;
