package bundle

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/webbundle"
)

// writeTree creates files (slash paths → content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func randomString(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sampleTree is a small web build: compressible text, an incompressible
// "image", and a big file of each kind to take the temporary-file path
// (the threshold is lowered for the test).
func sampleTree(t *testing.T) map[string]string {
	t.Helper()
	lowerMemLimit(t, 100_000)
	return map[string]string{
		"index.html":          "<!doctype html><script src=assets/app.js></script>",
		"assets/app.js":       strings.Repeat("CapacitorUpdater.notifyAppReady();\n", 200),
		"assets/logo.png":     randomString(t, 3000),
		"assets/big.js":       jsLines(3000),
		"assets/big.bin":      randomString(t, 150000),
		"assets/hero.jpg":     randomString(t, 120000),
		"assets/text.png":     strings.Repeat("stored by extension, though it would deflate ", 50),
		"assets/empty.txt":    "",
		"a-b.txt":             "sorts before a/",
		"ünïcode/ßtraße.html": "x",
	}
}

// lowerMemLimit makes files above n bytes take the temporary-file path.
func lowerMemLimit(t *testing.T, n int64) {
	t.Helper()
	old := memLimit
	memLimit = n
	t.Cleanup(func() { memLimit = old })
}

// jsLines is compressible text that is not so repetitive that it looks
// like a zip bomb.
func jsLines(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "console.log('line %d of a fairly long javascript file', %d);\n", i, i*7919%10007)
	}
	return b.String()
}

func zipBytes(t *testing.T, dir string, opts ZipOptions) ([]byte, Result) {
	t.Helper()
	var buf bytes.Buffer
	res, err := Zip(t.Context(), dir, &buf, opts)
	if err != nil {
		t.Fatalf("Zip(%s) error: %v", dir, err)
	}
	return buf.Bytes(), res
}

func TestZipDeterministic(t *testing.T) {
	files := sampleTree(t)
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, files)
	writeTree(t, b, files)
	// Make b differ in everything but names and contents.
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	err := filepath.WalkDir(b, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if err := os.Chmod(p, 0o600); err != nil {
				return err
			}
		}
		return os.Chtimes(p, old, old)
	})
	if err != nil {
		t.Fatal(err)
	}
	writeTree(t, b, map[string]string{".DS_Store": "junk", "__MACOSX/._index.html": "junk", "assets/.DS_Store": "junk"})

	za, ra := zipBytes(t, a, ZipOptions{})
	zb, rb := zipBytes(t, b, ZipOptions{Workers: 1})
	zc, _ := zipBytes(t, b, ZipOptions{Workers: 7})
	if !bytes.Equal(za, zb) || !bytes.Equal(zb, zc) {
		t.Fatalf("same files gave different zips: %d, %d and %d bytes", len(za), len(zb), len(zc))
	}
	if ra != rb {
		t.Errorf("results differ: %+v vs %+v", ra, rb)
	}
	if ra.Files != len(files) {
		t.Errorf("Files = %d; want %d", ra.Files, len(files))
	}
	var total int64
	for _, body := range files {
		total += int64(len(body))
	}
	if ra.Uncompressed != total {
		t.Errorf("Uncompressed = %d; want %d", ra.Uncompressed, total)
	}
	if ra.Size != int64(len(za)) {
		t.Errorf("Size = %d; want %d", ra.Size, len(za))
	}

	// The level changes the bytes: proves the option reaches the compressor.
	z1, _ := zipBytes(t, a, ZipOptions{Level: 1})
	if bytes.Equal(z1, za) {
		t.Error("level 1 and level 6 gave identical zips")
	}
}

