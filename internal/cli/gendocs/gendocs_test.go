package main

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// TestDocsInSync regenerates the reference into a temporary folder and
// compares it with docs/cli/, page by page, in both directions.
func TestDocsInSync(t *testing.T) {
	committed := filepath.Join("..", "..", "..", "docs", "cli")
	fresh := t.TempDir()
	if err := Generate(fresh); err != nil {
		t.Fatal(err)
	}
	want := pages(t, fresh)
	got := pages(t, committed)
	const fix = "docs/cli is out of date; run: go run ./internal/cli/gendocs"
	for name, w := range want {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("%s is missing; %s", name, fix)
		case !bytes.Equal(g, w):
			t.Errorf("%s differs from the commands' help; %s", name, fix)
		}
	}
	var stale []string
	for name := range got {
		if _, ok := want[name]; !ok {
			stale = append(stale, name)
		}
	}
	sort.Strings(stale)
	for _, name := range stale {
		t.Errorf("%s documents no existing command; %s", name, fix)
	}
}

func pages(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "otactl*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = b
	}
	return out
}

// TestGenerateRemovesStalePages checks a renamed command leaves no page
// behind.
func TestGenerateRemovesStalePages(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "otactl_gone.md")
	if err := os.WriteFile(stale, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Generate(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale page kept (stat: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "otactl_token_create.md")); err != nil {
		t.Errorf("no page for token create: %v", err)
	}
}
