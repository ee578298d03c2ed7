package inboundsql

// InboundSnapshot reads the configuration version and everything the
// snapshot holds, in one statement, so they belong together.
const InboundSnapshot = `SELECT v.version::text AS version,
		(SELECT coalesce(json_agg(json_build_object('id', i.id, 'name', i.name, 'state', i.state,
		        'attach_logs', i.attach_logs, 'process_id', i.process_id, 'number_prefix', p.number_prefix,
		        'ticket_table', p.ticket_table, 'has_connection', c.id IS NOT NULL, 'inbound_user_id', c.inbound_user_id,
		        'messages', (SELECT coalesce(json_agg(json_build_object('id', m.id, 'name', m.name, 'type', m.type,
		                'async', m.async, 'bond_ownership', m.bond_ownership,
		                'allowed_bond_states', m.allowed_bond_states, 'set_bond_state', m.set_bond_state,
		                'receipt_message_id', m.receipt_message_id, 'receipt_name', rm.name,
		                'fields', (SELECT coalesce(json_agg(json_build_object('id', f.id, 'ticket_field', f.ticket_field,
		                        'property', f.property, 'value_map', f.value_map, 'required', f.required,
		                        'direction', f.direction, 'default_value', f.default_value,
		                        'inbound_value_map', f.inbound_value_map)
		                        ORDER BY f.position, f.id), '[]')
		                    FROM fields f WHERE f.message_id = m.id),
		                'response_fields', (SELECT coalesce(json_agg(json_build_object('id', f.id,
		                        'ticket_field', f.ticket_field, 'property', f.property, 'value_map', f.value_map,
		                        'required', f.required, 'direction', f.direction, 'default_value', f.default_value,
		                        'inbound_value_map', f.inbound_value_map)
		                        ORDER BY f.position, f.id), '[]')
		                    FROM fields f WHERE f.message_id = m.response_message_id))), '[]')
		            FROM messages m LEFT JOIN messages rm ON rm.id = m.receipt_message_id
		            WHERE m.integration_id = i.id AND m.direction IN ('Inbound', 'Bidirectional')))), '[]')
		   FROM integrations i JOIN processes p ON p.id = i.process_id
		   LEFT JOIN connections c ON c.integration_id = i.id AND c.active) AS integrations,
		(SELECT coalesce(json_agg(json_build_object('id', u.id, 'name', u.name, 'role', u.role,
		        'token_hash', u.token_hash)), '[]')
		   FROM users u WHERE u.active AND u.token_hash IS NOT NULL) AS users
		FROM inbound_config_version v`
