package blob

// TempFile exposes tempFile to the external tests.
type TempFile = tempFile

// SetCreateTemp replaces how Put opens its temp file, so tests can
// simulate a full disk.
func (s *FS) SetCreateTemp(fn func(dir, pattern string) (TempFile, error)) { s.createTemp = fn }
