package server

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// parsedBackup is an archive read back: its manifest and entries.
type parsedBackup struct {
	manifest BackupManifest
	order    []string
	files    map[string][]byte
}

func parseBackup(t *testing.T, r io.Reader) parsedBackup {
	t.Helper()
	p := parsedBackup{files: map[string][]byte{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			t.Errorf("entry %s has type %c", hdr.Name, hdr.Typeflag)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("read %s: %v", hdr.Name, err)
		}
		p.order = append(p.order, hdr.Name)
		p.files[hdr.Name] = b
	}
	if len(p.order) < 2 || p.order[0] != BackupManifestName || p.order[1] != BackupDBName {
		t.Fatalf("archive entries %q, want manifest.json and otad.db first", p.order)
	}
	if err := json.Unmarshal(p.files[BackupManifestName], &p.manifest); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return p
}

// check verifies the archive against its manifest and against the
// database copy in it: every blob that copy refers to is there, with its
// bytes. It returns the bundles of app in the copy.
func (p parsedBackup) check(t *testing.T, app string) []ota.Bundle {
	t.Helper()
	m := p.manifest
	if m.Format != BackupFormat || m.OtadVersion != "test" {
		t.Errorf("manifest = %+v", m)
	}
	db := p.files[BackupDBName]
	if sum := sha256.Sum256(db); hex.EncodeToString(sum[:]) != m.DB.SHA256 || int64(len(db)) != m.DB.Size {
		t.Errorf("database does not match the manifest")
	}
	if len(p.order) != 2+len(m.Blobs) {
		t.Errorf("%d entries for %d blobs", len(p.order), len(m.Blobs))
	}
	for _, b := range m.Blobs {
		data, ok := p.files[BackupBlobName(b.SHA256)]
		sum := sha256.Sum256(data)
		if !ok || hex.EncodeToString(sum[:]) != b.SHA256 || int64(len(data)) != b.Size {
			t.Errorf("blob %s missing or damaged in the archive", b.SHA256)
		}
	}
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(path, db, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("open the database copy: %v", err)
	}
	defer st.Close()
	if err := st.Check(); err != nil {
		t.Errorf("database copy: %v", err)
	}
	refs, err := st.ReferencedBlobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != len(m.Blobs) {
		t.Errorf("the copy refers to %d blobs, the manifest lists %d", len(refs), len(m.Blobs))
	}
	for sha := range refs {
		if _, ok := p.files[BackupBlobName(sha)]; !ok {
			t.Errorf("the copy refers to blob %s, which the archive lacks", sha)
		}
	}
	bundles, err := st.ListBundles(context.Background(), app)
	if err != nil {
		t.Fatal(err)
	}
	return bundles
}

func TestBackupRouteWhileUploading(t *testing.T) {
	env := newTestEnv(t)
	for i := range 3 {
		env.publish(testApp, "production", fmt.Sprintf("1.0.%d", i), nil)
	}
	hs := httptest.NewServer(env.srv.Handler())
	defer hs.Close()
	client, err := ota.NewClient(hs.URL, ota.WithToken(env.token))
	if err != nil {
		t.Fatal(err)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var uploaded sync.Map
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				v := fmt.Sprintf("2.%d.%d", w, i)
				body := zipOf(map[string]string{"index.html": "<html>" + v + strings.Repeat(" ", 32<<10) + "</html>"})
				_, err := client.Upload(context.Background(), ota.UploadRequest{AppID: testApp, Channel: "production",
					Version: v, File: bytes.NewReader(body), Size: int64(len(body))})
				if err != nil {
					t.Errorf("upload %s: %v", v, err)
					return
				}
				uploaded.Store(v, true)
			}
		}()
	}
	var archives []parsedBackup
	for range 3 {
		body, err := client.Backup(context.Background())
		if err != nil {
			t.Fatalf("backup: %v", err)
		}
		archives = append(archives, parseBackup(t, body))
		body.Close()
	}
	close(stop)
	wg.Wait()

	for i, p := range archives {
		bundles := p.check(t, testApp)
		t.Logf("archive %d: %d bundles", i, len(bundles))
		if len(bundles) < 3 {
			t.Errorf("archive %d has %d bundles, want at least the 3 published before", i, len(bundles))
		}
		for _, b := range bundles {
			if strings.HasPrefix(b.Version, "2.") {
				if _, ok := uploaded.Load(b.Version); !ok {
					t.Errorf("archive %d has bundle %s, which was never answered as uploaded", i, b.Version)
				}
			}
		}
	}
	if strings.Contains(env.logs.String(), "level=ERROR") {
		t.Errorf("server logged errors:\n%s", env.logs)
	}
}

