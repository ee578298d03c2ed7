// Package statehistory holds the test that keeps the transaction state history
// complete: it lists every statement in the Go code that changes
// transactions.state (found by scanning the repository) against an expected
// list, and checks on a real database that the triggers of migration 00130
// record every state change, with no opt-out.
package statehistory
