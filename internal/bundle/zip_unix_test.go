//go:build unix

package bundle

import (
	"io"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func TestZipRefusesFIFO(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"index.html": "x"})
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	_, err := Zip(t.Context(), dir, io.Discard, ZipOptions{})
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("Zip() error = %v; want a non-regular-file refusal", err)
	}
}
