package delta

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/pkg/ota"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestPathRules(t *testing.T) {
	for _, tt := range []struct {
		p            string
		plugin, ours bool // refused by the plugin, by otad
	}{
		{"index.html", false, false},
		{"assets/app.js", false, false},
		{"assets/ünï côde.js", false, false},
		{"a.br", false, false},
		{"", true, true},
		{".br", true, true},
		{"a\\b", true, true},
		{"a\x00b", true, true},
		{"/etc/passwd", true, true},
		{"../x", true, true},
		{"a/../../x", true, true},
		{"..", true, true},
		// The plugin accepts these; otad wants one name per file.
		{"a/../b", false, true},
		{"./a", false, true},
		{"a//b", false, true},
		{"dir/", false, true},
		{"a/.", false, true},
		{"\xff.js", false, true},
		{strings.Repeat("a", 1025), false, true},
	} {
		if got := PluginPathProblem(tt.p) != ""; got != tt.plugin {
			t.Errorf("PluginPathProblem(%q) refuses = %v; want %v", tt.p, got, tt.plugin)
		}
		if got := PathProblem(tt.p) != ""; got != tt.ours {
			t.Errorf("PathProblem(%q) refuses = %v; want %v", tt.p, got, tt.ours)
		}
	}
}

// FuzzPathRules: every path otad accepts is one the plugin accepts, with
// and without ".br", names itself in canonical form, and stays inside the
// bundle on disk.
func FuzzPathRules(f *testing.F) {
	for _, s := range []string{"index.html", "a/b.js", "../x", "a/../b", "x.br", "a\\b", "/a", "a//b", "ü/ö.js", ".", "..."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if PathProblem(p) != "" {
			return
		}
		if PluginPathProblem(p) != "" || PluginPathProblem(p+".br") != "" {
			t.Fatalf("%q accepted by otad, refused by the plugin", p)
		}
		if path.Clean(p) != p || path.IsAbs(p) {
			t.Fatalf("%q is not canonical", p)
		}
		root := filepath.FromSlash("/bundle")
		if full := filepath.Join(root, filepath.FromSlash(p)); !strings.HasPrefix(full, root+string(filepath.Separator)) {
			t.Fatalf("%q lands on %q, outside the bundle", p, full)
		}
	})
}

func TestCheckManifest(t *testing.T) {
	good := func() []ota.ManifestFile {
		return []ota.ManifestFile{
			{Path: "index.html", SHA256: sum("i"), Size: 1},
			{Path: "assets/a.js", SHA256: sum("a"), Size: 2},
		}
	}
	if err := CheckManifest(good(), false); err != nil {
		t.Fatalf("good manifest: %v", err)
	}
	enc := func() []ota.ManifestFile {
		m := good()
		for i := range m {
			m[i].Raw, m[i].FileHash = sum("c"+m[i].Path), strings.Repeat("ab", 256)
		}
		return m
	}
	if err := CheckManifest(enc(), true); err != nil {
		t.Fatalf("good encrypted manifest: %v", err)
	}
	sig := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 256))
	signed := func() []ota.ManifestFile {
		m := good()
		for i := range m {
			m[i].Signature = sig
		}
		return m
	}
	if err := CheckManifest(signed(), false); err != nil {
		t.Fatalf("signed manifest: %v", err)
	}
	for _, tt := range []struct {
		name      string
		files     []ota.ManifestFile
		encrypted bool
		want      string
	}{
		{"empty", nil, false, "lists no files"},
		{"no index.html", good()[1:], false, "no index.html"},
		{"bad path", append(good(), ota.ManifestFile{Path: "../x", SHA256: sum("x")}), false, "outside the bundle"},
		{"bad hash", append(good(), ota.ManifestFile{Path: "x", SHA256: strings.ToUpper(sum("x"))}), false, "not 64 lowercase hex"},
		{"negative size", append(good(), ota.ManifestFile{Path: "x", SHA256: sum("x"), Size: -1}), false, "negative"},
		{"twice", append(good(), good()[1]), false, "listed twice"},
		{"case", append(good(), ota.ManifestFile{Path: "Assets/A.js", SHA256: sum("x")}), false, "differ only in case"},
		{"file as folder", append(good(), ota.ManifestFile{Path: "assets/a.js/b", SHA256: sum("x")}), false, "needs it to be a folder"},
		{"forms in a plain release", func() []ota.ManifestFile { m := good(); m[0].Br = sum("b"); return m }(), false, "for encrypted releases"},
		{"encrypted without raw", func() []ota.ManifestFile { m := enc(); m[0].Raw = ""; return m }(), true, "encrypted raw form"},
		{"encrypted without file_hash", func() []ota.ManifestFile { m := enc(); m[0].FileHash = ""; return m }(), true, "file_hash"},
		{"one file signed", func() []ota.ManifestFile { m := signed(); m[1].Signature = ""; return m }(), false, "1 of the 2 files are signed"},
		{"bad signature", func() []ota.ManifestFile { m := signed(); m[0].Signature = "not base64!"; return m }(), false, "standard base64"},
		{"signed encrypted", func() []ota.ManifestFile { m := enc(); m[0].Signature = sig; return m }(), true, "cannot install encrypted"},
		{"encrypted .br without Brotli", append(enc(), ota.ManifestFile{Path: "x.br", SHA256: sum("x"), Raw: sum("y"), FileHash: "ab"}), true, "needs a br form"},
	} {
		err := CheckManifest(tt.files, tt.encrypted)
		var me *ManifestError
		if !errors.As(err, &me) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want a ManifestError saying %q", tt.name, err, tt.want)
		}
	}
	// A hostile manifest gets a bounded error.
	var many []ota.ManifestFile
	for range 500 {
		many = append(many, ota.ManifestFile{Path: "/abs", SHA256: "x"})
	}
	var me *ManifestError
	if err := CheckManifest(many, false); !errors.As(err, &me) || len(me.Problems) > maxProblems+1 {
		t.Errorf("500 bad files: %d problems", len(me.Problems))
	}
	if err := CheckManifest(make([]ota.ManifestFile, ota.MaxManifestFiles+1), false); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("too many files: %v", err)
	}
}

