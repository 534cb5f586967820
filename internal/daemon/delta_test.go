package daemon

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/delta/ingest"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// deltaFixture is a data dir with two delta releases of one app: 1.0.0
// (index.html, app.js, logo.png) and 1.1.0 (a new index.html and app.js,
// the same logo.png), app.js stored raw and Brotli-compressed.
type deltaFixture struct {
	dir   string
	st    *bolt.Store
	bl    *blob.FS
	files map[string][]ota.ManifestFile // by version
}

func newDeltaFixture(t *testing.T, at time.Time) *deltaFixture {
	t.Helper()
	ctx := context.Background()
	f := &deltaFixture{dir: t.TempDir(), files: map[string][]ota.ManifestFile{}}
	var err error
	if f.st, err = openStore(f.dir, true); err != nil {
		t.Fatal(err)
	}
	if f.bl, err = blob.NewFS(filepath.Join(f.dir, "blobs")); err != nil {
		t.Fatal(err)
	}
	logo := bytes.Repeat([]byte{0x89, 'P', 'N', 'G', 7, 3, 250}, 2000)
	for _, rel := range []struct{ version, index, app string }{
		{"1.0.0", "<html>1</html>", strings.Repeat("const a = 1; ", 2000)},
		{"1.1.0", "<html>2</html>", strings.Repeat("const b = 2; ", 2000)},
	} {
		var m []ota.ManifestFile
		for _, file := range []struct {
			path string
			data []byte
		}{{"index.html", []byte(rel.index)}, {"assets/app.js", []byte(rel.app)}, {"assets/logo.png", logo}} {
			sum := sha256.Sum256(file.data)
			key := hex.EncodeToString(sum[:])
			body, encoding := file.data, ota.EncodingRaw
			if br, ok, _ := delta.Compress(file.path, file.data); ok {
				body, encoding = br, ota.EncodingBrotli
			}
			stored, err := ingest.Put(ctx, f.bl, "com.example.app", key, encoding, bytes.NewReader(body), 0)
			if err != nil {
				t.Fatal(err)
			}
			stored.File.CreatedAt = at
			if _, err := f.st.PutDeltaFile(ctx, stored.File); err != nil {
				t.Fatal(err)
			}
			m = append(m, ota.ManifestFile{Path: file.path, SHA256: key, Size: int64(len(file.data)),
				Raw: key, RawSize: int64(len(file.data)), Br: stored.File.Br, BrSize: stored.File.BrSize})
		}
		zip, err := f.bl.Put(ctx, strings.NewReader("zip of "+rel.version), 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.st.Publish(ctx, store.PublishInput{
			Bundle:  ota.Bundle{AppID: "com.example.app", Version: rel.version, Kind: ota.KindWeb, SHA256: zip.SHA256, Size: zip.Size},
			Channel: "stable", Actor: "test", Time: at, Manifest: m,
		})
		if err != nil {
			t.Fatal(err)
		}
		f.files[rel.version] = m
	}
	return f
}

// TestCollectBlobsDelta: once a delta release is deleted, its files that
// no other release names are collected, records first; the files of the
// live release, and young uploads, stay.
func TestCollectBlobsDelta(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	f := newDeltaFixture(t, now)
	defer f.st.Close()
	// A file uploaded just now for a release still on its way.
	young, err := ingest.Put(ctx, f.bl, "com.example.app", sha("in flight"), ota.EncodingRaw, strings.NewReader("in flight"), 0)
	if err != nil {
		t.Fatal(err)
	}
	later := now.Add(2 * time.Hour)
	young.File.CreatedAt = later.Add(-time.Minute)
	if _, err := f.st.PutDeltaFile(ctx, young.File); err != nil {
		t.Fatal(err)
	}
	if err := touch(f.bl, young.File.SHA256, later.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.DeleteRelease(ctx, "com.example.app", "stable", "1.0.0", "test", now); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	collectBlobs(ctx, f.st, f.bl, later, blobGrace, slog.New(slog.NewTextHandler(&logs, nil)))

	old, live := f.files["1.0.0"], f.files["1.1.0"]
	gone := []string{old[0].SHA256, old[1].SHA256, old[1].Br} // 1.0.0's index.html and app.js, both forms
	kept := []string{live[0].SHA256, live[1].SHA256, live[1].Br, live[2].SHA256, young.File.SHA256}
	for _, k := range gone {
		if _, err := f.bl.Stat(ctx, k); err == nil {
			t.Errorf("blob %s… of the deleted release only was kept", k[:12])
		}
	}
	for _, k := range kept {
		if _, err := f.bl.Stat(ctx, k); err != nil {
			t.Errorf("blob %s… was collected: %v", k[:12], err)
		}
	}
	recs, err := f.st.DeltaFiles(ctx, "com.example.app", []string{old[0].SHA256, live[2].SHA256, young.File.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := recs[old[0].SHA256]; ok || len(recs) != 2 {
		t.Errorf("records after collection: %v; want logo.png's (named by 1.1.0) and the young one", recs)
	}
	if !strings.Contains(logs.String(), "forgot delta files no release names") {
		t.Errorf("log: %s", logs.String())
	}
}

// TestBackupRestoreDelta: a backup carries every form of every file the
// live releases name, and the restored store serves the same manifests.
func TestBackupRestoreDelta(t *testing.T) {
	ctx := context.Background()
	f := newDeltaFixture(t, time.Now())
	f.st.Close()
	file := filepath.Join(t.TempDir(), "otad.tar")
	if r := otad(t, nil, "", "backup", "--data-dir", f.dir, file); r.code != exitOK {
		t.Fatalf("backup exit %d: %s", r.code, r.stderr)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	if r := otad(t, nil, "", "restore", "--data-dir", dst, file); r.code != exitOK {
		t.Fatalf("restore exit %d: %s", r.code, r.stderr)
	}
	st := openTestStore(t, dst)
	bl, err := blob.NewFS(filepath.Join(dst, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	for version, want := range f.files {
		got, err := st.Manifest(ctx, "com.example.app", version)
		if err != nil || len(got) != len(want) {
			t.Fatalf("restored manifest of %s: %v, %v", version, got, err)
		}
		for _, mf := range got {
			for _, k := range []string{mf.Raw, mf.Br} {
				if k == "" {
					continue
				}
				c, _, err := bl.Open(ctx, k)
				if err != nil {
					t.Fatalf("restored blob %s of %s %s: %v", k[:12], version, mf.Path, err)
				}
				b, _ := io.ReadAll(c)
				c.Close()
				if sha(string(b)) != k {
					t.Errorf("restored blob %s… has other bytes", k[:12])
				}
			}
		}
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
