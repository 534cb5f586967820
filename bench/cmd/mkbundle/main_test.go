package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "web")
	var out bytes.Buffer
	if err := run([]string{"--files", "50", "--mib", "1", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "wrote 50 files, ") {
		t.Errorf("printed %q", out.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "index.html")); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run([]string{"--next", dir}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "release 1 of ") {
		t.Errorf("--next printed %q", out.String())
	}
	if err := run([]string{dir}, &out); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("a second run into the same folder: %v", err)
	}
	if err := run(nil, &out); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("no DIR: %v", err)
	}
}
