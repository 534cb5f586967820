package daemon

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// seedDataDir fills a stopped data dir with a bit of everything: two apps,
// web and APK bundles, a rollback, a promote, a deleted release, users
// (one with a changed password), a CI token, a webhook, a device pin,
// stats and health. It returns the SHA-256 of the bundle files.
func seedDataDir(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	st, err := bolt.Open(filepath.Join(dir, "otad.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bl, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	tick := func() time.Time { now = now.Add(time.Minute); return now }
	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"admin", "alice"} {
		if err := st.CreateUser(ctx, store.User{Name: name, PasswordHash: hash, CreatedAt: tick(), UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SetPassword(ctx, "alice", hash, tick()); err != nil {
		t.Fatal(err)
	}
	publish := func(app, channel, version, kind string, rollout int) {
		t.Helper()
		info, err := bl.Put(ctx, strings.NewReader(app+" "+version+" "+kind), 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = st.Publish(ctx, store.PublishInput{
			Bundle:  ota.Bundle{AppID: app, Version: version, Kind: kind, SHA256: info.SHA256, Size: info.Size, UploadedBy: "admin"},
			Channel: channel, Actor: "admin", Time: tick(), Rollout: rollout,
		})
		if err != nil {
			t.Fatalf("publish %s %s: %v", app, version, err)
		}
	}
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2", "1.1.0"} {
		publish("com.example.app", "production", v, ota.KindWeb, 0)
	}
	publish("com.example.app", "beta", "1.2.0", ota.KindWeb, 25)
	publish("com.example.app", "android", "7", ota.KindAPK, 0)
	publish("com.example.other", "production", "0.1.0", ota.KindWeb, 0)
	publish("com.example.other", "production", "0.2.0", ota.KindWeb, 0)
	if _, err := st.Rollback(ctx, "com.example.app", "production", "", "admin", tick()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Promote(ctx, "com.example.app", "", "production", "staging", "alice", tick()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeleteRelease(ctx, "com.example.other", "production", "0.2.0", "admin", tick()); err != nil {
		t.Fatal(err)
	}
	if err := st.SetOverride(ctx, store.DeviceOverride{AppID: "com.example.app", DeviceID: "dev-1", Channel: "beta"}, "admin", tick()); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateToken(ctx, store.CIToken{ID: "0123456789abcdef", Name: "deploy", SecretHash: []byte("h"), AppID: "com.example.app",
		CreatedBy: "admin", CreatedAt: tick(), ExpiresAt: now.Add(24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWebhook(ctx, store.StoredWebhook{Webhook: ota.Webhook{ID: "wh1", URL: "https://hooks.example.com/x", CreatedAt: tick()}, Secret: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	ev := ota.StatsEvent{Action: "set"}
	ev.DeviceID, ev.AppID, ev.VersionName = "dev-1", "com.example.app", "1.0.1"
	if err := st.AppendStats(ctx, []store.StoredStat{{Received: tick(), Event: ev}}); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveHealth(ctx, []store.VersionHealth{{AppID: "com.example.app", Version: "1.0.1", Installed: []string{"dev-1"}, UpdatedAt: tick()}}); err != nil {
		t.Fatal(err)
	}
}

// dumpStore reads everything a store knows, for comparing two stores.
func dumpStore(t *testing.T, st store.Store) map[string]any {
	t.Helper()
	ctx := context.Background()
	must := func(v any, err error) any {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	d := map[string]any{}
	apps, err := st.ListApps(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d["apps"] = apps
	for _, a := range apps {
		d["channels "+a.ID] = must(st.ListChannels(ctx, a.ID))
		d["bundles "+a.ID] = must(st.ListBundles(ctx, a.ID))
		d["stats "+a.ID] = must(st.Stats(ctx, a.ID, time.Time{}, 1000))
	}
	var events []ota.Event
	for before := uint64(0); ; {
		page, next, err := st.History(ctx, store.HistoryQuery{Before: before, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, page...)
		if next == 0 {
			break
		}
		before = next
	}
	d["history"] = events
	d["users"] = must(st.ListUsers(ctx))
	d["tokens"] = must(st.ListTokens(ctx))
	d["webhooks"] = must(st.ListWebhooks(ctx))
	d["health"] = must(st.LoadHealth(ctx))
	state, err := st.LoadState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d["overrides"] = state.Overrides
	return d
}

func compareStores(t *testing.T, want, got map[string]any) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("dumps have %d and %d parts", len(want), len(got))
	}
	for k, w := range want {
		if !reflect.DeepEqual(w, got[k]) {
			t.Errorf("%s differs after the round trip:\n got %+v\nwant %+v", k, got[k], w)
		}
	}
}

func dumpDir(t *testing.T, dir string) map[string]any {
	t.Helper()
	st := openTestStore(t, dir)
	defer st.Close()
	return dumpStore(t, st)
}

// readArchive returns the entries of a backup archive by name.
func readArchive(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = b
	}
}

// writeTar writes entries, in order, as a tar file.
func writeTar(t *testing.T, file string, entries ...tarEntry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: 0o600, Size: int64(len(e.data)), Linkname: e.link}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

type tarEntry struct {
	name string
	data []byte
	typ  byte
	link string
}

func TestBackupRestoreRoundTripStopped(t *testing.T) {
	for _, name := range []string{"otad.tar", "otad.tar.gz"} {
		t.Run(name, func(t *testing.T) {
			src := t.TempDir()
			seedDataDir(t, src)
			// A stray file no bundle refers to stays out of the backup.
			bl, err := blob.NewFS(filepath.Join(src, "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			stray, err := bl.Put(context.Background(), strings.NewReader("unreferenced"), 0)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), name)
			r := otad(t, nil, "", "backup", "--data-dir", src, file)
			if r.code != exitOK {
				t.Fatalf("backup exit %d: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "from the stopped data dir") || !strings.Contains(r.stdout, "--include-key") {
				t.Errorf("backup output: %s", r.stdout)
			}
			if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("backup file: %v, mode %v; want 0600", err, fi.Mode())
			}
			if _, err := os.Stat(file + ".tmp"); !os.IsNotExist(err) {
				t.Errorf("temp file left behind: %v", err)
			}
			if name == "otad.tar" {
				entries := readArchive(t, file)
				if _, ok := entries[server.BackupBlobName(stray.SHA256)]; ok {
					t.Errorf("the unreferenced blob is in the backup")
				}
				if _, ok := entries["jwt.key"]; ok {
					t.Errorf("the signing key is in a backup without --include-key")
				}
				var m server.BackupManifest
				if err := json.Unmarshal(entries["manifest.json"], &m); err != nil {
					t.Fatal(err)
				}
				// 8 published, one deleted release: 7 referenced files.
				if m.Format != server.BackupFormat || len(m.Blobs) != 7 || m.DB.Size != int64(len(entries["otad.db"])) {
					t.Errorf("manifest = %+v", m)
				}
			}

			dst := filepath.Join(t.TempDir(), "restored")
			r = otad(t, nil, "", "restore", "--data-dir", dst, file)
			if r.code != exitOK {
				t.Fatalf("restore exit %d: %s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "7 bundle files") || !strings.Contains(r.stdout, "no token signing key") {
				t.Errorf("restore output: %s", r.stdout)
			}
			if fi, err := os.Stat(filepath.Join(dst, "otad.db")); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("restored otad.db: %v, mode %v; want 0600", err, fi.Mode())
			}
			compareStores(t, dumpDir(t, src), dumpDir(t, dst))
			// Every referenced bundle file is back, byte for byte.
			st := openTestStore(t, dst)
			refs, err := st.ReferencedBlobs(context.Background())
			st.Close()
			if err != nil {
				t.Fatal(err)
			}
			for sha := range refs {
				b, err := os.ReadFile(filepath.Join(dst, "blobs", "sha256", sha[:2], sha))
				if err != nil {
					t.Fatalf("restored blob %s: %v", sha, err)
				}
				if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != sha {
					t.Errorf("restored blob %s has other bytes", sha)
				}
			}

			// A restored dir is not empty: a second restore is refused.
			r = otad(t, nil, "", "restore", "--data-dir", dst, file)
			if r.code != exitError || !strings.Contains(r.stderr, "is not empty") {
				t.Errorf("restore over a restored dir: exit %d, %s", r.code, r.stderr)
			}
		})
	}
}

func TestBackupIncludeKey(t *testing.T) {
	src := t.TempDir()
	seedDataDir(t, src)
	key := bytes.Repeat([]byte("k"), 32)
	if err := os.WriteFile(filepath.Join(src, "jwt.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "otad.tar")
	if r := otad(t, nil, "", "backup", "--data-dir", src, "--include-key", file); r.code != exitOK {
		t.Fatalf("backup exit %d: %s", r.code, r.stderr)
	}
	// Without --force an existing file is kept.
	if r := otad(t, nil, "", "backup", "--data-dir", src, file); r.code != exitError || !strings.Contains(r.stderr, "--force") {
		t.Errorf("backup over an existing file: exit %d, %s", r.code, r.stderr)
	}
	dst := filepath.Join(t.TempDir(), "restored")
	r := otad(t, nil, "", "restore", "--data-dir", dst, file)
	if r.code != exitOK || !strings.Contains(r.stdout, "signing key was restored") {
		t.Fatalf("restore exit %d: %s %s", r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(dst, "jwt.key"))
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("restored key = %q, %v", got, err)
	}
	// A key file in the way fails the restore and leaves nothing behind.
	dst2 := t.TempDir()
	keyFile := filepath.Join(t.TempDir(), "existing.key")
	if err := os.WriteFile(keyFile, []byte("other"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = otad(t, nil, "", "restore", "--data-dir", dst2, "--jwt-key-file", keyFile, file)
	if r.code != exitError || !strings.Contains(r.stderr, "exists") {
		t.Errorf("restore with a key file in the way: exit %d, %s", r.code, r.stderr)
	}
	assertEmpty(t, dst2)
	if b, _ := os.ReadFile(keyFile); string(b) != "other" {
		t.Errorf("existing key file was changed to %q", b)
	}
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	for _, e := range entries {
		t.Errorf("%s holds %s after a failed restore", dir, e.Name())
	}
}

func TestRestoreRefusals(t *testing.T) {
	src := t.TempDir()
	seedDataDir(t, src)
	good := filepath.Join(t.TempDir(), "good.tar")
	if r := otad(t, nil, "", "backup", "--data-dir", src, good); r.code != exitOK {
		t.Fatalf("backup exit %d: %s", r.code, r.stderr)
	}
	raw, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	entries := readArchive(t, good)
	manifest, db := entries["manifest.json"], entries["otad.db"]
	var m server.BackupManifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	first := m.Blobs[0].SHA256
	firstName := server.BackupBlobName(first)
	blobEntries := func(skip string, swap []byte) []tarEntry {
		var out []tarEntry
		for _, b := range m.Blobs {
			name := server.BackupBlobName(b.SHA256)
			if b.SHA256 == skip {
				continue
			}
			data := entries[name]
			if b.SHA256 == first && swap != nil {
				data = swap
			}
			out = append(out, tarEntry{name: name, data: data})
		}
		return out
	}
	base := func(rest ...tarEntry) []tarEntry {
		return append([]tarEntry{{name: "manifest.json", data: manifest}, {name: "otad.db", data: db}}, rest...)
	}
	// Same length, other bytes: only the hash can tell.
	tampered := bytes.Clone(entries[firstName])
	tampered[0] ^= 0xff

	tests := []struct {
		name    string
		entries []tarEntry
		raw     []byte // instead of entries
		want    string
	}{
		{"tampered blob", base(blobEntries("", tampered)...), nil, "tampered"},
		{"dot-dot path", base(append(blobEntries("", nil), tarEntry{name: "../x", data: []byte("x")})...), nil, "not a clean relative path"},
		{"dot-dot inside", base(tarEntry{name: "blobs/../../x", data: []byte("x")}), nil, "not a clean relative path"},
		{"absolute path", base(tarEntry{name: "/etc/passwd", data: []byte("x")}), nil, "not a clean relative path"},
		{"symlink", base(tarEntry{name: firstName, typ: tar.TypeSymlink, link: "/etc/passwd"}), nil, "not a regular file"},
		{"unknown entry", base(tarEntry{name: "blobs/other", data: []byte("x")}), nil, "not part of an otad backup"},
		{"blob not in manifest", base(tarEntry{name: server.BackupBlobName(strings.Repeat("a", 64)), data: []byte("x")}), nil, "not in the manifest"},
		{"missing blob", base(blobEntries(first, nil)...), nil, "cut short"},
		{"no manifest first", []tarEntry{{name: "otad.db", data: db}}, nil, "not manifest.json"},
		{"tampered database", []tarEntry{{name: "manifest.json", data: manifest}, {name: "otad.db", data: append([]byte{1}, db[1:]...)}}, nil, "SHA-256"},
		{"duplicate entry", base(append(blobEntries("", nil), tarEntry{name: firstName, data: entries[firstName]})...), nil, "twice"},
		{"cut short", nil, raw[:len(raw)/2], "cut short"},
		{"not a tar", nil, []byte("hello, this is not an archive at all"), "otad backup"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "bad.tar")
			if tt.raw != nil {
				if err := os.WriteFile(file, tt.raw, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				writeTar(t, file, tt.entries...)
			}
			parent := t.TempDir()
			dst := filepath.Join(parent, "data")
			r := otad(t, nil, "", "restore", "--data-dir", dst, file)
			if r.code != exitError || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("restore: exit %d, stderr %q; want an error with %q", r.code, r.stderr, tt.want)
			}
			assertEmpty(t, parent)
			if _, err := os.Stat(filepath.Join(filepath.Dir(parent), "x")); err == nil {
				t.Errorf("a file escaped the data dir")
			}
		})
	}

	t.Run("non-empty data dir", func(t *testing.T) {
		dst := t.TempDir()
		if err := os.WriteFile(filepath.Join(dst, "notes.txt"), []byte("mine"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := otad(t, nil, "", "restore", "--data-dir", dst, good)
		if r.code != exitError || !strings.Contains(r.stderr, "is not empty") {
			t.Errorf("restore into a non-empty dir: exit %d, %s", r.code, r.stderr)
		}
		if b, _ := os.ReadFile(filepath.Join(dst, "notes.txt")); string(b) != "mine" {
			t.Errorf("the existing file was touched")
		}
		if _, err := os.Stat(filepath.Join(dst, "otad.db")); err == nil {
			t.Errorf("otad.db was written into a non-empty dir")
		}
	})
}

func TestBackupErrors(t *testing.T) {
	t.Run("no database", func(t *testing.T) {
		r := otad(t, nil, "", "backup", "--data-dir", t.TempDir(), filepath.Join(t.TempDir(), "x.tar"))
		if r.code != exitError || !strings.Contains(r.stderr, "no otad database") {
			t.Errorf("exit %d, %s", r.code, r.stderr)
		}
	})
	t.Run("missing blob", func(t *testing.T) {
		src := t.TempDir()
		seedDataDir(t, src)
		st := openTestStore(t, src)
		refs, err := st.ReferencedBlobs(context.Background())
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		for sha := range refs {
			if err := os.Remove(filepath.Join(src, "blobs", "sha256", sha[:2], sha)); err != nil {
				t.Fatal(err)
			}
			break
		}
		file := filepath.Join(t.TempDir(), "x.tar")
		r := otad(t, nil, "", "backup", "--data-dir", src, file)
		if r.code != exitError || !strings.Contains(r.stderr, "is missing") {
			t.Errorf("exit %d, %s", r.code, r.stderr)
		}
		if _, err := os.Stat(file); err == nil {
			t.Errorf("a backup file was written")
		}
	})
	t.Run("damaged blob", func(t *testing.T) {
		src := t.TempDir()
		seedDataDir(t, src)
		st := openTestStore(t, src)
		refs, err := st.ReferencedBlobs(context.Background())
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		for sha := range refs {
			p := filepath.Join(src, "blobs", "sha256", sha[:2], sha)
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[0] ^= 1
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			break
		}
		file := filepath.Join(t.TempDir(), "x.tar")
		r := otad(t, nil, "", "backup", "--data-dir", src, file)
		if r.code != exitError || !strings.Contains(r.stderr, "damaged") {
			t.Errorf("exit %d, %s", r.code, r.stderr)
		}
		if _, err := os.Stat(file); err == nil {
			t.Errorf("a backup file was written")
		}
		if _, err := os.Stat(file + ".tmp"); err == nil {
			t.Errorf("the temp file was left behind")
		}
	})
	t.Run("running otad without credentials", func(t *testing.T) {
		dir := t.TempDir()
		s := startServe(t, dir, map[string]string{envAdminUser: "admin", envAdminPassword: testPassword})
		defer s.stop()
		r := otad(t, nil, "", "backup", "--data-dir", dir, filepath.Join(t.TempDir(), "x.tar"))
		if r.code != exitError || !strings.Contains(r.stderr, envAdminPassword) {
			t.Errorf("exit %d, %s", r.code, r.stderr)
		}
	})
}

// TestBackupFromRunningServer backs up a running otad over HTTP while
// uploads go on, restores the archive and checks it is one consistent
// moment: its history is a prefix of the final one, and every bundle it
// knows has its file.
func TestBackupFromRunningServer(t *testing.T) {
	dir := t.TempDir()
	creds := map[string]string{envAdminUser: "admin", envAdminPassword: testPassword}
	s := startServe(t, dir, creds)
	c, err := ota.NewClient(s.url)
	if err != nil {
		t.Fatal(err)
	}
	login, err := c.Login(t.Context(), "admin", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	c.Token = login.Token
	upload := func(v string) error {
		var zb bytes.Buffer
		zw := zip.NewWriter(&zb)
		f, err := zw.Create("index.html")
		if err != nil {
			return err
		}
		fmt.Fprintf(f, "<html>%s %s</html>", v, strings.Repeat("x", 64<<10))
		if err := zw.Close(); err != nil {
			return err
		}
		body := zb.Bytes()
		_, err = c.Upload(t.Context(), ota.UploadRequest{AppID: "com.example.app", Channel: "production", Version: v,
			File: bytes.NewReader(body), Size: int64(len(body))})
		return err
	}
	for i := range 5 {
		if err := upload(fmt.Sprintf("1.0.%d", i)); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := upload(fmt.Sprintf("2.0.%d", i)); err != nil {
				t.Errorf("upload during backup: %v", err)
				return
			}
		}
	}()
	env := map[string]string{envAdminUser: "admin", envAdminPassword: testPassword, "OTAD_ADDR": strings.TrimPrefix(s.url, "http://")}
	files := []string{filepath.Join(t.TempDir(), "a.tar.gz"), filepath.Join(t.TempDir(), "b.tar")}
	for _, file := range files {
		r := otad(t, env, "", "backup", "--data-dir", dir, file)
		if r.code != exitOK || !strings.Contains(r.stdout, "from the running otad") {
			t.Fatalf("backup exit %d: %s %s", r.code, r.stdout, r.stderr)
		}
	}
	close(stop)
	wg.Wait()
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exit %d", code)
	}
	final := dumpDir(t, dir)
	finalHistory := final["history"].([]ota.Event)

	for _, file := range files {
		dst := filepath.Join(t.TempDir(), "restored")
		if r := otad(t, nil, "", "restore", "--data-dir", dst, file); r.code != exitOK {
			t.Fatalf("restore exit %d: %s", r.code, r.stderr)
		}
		got := dumpDir(t, dst)
		h := got["history"].([]ota.Event)
		if len(h) < 5 {
			t.Errorf("restored history has %d events, want at least the 5 first uploads", len(h))
		}
		// Newest first: the restored history is the tail of the final one.
		tail := finalHistory[len(finalHistory)-len(h):]
		if !reflect.DeepEqual(h, tail) {
			t.Errorf("restored history is not a prefix of the final history")
		}
		if !reflect.DeepEqual(got["users"], final["users"]) {
			t.Errorf("users differ")
		}
		bundles := got["bundles com.example.app"].([]ota.Bundle)
		if len(bundles) != len(h) {
			t.Errorf("%d bundles but %d upload events: the database copy is not one moment", len(bundles), len(h))
		}
	}
}

// TestBackupOnlineRefusesCIToken: the backup route wants a user login.
func TestBackupOnlineRefusesBadLogin(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, dir, map[string]string{envAdminUser: "admin", envAdminPassword: testPassword})
	env := map[string]string{envAdminUser: "admin", envAdminPassword: "wrong password"}
	r := otad(t, env, "", "backup", "--data-dir", dir, "--server", s.url, filepath.Join(t.TempDir(), "x.tar"))
	if r.code != exitError || !strings.Contains(r.stderr, "log in") {
		t.Errorf("exit %d, %s", r.code, r.stderr)
	}
	resp, err := http.Get(s.url + "/api/v1/backup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("anonymous backup: status %d, want 401", resp.StatusCode)
	}
}

func TestClassifyEntry(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	good := map[string]entryKind{
		"manifest.json": entryManifest, "otad.db": entryDB, "jwt.key": entryKey,
		"blobs/sha256/ab/" + sha: entryBlob,
	}
	for name, want := range good {
		kind, _, err := classifyEntry(name)
		if err != nil || kind != want {
			t.Errorf("classifyEntry(%q) = %v, %v; want %v", name, kind, err, want)
		}
	}
	for _, bad := range []string{"", "/otad.db", "../otad.db", "..", "./otad.db", "a/../otad.db", "blobs//sha256",
		"blobs/sha256/cd/" + sha, "blobs/sha256/ab/" + strings.ToUpper(sha), "blobs/sha256/ab/" + sha + "/x",
		"blobs\\sha256", "otad.db/", "other.txt", "blobs/sha256/ab"} {
		if kind, _, err := classifyEntry(bad); err == nil {
			t.Errorf("classifyEntry(%q) = %v, want an error", bad, kind)
		}
	}
}

// FuzzClassifyEntry: an accepted archive path never leaves the data dir
// and is one the layout names.
func FuzzClassifyEntry(f *testing.F) {
	for _, s := range []string{"manifest.json", "otad.db", "jwt.key", "blobs/sha256/ab/" + strings.Repeat("ab", 32), "../x", "/etc/passwd", "blobs/../otad.db", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		kind, sha, err := classifyEntry(name)
		if err != nil {
			return
		}
		if filepath.IsAbs(name) || strings.Contains(name, "..") || !filepath.IsLocal(name) {
			t.Fatalf("accepted %q", name)
		}
		if kind == entryBlob && name != server.BackupBlobName(sha) {
			t.Fatalf("blob %q named %q", sha, name)
		}
	})
}

func TestRunningURL(t *testing.T) {
	tests := []struct {
		cfg     config
		want    string
		wantErr bool
	}{
		{config{Addr: ":8080"}, "http://127.0.0.1:8080", false},
		{config{Addr: "10.0.0.5:9000", PublicURL: "https://ota.example.com"}, "http://10.0.0.5:9000", false},
		{config{Addr: ":8443", TLSCert: "c.pem", TLSKey: "k.pem", PublicURL: "https://ota.example.com"}, "https://ota.example.com", false},
		{config{Addr: ":8443", TLSCert: "c.pem", TLSKey: "k.pem"}, "", true},
	}
	for _, tt := range tests {
		got, err := runningURL(&tt.cfg)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("runningURL(%+v) = %q, %v; want %q (error %v)", tt.cfg, got, err, tt.want, tt.wantErr)
		}
	}
}
