package storage

// SetBeforeResealWrite has ResealLinks call fn between the read of each page and its writes,
// until the test ends.
func SetBeforeResealWrite(t interface{ Cleanup(func()) }, fn func()) {
	beforeResealWrite = fn
	t.Cleanup(func() { beforeResealWrite = nil })
}