func TestZipRoundTrip(t *testing.T) {
	files := sampleTree(t)
	dir := t.TempDir()
	writeTree(t, dir, files)
	writeTree(t, dir, map[string]string{".DS_Store": "junk", "__MACOSX/x": "junk"})
	if err := os.Mkdir(filepath.Join(dir, "emptydir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("assets/app.js", filepath.Join(dir, "link.js")); err != nil {
		t.Fatal(err)
	}
	files["link.js"] = files["assets/app.js"]

	data, _ := zipBytes(t, dir, ZipOptions{Workers: 3})
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("archive/zip cannot read the output: %v", err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if len(f.Extra) != 0 {
			t.Errorf("%s has extra fields %x", f.Name, f.Extra)
		}
		if f.Flags&0x8 != 0 {
			t.Errorf("%s has a data descriptor", f.Name)
		}
		if got := f.Modified; !got.Equal(time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("%s modified %v; want 1980-01-01 00:00", f.Name, got)
		}
		if strings.HasSuffix(f.Name, "/") {
			if f.Mode() != fs.ModeDir|0o755 {
				t.Errorf("%s mode %v; want drwxr-xr-x", f.Name, f.Mode())
			}
			continue
		}
		if f.Mode() != 0o644 {
			t.Errorf("%s mode %v; want -rw-r--r--", f.Name, f.Mode())
		}
		want, ok := files[f.Name]
		if !ok {
			t.Errorf("unexpected entry %s", f.Name)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc) // also checks the CRC
		rc.Close()
		if err != nil {
			t.Errorf("read %s: %v", f.Name, err)
		}
		if string(got) != want {
			t.Errorf("%s: content differs (%d bytes; want %d)", f.Name, len(got), len(want))
		}
		wantMethod := zip.Deflate
		if strings.HasSuffix(f.Name, ".png") || strings.HasSuffix(f.Name, ".jpg") || strings.HasSuffix(f.Name, ".bin") || len(want) < 100 {
			wantMethod = zip.Store // deflate would not make them smaller
		}
		if f.Method != wantMethod {
			t.Errorf("%s method %d; want %d", f.Name, f.Method, wantMethod)
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("entries not sorted: %q", names)
	}
	for _, want := range []string{"assets/", "emptydir/", "ünïcode/"} {
		if !slices.Contains(names, want) {
			t.Errorf("missing folder entry %q in %q", want, names)
		}
	}
	for _, n := range names {
		if strings.Contains(n, "DS_Store") || strings.Contains(n, "__MACOSX") {
			t.Errorf("macOS litter %q was zipped", n)
		}
	}

	rep, err := Validate(bytes.NewReader(data), int64(len(data)), Limits{})
	if err != nil {
		t.Fatalf("Validate(own zip) = %v", err)
	}
	if rep.Wrapper != "" || len(rep.Warnings) != 0 {
		t.Errorf("Validate(own zip) = %+v; want no wrapper, no warnings", rep)
	}
}

func TestZipFileMatchesSha256sum(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, sampleTree(t))
	outDir := t.TempDir()
	out := filepath.Join(outDir, "app.zip")
	if err := os.WriteFile(out, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := ZipFile(t.Context(), dir, out, ZipOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sum, size, err := HashFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if sum != res.SHA256 || size != res.Size {
		t.Errorf("HashFile = %s, %d; Result = %s, %d", sum, size, res.SHA256, res.Size)
	}
	if _, err := exec.LookPath("sha256sum"); err == nil {
		cmdOut, err := exec.Command("sha256sum", out).Output()
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Fields(string(cmdOut))[0]; got != res.SHA256 {
			t.Errorf("sha256sum = %s; Result.SHA256 = %s", got, res.SHA256)
		}
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v; want 0644", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(outDir)
	if len(ents) != 1 {
		t.Errorf("output folder holds %d entries; want only app.zip (temp file left behind?)", len(ents))
	}
}

func TestZipErrors(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.txt": "x"})

	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		opts  ZipOptions
		want  string
	}{
		{"symlink outside", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(dir, "s.txt")); err != nil {
				t.Fatal(err)
			}
		}, ZipOptions{}, "points outside"},
		{"relative symlink outside", func(t *testing.T, dir string) {
			if err := os.Symlink("../../../../../../etc/hostname", filepath.Join(dir, "s.txt")); err != nil {
				t.Fatal(err)
			}
		}, ZipOptions{}, "symlink"},
		{"symlink to folder", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{"sub/a.js": "x"})
			if err := os.Symlink("sub", filepath.Join(dir, "l")); err != nil {
				t.Fatal(err)
			}
		}, ZipOptions{}, "points to a folder"},
		{"broken symlink", func(t *testing.T, dir string) {
			if err := os.Symlink("nope", filepath.Join(dir, "l")); err != nil {
				t.Fatal(err)
			}
		}, ZipOptions{}, "broken"},
		{"backslash in name", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string]string{`a\b.js`: "x"})
		}, ZipOptions{}, "backslash"},
		{"bad level", nil, ZipOptions{Level: 10}, "compression level"},
		{"negative workers", nil, ZipOptions{Workers: -1}, "worker count"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if runtime.GOOS == "windows" && tt.setup != nil {
				t.Skip("symlinks and backslash names need a Unix file system")
			}
			dir := t.TempDir()
			writeTree(t, dir, map[string]string{"index.html": "x"})
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			_, err := Zip(t.Context(), dir, io.Discard, tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Zip() error = %v; want one containing %q", err, tt.want)
			}
		})
	}

	t.Run("missing folder", func(t *testing.T) {
		_, err := Zip(t.Context(), filepath.Join(t.TempDir(), "nope"), io.Discard, ZipOptions{})
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error = %v; want fs.ErrNotExist", err)
		}
	})
	t.Run("not a folder", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "f")
		writeTree(t, filepath.Dir(f), map[string]string{"f": "x"})
		if _, err := Zip(t.Context(), f, io.Discard, ZipOptions{}); err == nil || !strings.Contains(err.Error(), "not a folder") {
			t.Fatalf("error = %v; want not a folder", err)
		}
	})
	t.Run("output inside input", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"index.html": "x"})
		_, err := ZipFile(t.Context(), dir, filepath.Join(dir, "sub", "..", "out.zip"), ZipOptions{})
		if err == nil || !strings.Contains(err.Error(), "inside the folder") {
			t.Fatalf("error = %v; want refusal", err)
		}
	})
	t.Run("write error leaves no file", func(t *testing.T) {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"index.html": "x"})
		out := filepath.Join(t.TempDir(), "missing", "out.zip")
		if _, err := ZipFile(t.Context(), dir, out, ZipOptions{}); err == nil {
			t.Fatal("ZipFile into a missing folder succeeded")
		}
	})
}

