// Package models is the domain, without database access: the records, the
// typed states, the state machine (Next), the role rules (Can), errors, the
// wire envelope and the field mapping. The packages under it store and read
// these records.
package models
