-- +goose Up
-- A message Field may map the ticket's number (models.NumberField): outbound
-- it tells the other side our number (a Response message's data); inbound it
-- is the remote ticket's number, which becomes the bond's external reference
-- (docs/designer-messages.md, "Response message").
ALTER TABLE fields DROP CONSTRAINT fields_ticket_field_check;
ALTER TABLE fields ADD CONSTRAINT fields_ticket_field_check CHECK (ticket_field IN ('number', 'short_description',
    'description', 'state', 'priority', 'urgency', 'impact', 'assignment_group', 'work_notes')
    OR ticket_field ~ '^custom\.[a-z][a-z0-9_]{0,39}$');

-- +goose Down
DELETE FROM fields WHERE ticket_field = 'number';
ALTER TABLE fields DROP CONSTRAINT fields_ticket_field_check;
ALTER TABLE fields ADD CONSTRAINT fields_ticket_field_check CHECK (ticket_field IN ('short_description',
    'description', 'state', 'priority', 'urgency', 'impact', 'assignment_group', 'work_notes')
    OR ticket_field ~ '^custom\.[a-z][a-z0-9_]{0,39}$');
