package store

// SetResumeChunk makes a resume step walk n items; the returned func puts
// the default back.
func SetResumeChunk(n int) func() {
	old := resumeChunk
	resumeChunk = n
	return func() { resumeChunk = old }
}

// PlannedAhead returns how many of s's ticket edits were sent planned ahead
// in one round trip, and how many of those found the ticket or the
// configuration changed and went the second path.
func PlannedAhead(s *Store) (sent, stale int64) {
	return s.plannedAhead.sent.Load(), s.plannedAhead.stale.Load()
}
