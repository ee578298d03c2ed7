package store

// SetResumeChunk makes a resume step walk n items; the returned func puts
// the default back.
func SetResumeChunk(n int) func() {
	old := resumeChunk
	resumeChunk = n
	return func() { resumeChunk = old }
}
