package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/delta/deltatest"
	"github.com/otaship/ota/pkg/ota"
)

// webDir writes a small but varied web build into dir: index.html naming
// a hashed main chunk, compressible JS and CSS above and below the Brotli
// threshold, incompressible images, a nested folder, a name with a space
// and non-ASCII letters, an empty file, and a file whose own name ends in
// .br (which devices only take Brotli-compressed). rev changes the main
// chunk and index.html, as a one-line fix does.
func webDir(t testing.TB, dir string, rev int) {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	text := func(n int) []byte {
		words := []string{"function", "return", "const", "let", "if", "else", "this", "new", "=>", "{", "}", ";", "value", "state"}
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[rng.IntN(len(words))])
			b.WriteByte(' ')
		}
		return b.Bytes()[:n]
	}
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	files := map[string][]byte{
		"assets/vendor-5d41402a.js":   text(60 << 10),
		"assets/small-1a2b.js":        text(2 << 10),
		"assets/app.css":              text(20 << 10),
		"assets/img/logo.png":         noise(30 << 10),
		"assets/img/icon.webp":        noise(3 << 10),
		"assets/fonts/ünï côde.woff2": noise(12 << 10),
		"assets/deep/a/b/c.json":      text(9 << 10),
		"assets/empty.txt":            {},
		"assets/data.br":              noise(5 << 10),
		"manifest.webmanifest":        []byte(`{"name":"demo"}`),
	}
	main := fmt.Sprintf("assets/main-%04d.js", rev)
	files[main] = append(text(40<<10), fmt.Sprintf("/* rev %d */ CapacitorUpdater.notifyAppReady()", rev)...)
	files["index.html"] = fmt.Appendf(nil, `<!doctype html><html><head><script src="%s"></script></head><body>rev %d</body></html>`, main, rev)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// deltaDeploy deploys dir as otactl deploy web --delta does: the zip
// (encrypted with sess when set), the files the server lacks, then the
// release with its manifest.
func deltaDeploy(t testing.TB, c *ota.Client, app, channel, version, dir string, sess *bundle.Session) (ota.UploadResult, delta.UploadResult) {
	t.Helper()
	ctx := context.Background()
	files, err := delta.Scan(ctx, dir)
	if err != nil {
		t.Fatalf("scan %s: %v", dir, err)
	}
	zipPath := filepath.Join(t.TempDir(), "bundle.zip")
	z, err := bundle.ZipFile(ctx, dir, zipPath, bundle.ZipOptions{})
	if err != nil {
		t.Fatal(err)
	}
	req := ota.UploadRequest{AppID: app, Channel: channel, Version: version, Checksum: z.SHA256, Size: z.Size}
	if sess != nil {
		enc, err := sess.EncryptFile(zipPath, zipPath+".enc")
		if err != nil {
			t.Fatal(err)
		}
		zipPath = zipPath + ".enc"
		sum, size, err := bundle.HashFile(zipPath)
		if err != nil {
			t.Fatal(err)
		}
		req.Checksum, req.Size = sum, size
		req.Encryption = &ota.BundleEncryption{SessionKey: enc.SessionKey, EncryptedChecksum: enc.Checksum, KeyID: enc.KeyID}
	}
	up, err := delta.UploadFiles(ctx, delta.UploadOptions{Client: c, AppID: app, Files: files, Session: sess})
	if err != nil {
		t.Fatalf("upload files: %v", err)
	}
	req.Manifest = up.Manifest
	f, err := os.Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req.File = f
	res, err := c.Upload(ctx, req)
	if err != nil {
		t.Fatalf("upload %s: %v", version, err)
	}
	return res, up
}

