// Package inboundsql holds the inbound API's statements (models/inbound):
// named constants with $n placeholders, each run on the connection itself
// (docs/architecture.md, "Data access"), and the JSON shapes the
// configuration statements encode their rows in. Kept apart from the
// service's code, as worker/enginedb is from the engine's, so that
// models/inbound stays under the line cap per package.
package inboundsql