func TestBackupRouteRefusals(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.0", nil)
	tok := env.createToken(ota.TokenCreateRequest{Name: "ci", TTLSeconds: 3600})

	rec := env.do(http.MethodGet, "/api/v1/backup", nil, "Authorization", "")
	wantStatus(t, rec, http.StatusUnauthorized, ota.ErrCodeUnauthorized)
	rec = env.do(http.MethodGet, "/api/v1/backup", nil, "Authorization", "Bearer "+tok.Token)
	wantStatus(t, rec, http.StatusForbidden, ota.ErrCodeForbidden)
	if !strings.Contains(rec.Body.String(), "log in as a user") {
		t.Errorf("CI token refusal: %s", rec.Body)
	}

	// A referenced bundle file gone from disk fails before the first byte,
	// with an error the operator can act on in the server log.
	b := env.publish(testApp, "production", "1.0.1", nil)
	if err := env.blobs.Delete(context.Background(), b.SHA256); err != nil {
		t.Fatal(err)
	}
	rec = env.do(http.MethodGet, "/api/v1/backup", nil)
	wantStatus(t, rec, http.StatusInternalServerError, ota.ErrCodeInternal)
	if !strings.Contains(rec.Body.String(), b.SHA256+" is missing from the data dir") {
		t.Errorf("answer lacks the reason: %s", rec.Body)
	}
	if !strings.Contains(env.logs.String(), "is missing from the data dir") {
		t.Errorf("server log lacks the reason:\n%s", env.logs)
	}
}

func TestBackupRouteAnswer(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "beta", "1.0.0", nil) // same bytes: one blob
	env.publish("com.example.other", "production", "3.0.0", nil)
	rec := env.do(http.MethodGet, "/api/v1/backup", nil)
	wantStatus(t, rec, http.StatusOK, "")
	if ct := rec.Header().Get("Content-Type"); ct != BackupContentType {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, "otad-backup-20260304T050607Z.tar") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
	p := parseBackup(t, rec.Body)
	if len(p.manifest.Blobs) != 2 {
		t.Errorf("manifest lists %d blobs, want 2", len(p.manifest.Blobs))
	}
	if !p.manifest.CreatedAt.Equal(testEpoch) {
		t.Errorf("created_at = %s, want the server clock's %s", p.manifest.CreatedAt, testEpoch)
	}
	p.check(t, testApp)
	if _, ok := p.files[BackupKeyName]; ok {
		t.Errorf("the server sent a signing key")
	}
}

func TestPrepareBackupLeavesNoTempFiles(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.0", nil)
	tmp := t.TempDir()
	ctx := context.Background()
	b, err := PrepareBackup(ctx, env.store.Backup, env.blobs, BackupOptions{TempDir: tmp, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := b.WriteTar(ctx, tw); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir holds %d files after Close", len(left))
	}
	parseBackup(t, &buf).check(t, testApp)

	// A failing snapshot leaves nothing either.
	_, err = PrepareBackup(ctx, func(context.Context, io.Writer) (int64, error) { return 0, errors.New("disk on fire") },
		env.blobs, BackupOptions{TempDir: tmp})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Errorf("err = %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temp dir holds %d files after a failure", len(left))
	}
}
