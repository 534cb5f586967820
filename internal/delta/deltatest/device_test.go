package deltatest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/pkg/ota"
)

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestDeviceRefuses: the simulated device refuses what the plugin refuses,
// reporting the stat the plugin would send, so a test passing through it
// means something.
func TestDeviceRefuses(t *testing.T) {
	index := []byte("<html>")
	js := []byte("console.log(1);console.log(1);console.log(1);")
	br, _, _ := delta.Compress("x.br", js)
	files := map[string][]byte{"/index": index, "/js": js, "/br": br, "/junk": []byte("not brotli")}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(b)
	}))
	defer srv.Close()
	entry := func(name, hash, path string) ota.ManifestEntry {
		return ota.ManifestEntry{FileName: name, FileHash: hash, DownloadURL: srv.URL + path}
	}
	good := entry("index.html", hashOf(index), "/index")
	for _, tt := range []struct {
		name     string
		platform string
		entries  []ota.ManifestEntry
		stat     string
	}{
		{"wrong bytes", "ios", []ota.ManifestEntry{good, entry("a.js", hashOf(index), "/js")}, "download_manifest_checksum_fail"},
		{"a path leaving the bundle", "ios", []ota.ManifestEntry{good, entry("../a.js", hashOf(js), "/js")}, "manifest_path_fail"},
		{"two entries for one file on Android", "android", []ota.ManifestEntry{good, entry("a.js", hashOf(js), "/js"), entry("a.js.br", hashOf(js), "/br")}, "manifest_path_fail"},
		{"a 404", "android", []ota.ManifestEntry{good, entry("a.js", hashOf(js), "/missing")}, "download_manifest_file_fail"},
		{"damaged Brotli", "ios", []ota.ManifestEntry{good, entry("a.js.br", hashOf(js), "/junk")}, "download_manifest_brotli_fail"},
		{"no index.html", "ios", []ota.ManifestEntry{entry("a.js", hashOf(js), "/js")}, "set_fail"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &Device{Platform: tt.platform, Builtin: t.TempDir(), Cache: t.TempDir()}
			r, err := d.Install(context.Background(), ota.UpdateResponse{Version: "1.0.1", Manifest: tt.entries}, filepath.Join(t.TempDir(), "b"))
			if !errors.Is(err, ErrRefused) || len(r.Stats) == 0 || r.Stats[len(r.Stats)-1].Action != tt.stat {
				t.Errorf("install = %v, stats %v; want refused with %s", err, r.Stats, tt.stat)
			}
		})
	}
	// And it installs a good answer, Brotli included; iOS does not take a
	// built-in file listed as .br, Android does.
	for _, platform := range []string{"ios", "android"} {
		d := &Device{Platform: platform, Builtin: t.TempDir(), Cache: t.TempDir()}
		if err := writeFile(filepath.Join(d.Builtin, "a.js"), js); err != nil {
			t.Fatal(err)
		}
		r, err := d.Install(context.Background(), ota.UpdateResponse{Version: "1.0.1", Manifest: []ota.ManifestEntry{good, entry("a.js.br", hashOf(js), "/br")}}, filepath.Join(t.TempDir(), "b"))
		want := map[string]int{"ios": 0, "android": 1}[platform]
		if err != nil || r.FromBuiltin != want {
			t.Errorf("%s: %v, %d built in; want %d", platform, err, r.FromBuiltin, want)
		}
	}
}
