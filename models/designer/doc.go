// Package designer is the configuration layer of the Integration Designer
// (docs/designer.md): creating, editing and deleting integrations,
// connections, messages, fields, response actions and processes.
//
// Every configuration record carries a version. An edit names the version it
// was based on, and Update refuses it with a *StaleVersionError (HTTP 409)
// when the record moved on meanwhile, naming what changed. Every change is
// written to the activity log in the same database transaction, with who,
// when, from where and the before/after of each changed column (Diff, by
// reflection over the record; a column tagged `secret:"true"` shows as
// "changed", never its value). Triggers on the configuration tables
// (migration 00170) count the configuration version and NOTIFY
// ConfigChannel; Watch hands the notification to the caches of every server
// process, so a saved change is used everywhere within a second.
package designer