func newTestClient(t testing.TB, base, token string) *ota.Client {
	t.Helper()
	c, err := ota.NewClient(base, ota.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// check asks base for an update as a device of platform with plugin
// version plugin running running.
func check(t testing.TB, base, platform, plugin, running, keyID string) ota.UpdateResponse {
	t.Helper()
	req := ota.UpdateRequest{
		Platform: platform, DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11", AppID: testApp, VersionBuild: "1.0.0",
		VersionCode: "1", VersionOS: "17.5", VersionName: running, PluginVersion: plugin, KeyID: keyID,
	}
	var out ota.UpdateResponse
	if code := postJSON(t.(*testing.T), base+"/updates", req, &out); code != http.StatusOK {
		t.Fatalf("/updates: status %d", code)
	}
	return out
}

// device makes a simulated device whose built-in bundle is a copy of
// builtin ("" for none).
func deltaDevice(t *testing.T, platform, builtin string, pub bool) *deltatest.Device {
	t.Helper()
	d := &deltatest.Device{Platform: platform, Builtin: t.TempDir(), Cache: t.TempDir()}
	if builtin != "" {
		if err := os.CopyFS(d.Builtin, os.DirFS(builtin)); err != nil {
			t.Fatal(err)
		}
	}
	if pub {
		d.PublicKey = &encKey().PublicKey
	}
	return d
}

// TestDeltaEndToEnd deploys two releases with --delta over real HTTP and
// installs them the way iOS and Android plugins do: the second release
// uploads only what changed, and every device ends with exactly the web
// dir, downloading only what it lacks.
func TestDeltaEndToEnd(t *testing.T) {
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	root := t.TempDir()
	v1, v2 := filepath.Join(root, "v1"), filepath.Join(root, "v2")
	webDir(t, v1, 1)
	webDir(t, v2, 2)

	res1, up1 := deltaDeploy(t, c, testApp, "production", "1.0.1", v1, nil)
	files1, _ := delta.Scan(context.Background(), v1)
	if res1.Bundle.Files != len(files1) || up1.Reused != 0 {
		t.Fatalf("first release: %d files in the bundle, %d reused; want %d, 0", res1.Bundle.Files, up1.Reused, len(files1))
	}
	res2, up2 := deltaDeploy(t, c, testApp, "production", "1.0.2", v2, nil)
	if up2.Uploaded != 2 || res2.Bundle.Files != len(files1) {
		t.Errorf("second release uploaded %d file forms (%d bytes), %d reused; want only the changed chunk and index.html",
			up2.Uploaded, up2.UploadedBytes, up2.Reused)
	}

	ctx := context.Background()
	for _, tt := range []struct {
		name, platform, builtin string
		wantFetched             int
	}{
		// A device running the built-in copy of 1.0.1 fetches the two
		// changed files only, on both platforms; iOS also data.br, a file
		// really named so, which it can only get as data.br.br and never
		// finds built in under that name.
		{"iOS on the built-in 1.0.1", "ios", v1, 3},
		{"Android on the built-in 1.0.1", "android", v1, 2},
		// A device with nothing usable fetches everything.
		{"iOS with nothing", "ios", "", len(files1)},
		{"Android with nothing", "android", "", len(files1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := deltaDevice(t, tt.platform, tt.builtin, false)
			ans := check(t, base, tt.platform, "8.51.14", "1.0.1", "")
			if ans.Version != "1.0.2" || len(ans.Manifest) != len(files1) || !strings.HasPrefix(ans.URL, base+"/api/ota/bundle/") {
				t.Fatalf("answer: version %s, %d files, url %s", ans.Version, len(ans.Manifest), ans.URL)
			}
			dest := filepath.Join(t.TempDir(), "bundle")
			r, err := d.Install(ctx, ans, dest)
			if err != nil {
				t.Fatalf("install: %v (stats %v)", err, r.Stats)
			}
			if diff, err := deltatest.SameTree(v2, dest); err != nil || diff != "" {
				t.Fatalf("installed bundle differs from the web dir: %s %v", diff, err)
			}
			if r.Fetched != tt.wantFetched {
				t.Errorf("fetched %d files (%d bytes), %d built in, %d cached; want %d fetched",
					r.Fetched, r.Downloaded, r.FromBuiltin, r.FromCache, tt.wantFetched)
			}
			// The cache now holds what was fetched: installing again
			// fetches nothing.
			r2, err := d.Install(ctx, ans, filepath.Join(t.TempDir(), "again"))
			if err != nil || r2.Fetched != 0 {
				t.Errorf("second install fetched %d files (%v); want 0", r2.Fetched, err)
			}
		})
	}

	// An iOS device is sent the files 1.0.1 had raw, so it reuses them
	// from its built-in bundle; Android gets them Brotli-compressed.
	ios := check(t, base, "ios", "8.51.14", "1.0.1", "")
	android := check(t, base, "android", "8.51.14", "1.0.1", "")
	names := func(r ota.UpdateResponse) map[string]bool {
		m := map[string]bool{}
		for _, e := range r.Manifest {
			m[e.FileName] = true
		}
		return m
	}
	in, an := names(ios), names(android)
	for name, want := range map[string][2]bool{ // iOS, Android
		"assets/vendor-5d41402a.js":    {true, false},
		"assets/vendor-5d41402a.js.br": {false, true},
		"assets/main-0002.js.br":       {true, true},
		"assets/img/logo.png":          {true, true},
		"assets/data.br.br":            {true, true},
		"index.html":                   {true, true},
	} {
		if in[name] != want[0] || an[name] != want[1] {
			t.Errorf("%s listed for iOS %v, Android %v; want %v", name, in[name], an[name], want)
		}
	}

	// Plugins that cannot install manifests get the zip, which is valid.
	old := check(t, base, "android", "7.0.30", "1.0.1", "")
	if old.Manifest != nil || old.Version != "1.0.2" {
		t.Fatalf("7.0.30 got %+v; want the zip only", old)
	}
	resp, err := http.Get(old.URL)
	if err != nil {
		t.Fatal(err)
	}
	zipBytes, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if sum := sha256Hex(zipBytes); sum != old.Checksum {
		t.Errorf("zip sha256 %s; answer says %s", sum, old.Checksum)
	}
}

// TestDeltaEncryptedEndToEnd: an encrypted delta release decrypts and
// verifies on a device with the public key, over real HTTP; otad never
// sees the key.
func TestDeltaEncryptedEndToEnd(t *testing.T) {
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	root := t.TempDir()
	v1, v2 := filepath.Join(root, "v1"), filepath.Join(root, "v2")
	webDir(t, v1, 1)
	webDir(t, v2, 2)
	for i, dir := range []string{v1, v2} {
		sess, err := bundle.NewSession(encKey())
		if err != nil {
			t.Fatal(err)
		}
		deltaDeploy(t, c, testApp, "production", fmt.Sprintf("1.0.%d", i+1), dir, sess)
	}
	keyID := bundle.KeyID(&encKey().PublicKey)
	for _, platform := range []string{"ios", "android"} {
		t.Run(platform, func(t *testing.T) {
			ans := check(t, base, platform, "8.51.14", "1.0.1", keyID)
			if ans.SessionKey == nil || *ans.SessionKey == "" || len(ans.Manifest) == 0 || len(ans.Checksum) != 512 {
				t.Fatalf("answer %+v; want a session key, an encrypted checksum and a manifest", ans)
			}
			if len(ans.Manifest[0].FileHash) != 512 {
				t.Errorf("file_hash %q; want the RSA-encrypted SHA-256", ans.Manifest[0].FileHash)
			}
			d := deltaDevice(t, platform, v1, true)
			dest := filepath.Join(t.TempDir(), "bundle")
			r, err := d.Install(context.Background(), ans, dest)
			if err != nil {
				t.Fatalf("install: %v (stats %v)", err, r.Stats)
			}
			if diff, err := deltatest.SameTree(v2, dest); err != nil || diff != "" {
				t.Fatalf("installed bundle differs from the web dir: %s %v", diff, err)
			}
			want := 2 // the files that changed; iOS also data.br (see TestDeltaEndToEnd)
			if platform == "ios" {
				want = 3
			}
			if r.Fetched != want {
				t.Errorf("fetched %d files; want %d", r.Fetched, want)
			}
			// Without the public key the same answer cannot be installed.
			plain := deltaDevice(t, platform, "", false)
			if _, err := plain.Install(context.Background(), ans, filepath.Join(t.TempDir(), "x")); err == nil {
				t.Error("a device without the key installed an encrypted release")
			}
		})
	}
}

func bundleSHA(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func errAs(err error, target any) bool { return errors.As(err, target) }

// TestDeltaUploadRefused: whatever does not check out is refused with 422
// and nothing is stored or activated.
func TestDeltaUploadRefused(t *testing.T) {
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, c, testApp, "production", "1.0.1", dir, nil)

	content := []byte(strings.Repeat("delta file ", 2000))
	sum := bundleSHA(content)
	put := func(sum, encoding string, body []byte) *ota.APIError {
		t.Helper()
		_, err := c.PutFile(ctx, testApp, sum, encoding, bytes.NewReader(body), int64(len(body)))
		if err == nil {
			return nil
		}
		var ae *ota.APIError
		if !errAs(err, &ae) {
			t.Fatalf("PUT: %v", err)
		}
		return ae
	}
	wantRefused := func(name string, ae *ota.APIError, status int, code string) {
		t.Helper()
		if ae == nil || ae.Status != status || ae.Code != code {
			t.Errorf("%s: %+v; want %d %s", name, ae, status, code)
		}
	}
	br, _, err := delta.Compress("x.js", content)
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := delta.Compress("x.js", bytes.Repeat([]byte("other "), 3000))
	wantRefused("raw bytes of another file", put(sum, "raw", append(content, '!')), 422, ota.ErrCodeChecksum)
	wantRefused("Brotli of another file", put(sum, "br", other), 422, ota.ErrCodeChecksum)
	wantRefused("damaged Brotli", put(sum, "br", br[:len(br)/2]), 422, ota.ErrCodeInvalidFile)
	wantRefused("Brotli with trailing bytes", put(sum, "br", append(bytes.Clone(br), "tail"...)), 422, ota.ErrCodeInvalidFile)
	wantRefused("encrypted form of 15 bytes", put(bundleSHA([]byte("123456789012345")), "encrypted", []byte("123456789012345")), 422, ota.ErrCodeInvalidFile)
	wantRefused("unknown encoding", put(sum, "gzip", content), 400, ota.ErrCodeBadRequest)
	wantRefused("not a SHA-256", put("abc", "raw", content), 400, ota.ErrCodeBadRequest)
	if missing, err := c.MissingFiles(ctx, testApp, []string{sum}, nil); err != nil || len(missing) != 1 {
		t.Errorf("after refused uploads the file is listed missing: %v, %v; want it missing", missing, err)
	}
	for _, k := range []string{sum, bundleSHA(br), bundleSHA(other)} {
		if _, err := env.blobs.Stat(ctx, k); err == nil {
			t.Errorf("blob %s… of a refused upload was kept", k[:12])
		}
	}
	// The right bytes are stored, in both forms, once.
	if ae := put(sum, "br", br); ae != nil {
		t.Fatalf("valid Brotli form refused: %v", ae)
	}
	st, err := c.PutFile(ctx, testApp, sum, "raw", bytes.NewReader(content), int64(len(content)))
	if err != nil || st.Created || st.Br != bundleSHA(br) || st.Size != int64(len(content)) {
		t.Errorf("storing it again raw = %+v, %v; want not created, with its Brotli form", st, err)
	}

	// Releases whose manifest does not check out activate nothing.
	files, err := delta.Scan(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(change func([]ota.ManifestFile) []ota.ManifestFile) []ota.ManifestFile {
		m := make([]ota.ManifestFile, len(files))
		for i, f := range files {
			m[i] = ota.ManifestFile{Path: f.Path, SHA256: f.SHA256, Size: f.Size}
		}
		return change(m)
	}
	zipData := func(dir string) []byte {
		var b bytes.Buffer
		if _, err := bundle.Zip(ctx, dir, &b, bundle.ZipOptions{}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	z := zipData(dir)
	set := func(i int, path string) func([]ota.ManifestFile) []ota.ManifestFile {
		return func(m []ota.ManifestFile) []ota.ManifestFile { m[i].Path = path; return m }
	}
	indexAt := -1
	for i, f := range files {
		if f.Path == "index.html" {
			indexAt = i
		}
	}
	last := len(files) - 1
	for _, tt := range []struct {
		name   string
		change func([]ota.ManifestFile) []ota.ManifestFile
		code   string
	}{
		{"a path leaving the bundle", set(0, "../escape.js"), ota.ErrCodeInvalidManifest},
		{"a backslash", set(0, `assets\win.js`), ota.ErrCodeInvalidManifest},
		{"an absolute path", set(0, "/etc/passwd"), ota.ErrCodeInvalidManifest},
		{"a NUL", set(0, "a\x00b"), ota.ErrCodeInvalidManifest},
		{"an empty path", set(0, ""), ota.ErrCodeInvalidManifest},
		{"a duplicate target", set(0, files[last].Path), ota.ErrCodeInvalidManifest},
		{"a target differing only in case", set(0, strings.ToUpper(files[last].Path)), ota.ErrCodeInvalidManifest},
		{"no index.html", func(m []ota.ManifestFile) []ota.ManifestFile { return append(m[:indexAt], m[indexAt+1:]...) }, ota.ErrCodeInvalidManifest},
		{"a wrong size", func(m []ota.ManifestFile) []ota.ManifestFile { m[0].Size++; return m }, ota.ErrCodeInvalidManifest},
		{"a file not stored", func(m []ota.ManifestFile) []ota.ManifestFile {
			return append(m, ota.ManifestFile{Path: "assets/new.js", SHA256: bundleSHA([]byte("never uploaded")), Size: 14})
		}, ota.ErrCodeMissingFiles},
		{"a file the zip lacks", func(m []ota.ManifestFile) []ota.ManifestFile {
			return append(m, ota.ManifestFile{Path: "assets/extra.js", SHA256: sum, Size: int64(len(content))})
		}, ota.ErrCodeInvalidManifest},
		{"a file of another content than the zip's", func(m []ota.ManifestFile) []ota.ManifestFile {
			for i := range m {
				if m[i].Path == "assets/app.css" {
					m[i].SHA256, m[i].Size = sum, int64(len(content))
				}
			}
			return m
		}, ota.ErrCodeInvalidManifest},
		{"encrypted fields in a plain release", func(m []ota.ManifestFile) []ota.ManifestFile { m[0].FileHash = "ab"; return m }, ota.ErrCodeInvalidManifest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Upload(ctx, ota.UploadRequest{
				AppID: testApp, Channel: "production", Version: "1.0.9", Manifest: tt.change(manifest(func(m []ota.ManifestFile) []ota.ManifestFile { return m })),
				File: bytes.NewReader(z), Size: int64(len(z)),
			})
			var ae *ota.APIError
			if !errAs(err, &ae) || ae.Status != 422 || ae.Code != tt.code {
				t.Fatalf("upload: %v; want 422 %s", err, tt.code)
			}
			ch, err := env.store.GetChannel(ctx, testApp, "production")
			if err != nil || ch.Active != "1.0.1" {
				t.Errorf("production serves %q after a refused release (%v); want 1.0.1", ch.Active, err)
			}
			if _, err := env.store.GetBundle(ctx, testApp, ota.KindWeb, "1.0.9"); err == nil {
				t.Error("the refused bundle was recorded")
			}
		})
	}
	// Not JSON, unknown fields, and a manifest for an APK are refused too.
	for _, tt := range []struct{ name, part, kind string }{
		{"not JSON", "{", ""},
		{"unknown field", `[{"path":"index.html","sha256":"` + sum + `","size":1,"sha":"x"}]`, ""},
		{"null", "null", ""},
		{"an APK", `[{"path":"index.html","sha256":"` + sum + `","size":1}]`, ota.KindAPK},
	} {
		fields := []string{"version", "1.0.8", "channel", "production"}
		if tt.kind != "" {
			fields = append(fields, "kind", tt.kind)
		}
		parts := []formPart{}
		for i := 0; i < len(fields); i += 2 {
			parts = append(parts, formPart{Name: fields[i], Data: []byte(fields[i+1])})
		}
		parts = append(parts, formPart{Name: "manifest", FileName: "manifest.json", Data: []byte(tt.part)},
			formPart{Name: "file", FileName: "bundle.zip", Data: z})
		body, ctype := multipartOf(t, parts...)
		rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/bundles", body, "Content-Type", ctype)
		if rec.Code != 400 {
			t.Errorf("%s: status %d %s; want 400", tt.name, rec.Code, rec.Body)
		}
	}
}

// TestDeltaServing covers what devices see of a delta release besides
// the install: the files' headers and ranges, the gzipped answer, and
// manifest_size.
func TestDeltaServing(t *testing.T) {
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, c, testApp, "production", "1.0.1", dir, nil)
	ans := check(t, base, "android", "8.51.14", "1.0.0", "")
	var big ota.ManifestEntry
	for _, e := range ans.Manifest {
		if e.FileName == "assets/img/logo.png" {
			big = e
		}
	}
	if big.DownloadURL == "" {
		t.Fatal("logo.png not in the manifest")
	}

	t.Run("file headers and range", func(t *testing.T) {
		resp, err := http.Get(big.DownloadURL)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		h := resp.Header
		key := big.DownloadURL[strings.LastIndex(big.DownloadURL, "/")+1:]
		if resp.StatusCode != 200 || h.Get("Content-Length") != fmt.Sprint(len(body)) || h.Get("ETag") != `"`+key+`"` ||
			h.Get("Cache-Control") != "public, max-age=31536000, immutable" || h.Get("Content-Type") != "application/octet-stream" ||
			h.Get("Content-Encoding") != "" || bundleSHA(body) != key {
			t.Errorf("GET: %d %v", resp.StatusCode, h)
		}
		req, _ := http.NewRequest(http.MethodGet, big.DownloadURL, nil)
		req.Header.Set("Range", "bytes=100-")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		part, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 206 || !bytes.Equal(part, body[100:]) || resp.Header.Get("Content-Range") != fmt.Sprintf("bytes 100-%d/%d", len(body)-1, len(body)) {
			t.Errorf("Range: %d %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(part))
		}
		req, _ = http.NewRequest(http.MethodGet, big.DownloadURL, nil)
		req.Header.Set("If-None-Match", `"`+key+`"`)
		if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 304 {
			t.Errorf("If-None-Match: %v %v", resp.StatusCode, err)
		}
		resp.Body.Close()
		for _, bad := range []string{strings.Repeat("0", 64), "../../ota.db", strings.ToUpper(key)} {
			resp, err := http.Get(base + "/api/ota/file/" + bad)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 404 {
				t.Errorf("GET file %q: %d; want 404", bad, resp.StatusCode)
			}
		}
	})

	t.Run("gzipped answer", func(t *testing.T) {
		body, _ := json.Marshal(ota.UpdateRequest{Platform: "android", DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11", AppID: testApp,
			VersionBuild: "1.0.0", VersionName: "1.0.0", PluginVersion: "8.51.14"})
		plain := env.do(http.MethodPost, "/updates", body, "Content-Type", "application/json")
		zipped := env.do(http.MethodPost, "/updates", body, "Content-Type", "application/json", "Accept-Encoding", "gzip, deflate, br")
		refused := env.do(http.MethodPost, "/updates", body, "Content-Type", "application/json", "Accept-Encoding", "gzip;q=0, *")
		if plain.Header().Get("Content-Encoding") != "" || plain.Header().Get("Vary") != "Accept-Encoding" {
			t.Errorf("plain answer headers %v", plain.Header())
		}
		if refused.Header().Get("Content-Encoding") != "" {
			t.Errorf("gzip;q=0 got gzip")
		}
		if zipped.Header().Get("Content-Encoding") != "gzip" {
			t.Fatalf("answer to a gzip-accepting device: %v", zipped.Header())
		}
		zr, err := gzip.NewReader(zipped.Body)
		if err != nil {
			t.Fatal(err)
		}
		unzipped, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(unzipped, plain.Body.Bytes()) {
			t.Errorf("gzipped answer decodes to %d bytes (%v); the plain one has %d", len(unzipped), err, plain.Body.Len())
		}
		if zipped.Body.Len() >= plain.Body.Len()/2 {
			t.Logf("gzip: %d → %d bytes", plain.Body.Len(), zipped.Body.Len())
		}
	})

	t.Run("manifest_size", func(t *testing.T) {
		req := map[string]any{
			"platform": "android", "device_id": "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11", "app_id": testApp,
			"version_build": "1.0.0", "version_name": "1.0.0", "plugin_version": "8.51.14", "version": "1.0.1",
			"manifest": append(slices.Clone(ans.Manifest), ota.ManifestEntry{FileName: "nope.js", FileHash: strings.Repeat("0", 64), DownloadURL: base + "/x"}),
		}
		var out ota.ManifestSizeResponse
		if code := postJSON(t, base+"/updates/manifest_size", req, &out); code != 200 {
			t.Fatalf("status %d", code)
		}
		if out.KnownFiles != len(ans.Manifest) || out.UnknownFiles != 1 || len(out.Files) != len(ans.Manifest)+1 {
			t.Fatalf("known %d unknown %d files %d", out.KnownFiles, out.UnknownFiles, len(out.Files))
		}
		var total int64
		for _, f := range out.Files[:len(ans.Manifest)] {
			resp, err := http.Head(f.DownloadURL)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if f.Size == nil || *f.Size != resp.ContentLength {
				t.Errorf("%s: size %v; the download is %d bytes", f.FileName, f.Size, resp.ContentLength)
			} else {
				total += *f.Size
			}
		}
		if out.TotalSize != total || out.Files[len(out.Files)-1].Error != "size_unknown" {
			t.Errorf("total %d, want %d; last %+v", out.TotalSize, total, out.Files[len(out.Files)-1])
		}
		// A release the snapshot does not hold (no channel serves it any
		// more) is sized from the store; an unknown version not at all.
		for _, v := range []int{2, 3} {
			webDir(t, dir, v)
			deltaDeploy(t, c, testApp, "production", fmt.Sprintf("1.0.%d", v), dir, nil)
		}
		if av := env.srv.Snapshot().App(testApp); av.Manifests["1.0.1"] != nil {
			t.Fatal("the snapshot still holds 1.0.1's manifest")
		}
		if code := postJSON(t, base+"/updates/manifest_size", req, &out); code != 200 || out.KnownFiles != len(ans.Manifest) {
			t.Errorf("size of a release no channel serves: %d known (status %d)", out.KnownFiles, code)
		}
		req["version"] = "9.9.9"
		if code := postJSON(t, base+"/updates/manifest_size", req, &out); code != 200 || out.KnownFiles != 0 {
			t.Errorf("size of an unknown version: %d known", out.KnownFiles)
		}
	})
}

// TestDeltaFailureStats: per-file failures ("<version>:<file>") count
// against the release in health and halts, and the health summary names
// the failing files.
func TestDeltaFailureStats(t *testing.T) {
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, c, testApp, "production", "1.0.1", dir, nil)
	webDir(t, dir, 2)
	deltaDeploy(t, c, testApp, "production", "1.0.2", dir, nil)
	minDevices, rate := 4, 0.5
	env.patch(testApp, "production", ota.ChannelPolicyPatch{MinDevices: &minDevices, HaltOnFailureRate: &rate})

	event := func(device, action, version string) ota.StatsEvent {
		return ota.StatsEvent{
			DeviceInfo: ota.DeviceInfo{Platform: "ios", DeviceID: device, AppID: testApp, VersionBuild: "1.0.0",
				VersionName: version, PluginVersion: "8.51.14"},
			Action: action,
		}
	}
	events := []ota.StatsEvent{
		event("d1", "set", "1.0.2"),
		// iOS names the path; Android only the base name.
		event("d2", "download_manifest_checksum_fail", "1.0.2:assets/main-0002.js"),
		event("d3", "download_manifest_file_fail", "1.0.2:assets/main-0002.js.br"),
		event("d3", "download_manifest_brotli_fail", "1.0.2:assets/main-0002.js"),
		event("d4", "manifest_path_fail", "1.0.2:main-0002.js"),
	}
	env.offered(testApp, "production", "1.0.2", "d1", "d2", "d3", "d4") // their checks, before the reports
	if code := postJSON(t, base+"/stats", events, nil); code != 200 {
		t.Fatalf("stats: %d", code)
	}
	// 3 of 4 devices failed: the channel halts back to 1.0.1.
	ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/production", nil))
	if ch.Active != "1.0.1" {
		t.Errorf("production serves %s after per-file failures of 3 of 4 devices; want it halted back to 1.0.1", ch.Active)
	}
	sum := decode[ota.StatsSummary](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health", nil))
	var v *ota.VersionStats
	for i := range sum.Versions {
		if sum.Versions[i].Version == "1.0.2" {
			v = &sum.Versions[i]
		}
	}
	if v == nil || v.Failed != 3 || v.Installed != 1 {
		t.Fatalf("health of 1.0.2 = %+v; want 1 installed, 3 failed", v)
	}
	want := []ota.FileFailure{
		{File: "assets/main-0002.js", Devices: 2, Failures: map[string]int{"download_manifest_checksum_fail": 1, "download_manifest_brotli_fail": 1}},
		{File: "assets/main-0002.js.br", Devices: 1, Failures: map[string]int{"download_manifest_file_fail": 1}},
		{File: "main-0002.js", Devices: 1, Failures: map[string]int{"manifest_path_fail": 1}},
	}
	if got, _ := json.Marshal(v.Files); string(got) != mustMarshal(t, want) {
		t.Errorf("failing files = %s; want %s", got, mustMarshal(t, want))
	}
}

// TestUpdatesHandlerAllocsDelta: a delta release's answer, a few hundred
// KB, costs an update check no more allocations than a zip answer.
func TestUpdatesHandlerAllocsDelta(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, c, testApp, "production", "1.0.1", dir, nil)
	body := []byte(mustMarshal(t, confRequest(nil)))
	h := env.srv.Handler()
	for _, enc := range []string{"", "gzip"} {
		allocs := testing.AllocsPerRun(200, func() {
			req := httptest.NewRequest(http.MethodPost, "/updates", bytes.NewReader(body))
			if enc != "" {
				req.Header.Set("Accept-Encoding", enc)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			zipped := rec.Header().Get("Content-Encoding") == "gzip"
			if rec.Code != http.StatusOK || zipped != (enc != "") || (!zipped && !bytes.Contains(rec.Body.Bytes(), []byte(`"manifest"`))) {
				t.Fatalf("status %d, %d bytes, gzip %v", rec.Code, rec.Body.Len(), zipped)
			}
		})
		t.Logf("%.0f allocations per update check answered with a manifest (Accept-Encoding %q)", allocs, enc)
		if allocs > 40 {
			t.Errorf("%.0f allocations per delta update check, want at most 40 as for a zip answer", allocs)
		}
	}
}
