package webbundle

import (
	"bytes"
	"compress/flate"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/bundle"
)

// digest hashes a tree's names, sizes, modes' kind and contents, so two
// trees compare by one string.
func digest(t *testing.T, dir string) (string, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.ModTime().Equal(ModTime) {
			t.Errorf("%s has mtime %v, want %v", rel, fi.ModTime(), ModTime)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		h.Write([]byte(n + "\x00"))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil)), files
}

// TestGenerateDeterministic: the same options give the same tree; its
// digest is pinned, so a change of what the generator writes (which moves
// every benchmark's numbers) is seen and deliberate.
func TestGenerateDeterministic(t *testing.T) {
	o := Options{Seed: 1, Files: 200, Size: 2 << 20}
	a, b := t.TempDir(), t.TempDir()
	ta, err := Generate(a, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(b, o); err != nil {
		t.Fatal(err)
	}
	da, _ := digest(t, a)
	db, _ := digest(t, b)
	if da != db {
		t.Fatalf("two runs differ: %s and %s", da, db)
	}
	const pinned = "9e055515a02e7ae5e7d3cb4f6999b64df70661e47a58a98692bb00d96bea184d"
	if da != pinned {
		t.Errorf("tree digest %s, pinned %s: the generator's output changed; if that is intended, update the pin and say so in docs/benchmarks.md", da, pinned)
	}
	if ta.Files != 200 {
		t.Errorf("files = %d, want 200", ta.Files)
	}
	c := t.TempDir()
	if _, err := Generate(c, Options{Seed: 2, Files: 200, Size: 2 << 20}); err != nil {
		t.Fatal(err)
	}
	if dc, _ := digest(t, c); dc == da {
		t.Error("seeds 1 and 2 gave the same tree")
	}
}

// TestGenerateRealistic checks the default tree: about 1,500 files and
// 25 MiB, half text that compresses 3-4x and half binary that does not,
// realistic names, and a webDir the updater plugin (and otactl) accepts.
func TestGenerateRealistic(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 25 MiB")
	}
	dir := t.TempDir()
	tr, err := Generate(dir, Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Files != DefaultFiles {
		t.Errorf("files = %d, want %d", tr.Files, DefaultFiles)
	}
	if lo, hi := int64(DefaultSize)*95/100, int64(DefaultSize)*105/100; tr.Bytes < lo || tr.Bytes > hi {
		t.Errorf("size = %d, want about %d", tr.Bytes, DefaultSize)
	}
	if share := float64(tr.TextBytes) / float64(tr.Bytes); share < 0.4 || share > 0.6 {
		t.Errorf("text share %.2f, want about half", share)
	}
	_, files := digest(t, dir)
	count := map[string]int{}
	var text, bin bytes.Buffer
	for name, b := range files {
		ext := filepath.Ext(name)
		count[ext]++
		switch ext {
		case ".js", ".css", ".html", ".json", ".svg":
			text.Write(b)
		default:
			bin.Write(b)
		}
	}
	for ext, min := range map[string]int{".js": 500, ".css": 100, ".html": 60, ".json": 40, ".svg": 60, ".png": 100, ".jpg": 100, ".webp": 100, ".woff2": 40} {
		if count[ext] < min {
			t.Errorf("%d %s files, want at least %d (%v)", count[ext], ext, min, count)
		}
	}
	if r := ratio(t, text.Bytes()); r < 2.5 || r > 6 {
		t.Errorf("text compresses %.1fx, want like minified code (3-4x)", r)
	}
	if r := ratio(t, bin.Bytes()); r > 1.05 {
		t.Errorf("binary compresses %.2fx, want about 1 (images, fonts)", r)
	}
	for _, want := range []string{"index.html", tr.Entry} {
		if _, ok := files[want]; !ok {
			t.Errorf("no %s", want)
		}
	}
	if !strings.HasPrefix(tr.Entry, "assets/index-") || len(files[tr.Entry]) != EntryChunkSize {
		t.Errorf("entry chunk %s of %d bytes, want assets/index-<hash>.js of %d", tr.Entry, len(files[tr.Entry]), EntryChunkSize)
	}
	if err := bundle.CheckWebDir(dir); err != nil {
		t.Errorf("otactl would refuse the tree: %v", err)
	}
}

func ratio(t *testing.T, b []byte) float64 {
	t.Helper()
	var out bytes.Buffer
	w, _ := flate.NewWriter(&out, flate.DefaultCompression)
	w.Write(b)
	w.Close()
	return float64(len(b)) / float64(out.Len())
}

// TestNext: the next release changes the entry chunk (a new name, the
// same size) and index.html's reference to it, and nothing else; it is
// the tree Generate makes for that release.
func TestNext(t *testing.T) {
	o := Options{Seed: 7, Files: 120, Size: 1 << 20}
	dir := t.TempDir()
	tr, err := Generate(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	_, before := digest(t, dir)
	rel, oldEntry, newEntry, err := Next(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rel != 1 || oldEntry != tr.Entry || newEntry == oldEntry || !strings.HasPrefix(newEntry, "assets/index-") {
		t.Fatalf("Next = %d, %s, %s; want release 1 replacing %s", rel, oldEntry, newEntry, tr.Entry)
	}
	d1, after := digest(t, dir)
	var changed []string
	for name, b := range after {
		if !bytes.Equal(before[name], b) {
			changed = append(changed, name)
		}
	}
	sort.Strings(changed)
	if want := []string{newEntry, "index.html"}; strings.Join(changed, " ") != strings.Join(want, " ") {
		t.Errorf("changed %q, want %q", changed, want)
	}
	if _, ok := after[oldEntry]; ok {
		t.Errorf("the old entry chunk %s is still there", oldEntry)
	}
	if len(after[newEntry]) != EntryChunkSize || !bytes.Contains(after["index.html"], []byte(`src="/`+newEntry+`"`)) {
		t.Errorf("new entry %d bytes; index.html:\n%s", len(after[newEntry]), after["index.html"])
	}
	// Release 1 from scratch is the same tree.
	fresh := t.TempDir()
	o.Release = 1
	if _, err := Generate(fresh, o); err != nil {
		t.Fatal(err)
	}
	if d2, _ := digest(t, fresh); d2 != d1 {
		t.Error("Next of release 0 differs from Generate of release 1")
	}
	if rel, _, _, err := Next(dir); err != nil || rel != 2 {
		t.Errorf("second Next = %d, %v", rel, err)
	}
}

func TestGenerateRefuses(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "keep.txt"), []byte("x"), 0o644)
	if _, err := Generate(dir, Options{Seed: 1, Files: 20, Size: 1 << 20}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("generate into a folder with files: %v", err)
	}
	for _, o := range []Options{{Files: 3}, {Size: 100}, {Files: 10000, Size: 100 << 10}, {Release: -1}} {
		if _, err := Generate(t.TempDir(), o); err == nil {
			t.Errorf("Generate(%+v) succeeded", o)
		}
	}
	if _, _, _, err := Next(t.TempDir()); err == nil {
		t.Error("Next of an empty folder succeeded")
	}
}
