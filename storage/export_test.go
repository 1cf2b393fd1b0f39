package storage

// SetPurgeChunks has every purge delete n rows a statement, until the test ends.
func SetPurgeChunks(t interface{ Cleanup(func()) }, n int) {
	saved := purgeChunks
	purgeChunks.batches, purgeChunks.events, purgeChunks.emails = n, n, n
	t.Cleanup(func() { purgeChunks = saved })
}

// SetBeforeResealWrite has ResealLinks call fn between the read of each page and its writes,
// until the test ends.
func SetBeforeResealWrite(t interface{ Cleanup(func()) }, fn func()) {
	beforeResealWrite = fn
	t.Cleanup(func() { beforeResealWrite = nil })
}
