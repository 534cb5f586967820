package ingest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func newFS(t *testing.T) *blob.FS {
	t.Helper()
	bl, err := blob.NewFS(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	return bl
}

func TestPut(t *testing.T) {
	ctx := context.Background()
	content := []byte(strings.Repeat("export const x = 1;\n", 1000))
	br, ok, err := delta.Compress("x.js", content)
	if err != nil || !ok {
		t.Fatal(err)
	}
	bomb, _, _ := delta.Compress("x.br", make([]byte, 1<<20)) // 1 MiB of zeros in a few bytes
	for _, tt := range []struct {
		name, sum, encoding string
		body                []byte
		limit               int64
		wantErr             error
		wantBr              bool
	}{
		{"raw", sum(content), ota.EncodingRaw, content, 0, nil, false},
		{"raw, other bytes", sum(content), ota.EncodingRaw, content[1:], 0, ErrMismatch, false},
		{"Brotli", sum(content), ota.EncodingBrotli, br, 0, nil, true},
		{"Brotli of other bytes", sum(content[1:]), ota.EncodingBrotli, br, 0, ErrMismatch, false},
		{"Brotli cut short", sum(content), ota.EncodingBrotli, br[:len(br)-3], 0, ErrBadBrotli, false},
		{"not Brotli", sum(content), ota.EncodingBrotli, content, 0, ErrBadBrotli, false},
		{"a Brotli bomb", sum(make([]byte, 1<<20)), ota.EncodingBrotli, bomb, 64 << 10, ErrBadBrotli, false},
		{"encrypted", sum(make([]byte, 32)), ota.EncodingEncrypted, make([]byte, 32), 0, nil, false},
		{"encrypted, not whole blocks", sum(make([]byte, 33)), ota.EncodingEncrypted, make([]byte, 33), 0, ErrBadEncrypted, false},
		{"encrypted, empty", sum(nil), ota.EncodingEncrypted, nil, 0, ErrBadEncrypted, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bl := newFS(t)
			res, err := Put(ctx, bl, "app", tt.sum, tt.encoding, bytes.NewReader(tt.body), tt.limit)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Put = %v; want %v", err, tt.wantErr)
			}
			if err != nil {
				// The caller discards what Put wrote; it must say what.
				n := 0
				_ = bl.List(ctx, func(blob.Info) error { n++; return nil })
				if n != len(res.NewBlobs) {
					t.Errorf("%d blobs stored, %d reported new", n, len(res.NewBlobs))
				}
				return
			}
			f := res.File
			if f.SHA256 != tt.sum || (f.Br != "") != tt.wantBr || f.Encrypted != (tt.encoding == ota.EncodingEncrypted) {
				t.Errorf("record %+v", f)
			}
			if tt.wantBr {
				// Both forms are stored: the raw one under the file's SHA-256.
				if _, err := bl.Stat(ctx, f.SHA256); err != nil {
					t.Errorf("raw form not stored: %v", err)
				}
				if info, err := bl.Stat(ctx, f.Br); err != nil || info.Size != f.BrSize || f.Size != int64(len(content)) {
					t.Errorf("Brotli form %v %v, record %+v", info, err, f)
				}
			}
		})
	}
}

func TestResolve(t *testing.T) {
	a, b := sum([]byte("a")), sum([]byte("b"))
	recs := map[string]store.DeltaFile{
		a: {SHA256: a, Size: 1, Br: sum([]byte("a.br")), BrSize: 5},
		b: {SHA256: b, Size: 1, Encrypted: true},
	}
	files := []ota.ManifestFile{{Path: "index.html", SHA256: a, Size: 1}, {Path: "x.js", SHA256: sum([]byte("c")), Size: 1}}
	missing, err := Resolve(files, recs, false)
	if err != nil || len(missing) != 1 || missing[0] != files[1].SHA256 {
		t.Fatalf("missing %v, err %v", missing, err)
	}
	if f := files[0]; f.Raw != a || f.RawSize != 1 || f.Br != recs[a].Br || f.BrSize != 5 {
		t.Errorf("resolved %+v", f)
	}
	for _, tt := range []struct {
		name  string
		files []ota.ManifestFile
		want  string
	}{
		{"size differs", []ota.ManifestFile{{Path: "i", SHA256: a, Size: 2}}, "has 1"},
		{"encrypted form in a plain release", []ota.ManifestFile{{Path: "i", SHA256: b, Size: 1}}, "encrypted form"},
		{".br without its Brotli form", []ota.ManifestFile{{Path: "i.br", SHA256: a, Size: 1}}, ""},
	} {
		if tt.name == ".br without its Brotli form" {
			r := map[string]store.DeltaFile{a: {SHA256: a, Size: 1}}
			if _, err := Resolve(tt.files, r, false); err == nil || !strings.Contains(err.Error(), "ends in .br") {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		if _, err := Resolve(tt.files, recs, false); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}
	// Encrypted: the forms must be encrypted uploads.
	enc := []ota.ManifestFile{{Path: "index.html", SHA256: a, Size: 1, Raw: b, FileHash: "x"}}
	if missing, err := Resolve(enc, recs, true); err != nil || len(missing) != 0 || enc[0].RawSize != 1 {
		t.Errorf("encrypted: %v %v %+v", missing, err, enc[0])
	}
	enc[0].Raw = a
	if _, err := Resolve(enc, recs, true); err == nil {
		t.Error("a plain file named as an encrypted form was accepted")
	}
}

func TestCheckZip(t *testing.T) {
	ctx := context.Background()
	mk := func(prefix string, files map[string]string) *bytes.Reader {
		var b bytes.Buffer
		zw := zip.NewWriter(&b)
		if prefix != "" {
			_, _ = zw.Create(strings.TrimSuffix(prefix, "/") + "/")
		}
		for name, c := range files {
			w, _ := zw.Create(prefix + name)
			_, _ = w.Write([]byte(c))
		}
		_ = zw.Close()
		return bytes.NewReader(b.Bytes())
	}
	manifest := []ota.ManifestFile{
		{Path: "index.html", SHA256: sum([]byte("<html>")), Size: 6},
		{Path: "a/b.js", SHA256: sum([]byte("b")), Size: 1},
	}
	ok := map[string]string{"index.html": "<html>", "a/b.js": "b"}
	for _, tt := range []struct {
		name    string
		zip     *bytes.Reader
		wrapper string
		want    string
	}{
		{"same files", mk("", ok), "", ""},
		{"same files in a wrapper folder", mk("dist/", ok), "dist", ""},
		{"a file more", mk("", map[string]string{"index.html": "<html>", "a/b.js": "b", "c": "c"}), "", "does not list"},
		{"a file less", mk("", map[string]string{"index.html": "<html>"}), "", "does not have"},
		{"other content", mk("", map[string]string{"index.html": "<html>", "a/b.js": "B"}), "", "differs"},
	} {
		err := CheckZip(ctx, tt.zip, tt.zip.Size(), tt.wrapper, manifest)
		if (tt.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v; want %q", tt.name, err, tt.want)
		}
	}
}