func TestCopyStoredDetectsChange(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"a.png": "new content"})
	src := filepath.Join(dir, "a.png")
	tests := []struct {
		name string
		c    compressed
	}{
		{"size changed", compressed{src: src, size: 3, crc: crc32.ChecksumIEEE([]byte("new"))}},
		{"content changed", compressed{src: src, size: 11, crc: crc32.ChecksumIEEE([]byte("old content"))}},
	}
	for _, tt := range tests {
		err := copyStored(io.Discard, &tt.c)
		if err == nil || !strings.Contains(err.Error(), "changed while") {
			t.Errorf("%s: copyStored() = %v; want a changed-file error", tt.name, err)
		}
	}
	ok := compressed{src: src, size: 11, crc: crc32.ChecksumIEEE([]byte("new content"))}
	if err := copyStored(io.Discard, &ok); err != nil {
		t.Errorf("copyStored(unchanged) = %v", err)
	}
}

type failWriter struct{ after int }

func (w *failWriter) Write(p []byte) (int, error) {
	if w.after -= len(p); w.after < 0 {
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

func TestZipStops(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 200 {
		files["f"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+"/"+string(rune('a'+i/26))+".js"] = strings.Repeat("y", 5000+i)
	}
	lowerMemLimit(t, 100_000)
	files["big.js"] = jsLines(5000)
	writeTree(t, dir, files)

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, err := Zip(ctx, dir, io.Discard, ZipOptions{Workers: 2})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error = %v; want context.Canceled", err)
		}
	})
	t.Run("writer fails", func(t *testing.T) {
		before := countTemp(t)
		_, err := Zip(t.Context(), dir, &failWriter{after: 20000}, ZipOptions{Workers: 4})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("error = %v; want the writer's error", err)
		}
		if after := countTemp(t); after > before {
			t.Errorf("%d temporary files left behind", after-before)
		}
	})
}

func countTemp(t *testing.T) int {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(os.TempDir(), "otactl-zip-*"))
	if err != nil {
		t.Fatal(err)
	}
	return len(m)
}

// BenchmarkZip zips a generated web build: 300 files and 5 MiB of the
// project's realistic generator (internal/webbundle), as bench/run.sh
// makes 1,500 files and 25 MiB, so the numbers of both compare.
func BenchmarkZip(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "web")
	tree, err := webbundle.Generate(dir, webbundle.Options{Seed: 1, Files: 300, Size: 5 << 20})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(tree.Bytes)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Zip(b.Context(), dir, io.Discard, ZipOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestZipGolden pins the archive format. The files are all stored (tiny, or
// already-compressed formats), so the bytes do not depend on the flate
// implementation. If this fails, the same web build gets a different
// checksum than with earlier otactl releases: change it only on purpose.
func TestZipGolden(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"index.html":       "<p>",
		"img/logo.png":     "\x89PNG fake",
		"img/sub/icon.png": "icon",
		"z.woff2":          "font",
	})
	if err := os.Mkdir(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, res := zipBytes(t, dir, ZipOptions{})
	const want = "576342e8e009350e07cd6addbc054bfc003295ab8324a29c87b17068cf3caea3"
	if res.SHA256 != want {
		t.Errorf("SHA256 = %s; want %s", res.SHA256, want)
	}
}
