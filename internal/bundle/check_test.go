package bundle

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckWebDir(t *testing.T) {
	// A marker that straddles two 64 KiB reads must still be found.
	straddle := strings.Repeat("x", 64<<10-5) + "CapacitorUpdater.notifyAppReady()"
	tests := []struct {
		name    string
		files   map[string]string
		wantIs  error
		wantMsg string
	}{
		{name: "ok", files: map[string]string{"index.html": "x", "assets/app.js": "CapacitorUpdater.notifyAppReady()"}},
		{name: "mjs counts", files: map[string]string{"index.html": "x", "a/b/c.mjs": "await notifyAppReady()"}},
		{name: "capawesome's plugin", files: map[string]string{"index.html": "x", "assets/index-x.js": `const t=registerPlugin("LiveUpdate");t.ready()`}},
		{name: "capawesome's marker straddles reads", files: map[string]string{"index.html": "x", "a.js": strings.Repeat("x", 64<<10-4) + "LiveUpdate.ready()"}},
		{name: "upper-case extension", files: map[string]string{"index.html": "x", "APP.JS": "notifyAppReady"}},
		{name: "across reads", files: map[string]string{"index.html": "x", "big.js": straddle}},
		{name: "marker at the very end", files: map[string]string{"index.html": "x", "a.js": strings.Repeat("y", 200000) + "notifyAppReady"}},
		{name: "no index", files: map[string]string{"app.js": "notifyAppReady"}, wantIs: ErrNoIndexHTML, wantMsg: "build the web app"},
		{name: "index in a sub folder only", files: map[string]string{"dist/index.html": "x", "dist/a.js": "notifyAppReady"}, wantIs: ErrNoIndexHTML},
		{name: "no marker", files: map[string]string{"index.html": "x", "a.js": "console.log(1)", "b.txt": "notifyAppReady"},
			wantIs: ErrNoNotifyAppReady, wantMsg: "--no-code-check"},
		{name: "marker cut in two files", files: map[string]string{"index.html": "x", "a.js": "notifyApp", "b.js": "Ready"},
			wantIs: ErrNoNotifyAppReady, wantMsg: "appReadyTimeout"},
		{name: "marker only in __MACOSX", files: map[string]string{"index.html": "x", "__MACOSX/a.js": "notifyAppReady"}, wantIs: ErrNoNotifyAppReady},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tt.files)
			err := CheckWebDir(dir)
			if tt.wantIs == nil {
				if err != nil {
					t.Fatalf("CheckWebDir() = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("CheckWebDir() = %v; want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("CheckWebDir() = %v; want it to mention %q", err, tt.wantMsg)
			}
		})
	}
	t.Run("index.html is a folder", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "index.html"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := CheckWebDir(dir); !errors.Is(err, ErrNoIndexHTML) {
			t.Fatalf("CheckWebDir() = %v; want ErrNoIndexHTML", err)
		}
	})
	t.Run("folder missing", func(t *testing.T) {
		err := CheckWebDir(filepath.Join(t.TempDir(), "dist"))
		if err == nil || !strings.Contains(err.Error(), "does not exist") {
			t.Fatalf("CheckWebDir() = %v; want a missing-folder error", err)
		}
	})
}

func TestHashFile(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"abc": "abc"})
	sum, size, err := HashFile(filepath.Join(dir, "abc"))
	if err != nil {
		t.Fatal(err)
	}
	// SHA-256("abc") from FIPS 180-2.
	if want := "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"; sum != want || size != 3 {
		t.Errorf("HashFile = %s, %d; want %s, 3", sum, size, want)
	}
	if _, _, err := HashFile(filepath.Join(dir, "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("HashFile(missing) error = %v; want ErrNotExist", err)
	}
}
