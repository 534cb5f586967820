//go:build !unix

package capapp

// lockFile does not lock where flock is missing (Windows): test binaries
// that install the fixture at the same moment there may both run npm ci.
func lockFile(string) (unlock func(), err error) { return func() {}, nil }