func TestCompress(t *testing.T) {
	text := bytes.Repeat([]byte("const value = state; "), 1000)
	noise := make([]byte, 20000)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		path string
		data []byte
		want bool
	}{
		{"compressible, big enough", "a.js", text, true},
		{"compressible, too small", "a.js", text[:MinBrotliSize-1], false},
		{"incompressible", "a.png", noise[:MinBrotliSize+100], false},
		{"named .br: always", "x.br", []byte("tiny"), true},
		{"named .br, empty", "x.br", nil, true},
	} {
		br, ok, err := Compress(tt.path, tt.data)
		if err != nil || ok != tt.want {
			t.Errorf("%s: ok %v, err %v; want %v", tt.name, ok, err, tt.want)
			continue
		}
		if !ok {
			continue
		}
		back, err := io.ReadAll(NewBrotliReader(bytes.NewReader(br)))
		if err != nil || !bytes.Equal(back, tt.data) {
			t.Errorf("%s: Brotli form decodes to %d bytes (%v)", tt.name, len(back), err)
		}
	}
	br, _, _ := Compress("a.js", text)
	if _, err := io.ReadAll(NewBrotliReader(bytes.NewReader(append(br, 0)))); err == nil {
		t.Error("a Brotli stream followed by a byte decodes without error")
	}
}

// TestScanMatchesZip: the files of a delta release are exactly those of
// its zip, with the same names and contents.
func TestScanMatchesZip(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"index.html": "<html>", "assets/a.js": "a", "assets/deep/b.css": "b", "empty": "",
		".DS_Store": "mac", "__MACOSX/x": "mac",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.js", filepath.Join(dir, "assets", "link.js")); err != nil {
		t.Fatal(err)
	}
	files, err := Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	if _, err := bundle.Zip(context.Background(), dir, &z, bundle.ZipOptions{}); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(z.Bytes()), int64(z.Len()))
	if err != nil {
		t.Fatal(err)
	}
	inZip := map[string]string{}
	for _, zf := range zr.File {
		if strings.HasSuffix(zf.Name, "/") {
			continue
		}
		rc, _ := zf.Open()
		b, _ := io.ReadAll(rc)
		rc.Close()
		inZip[zf.Name] = sum(string(b))
	}
	if len(files) != len(inZip) {
		t.Fatalf("scan found %d files, the zip has %d: %v", len(files), len(inZip), inZip)
	}
	for _, f := range files {
		if inZip[f.Path] != f.SHA256 {
			t.Errorf("%s: scan sha256 %s, zip %s", f.Path, f.SHA256, inZip[f.Path])
		}
	}
}

func TestParallel(t *testing.T) {
	var n atomic.Int64
	if err := Parallel(context.Background(), 100, 4, func(int) error { n.Add(1); return nil }); err != nil || n.Load() != 100 {
		t.Errorf("ran %d of 100: %v", n.Load(), err)
	}
	boom := errors.New("boom")
	n.Store(0)
	err := Parallel(context.Background(), 1000, 2, func(i int) error {
		n.Add(1)
		if i == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n.Load() > 10 {
		t.Errorf("after a failure: %v, %d ran; want boom and a prompt stop", err, n.Load())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Parallel(ctx, 10, 2, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if err := Parallel(context.Background(), 0, 2, func(int) error { return boom }); err != nil {
		t.Errorf("nothing to do: %v", err)
	}
}
