package main

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/webbundle"
	"github.com/otaship/ota/pkg/ota"
)

// The harness's inputs must be what otad accepts, or every number measures
// an error path.

func TestUpdatesBodyIsAPluginRequest(t *testing.T) {
	var req ota.UpdateRequest
	if err := json.Unmarshal(updatesBody(benchApp), &req); err != nil {
		t.Fatal(err)
	}
	if req.AppID != benchApp || req.DeviceID == "" || req.VersionName != "1.0.0" || req.Platform != "ios" {
		t.Errorf("request = %+v", req)
	}
}

func TestStatsBatch(t *testing.T) {
	var evs []ota.StatsEvent
	if err := json.Unmarshal(statsBatch(50), &evs); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 50 {
		t.Fatalf("%d events, want 50", len(evs))
	}
	seen := map[string]bool{}
	for _, ev := range evs {
		if ev.AppID != benchApp || ev.Action == "" || ev.DeviceID == "" {
			t.Fatalf("event = %+v", ev)
		}
		seen[ev.DeviceID] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct devices in a batch of 50", len(seen))
	}
}

func TestMakeBundleZip(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.zip"), filepath.Join(dir, "b.zip")
	const size = 9 * mib // more than one 8 MiB part
	if err := makeBundleZip(a, size, 1); err != nil {
		t.Fatal(err)
	}
	if err := makeBundleZip(b, size, 2); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(a)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, _ := f.Stat()
	if fi.Size() < size || fi.Size() > size+64<<10 {
		t.Errorf("zip is %d bytes, want about %d", fi.Size(), size)
	}
	if _, err := bundle.Validate(f, fi.Size(), bundle.Limits{}); err != nil {
		t.Errorf("otad would refuse the bundle: %v", err)
	}
	sa, _ := fileSHA256(a)
	sb, _ := fileSHA256(b)
	if sa == sb {
		t.Error("two seeds gave the same bytes: uploads would be deduplicated")
	}
}

func TestHelpers(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1000000: "1,000,000", 20400: "20,400"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
	if m := median([]float64{3, 1, 2}); m != 2 {
		t.Errorf("median = %v", m)
	}
	if m := median([]time.Duration{4, 1, 3, 2}); m != 2 {
		t.Errorf("median of four = %v, want the lower middle", m)
	}
}

// TestMakeDeltaPair: the two releases differ in one renamed entry chunk
// and in index.html, which names that chunk.
func TestMakeDeltaPair(t *testing.T) {
	web := filepath.Join(t.TempDir(), "web")
	if _, err := webbundle.Generate(web, webbundle.Options{Seed: 1, Files: 60, Size: 2 << 20}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	v1, v2 := filepath.Join(root, "v1", "www"), filepath.Join(root, "v2", "www")
	c, err := makeDeltaPair(web, v1, v2)
	if err != nil {
		t.Fatal(err)
	}
	if c.size < 30_000 || c.size > 50_000 {
		t.Errorf("the changed chunk %s has %d bytes, want about 40 KB", c.name, c.size)
	}
	if _, err := os.Stat(filepath.Join(v1, filepath.FromSlash(c.name))); err == nil {
		t.Error("v1 has the new chunk")
	}
	html1, _ := os.ReadFile(filepath.Join(v1, "index.html"))
	html2, _ := os.ReadFile(filepath.Join(v2, "index.html"))
	if strings.Contains(string(html1), c.name) || !strings.Contains(string(html2), c.name) {
		t.Errorf("index.html of v2 should name %s, v1's should not", c.name)
	}
	var differ []string
	err = filepath.WalkDir(v2, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(v2, p)
		a, _ := os.ReadFile(filepath.Join(v1, rel))
		b, _ := os.ReadFile(p)
		if !bytes.Equal(a, b) {
			differ = append(differ, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil || len(differ) != 2 {
		t.Errorf("v2 differs from v1 in %v (%v), want the new chunk and index.html", differ, err)
	}
}
