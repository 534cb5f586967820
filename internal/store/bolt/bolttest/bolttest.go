// Package bolttest opens throwaway bolt stores for tests: a real file in
// t.TempDir(), checked for consistency and closed when the test ends.
package bolttest

import (
	"path/filepath"
	"testing"

	"github.com/otaship/ota/internal/store/bolt"
)

// New opens a new store in a temporary directory. At cleanup it runs
// bbolt's consistency check, failing the test on any error, then closes the
// store. A test that closes the store itself is left alone.
func New(tb testing.TB, opts bolt.Options) *bolt.Store {
	tb.Helper()
	return Open(tb, filepath.Join(tb.TempDir(), "ota.db"), opts)
}

// Open opens the store at path with the same cleanup as New.
func Open(tb testing.TB, path string, opts bolt.Options) *bolt.Store {
	tb.Helper()
	s, err := bolt.Open(path, opts)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	tb.Cleanup(func() {
		if s.Closed() {
			return
		}
		if err := s.Check(); err != nil {
			tb.Errorf("store consistency: %v", err)
		}
		if err := s.Close(); err != nil {
			tb.Errorf("close store: %v", err)
		}
	})
	return s
}
