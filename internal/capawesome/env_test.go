package capawesome_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capawesome/device"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

const (
	testApp  = "com.example.app"
	deviceID = "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11"
)

// env is otad's real router over a bbolt file and a blob directory in
// t.TempDir(), served over HTTPS on loopback (the plugin speaks nothing
// else), with an admin API client logged in as a user.
type env struct {
	t      testing.TB
	base   string // https://127.0.0.1:PORT, otad's public URL
	https  *http.Client
	admin  *ota.Client
	store  *bolt.Store
	srv    *server.Server
	logs   *bytes.Buffer
	logsMu *sync.Mutex
	token  string // the admin's API token
	blobs  string // the blob directory
}

func newEnv(t testing.TB, opts ...func(*server.Config)) *env {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + ln.Addr().String()
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "ota.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	bl, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.NewIssuer([]byte("0123456789abcdef0123456789abcdef"), auth.Options{Issuer: "otad-test", Audience: "otactl", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, base: base, store: st, logs: &bytes.Buffer{}, logsMu: &sync.Mutex{}, blobs: filepath.Join(dir, "blobs")}
	log := slog.New(slog.NewTextHandler(lockedWriter{e.logsMu, e.logs}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg := server.Config{
		PublicURL: base, TokenTTL: time.Hour, MaxUploadBytes: 8 << 20,
		Version: ota.VersionInfo{Version: "test"},
	}
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := server.New(t.Context(), cfg, st, bl, iss, log)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.Listener.Close()
	hs.Listener = ln
	hs.StartTLS()
	t.Cleanup(hs.Close)
	e.https = hs.Client()

	hash, err := auth.HashPassword("correct horse", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	const adminID = "0123456789abcdef0123456789abcdef" // login tokens name their user's id
	if err := st.CreateUser(context.Background(), store.User{ID: adminID, Name: "admin", PasswordHash: hash, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Issue("admin", adminID, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok
	e.admin, err = ota.NewClient(base, ota.WithToken(tok), ota.WithHTTPClient(e.https))
	if err != nil {
		t.Fatal(err)
	}
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// zipOf builds a zip of files with sorted names and fixed times, so the
// same files give the same bytes.
func zipOf(files map[string]string) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			panic(err)
		}
		if _, err := io.WriteString(w, files[n]); err != nil {
			panic(err)
		}
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// webFiles is a small web app whose index.html names the version.
func webFiles(version string) map[string]string {
	return map[string]string{
		"index.html":     "<html><script src=app.js></script>" + version + "</html>",
		"app.js":         "LiveUpdate.ready(); // " + version,
		"assets/logo.sv": "<svg/>",
	}
}

// deployOpts are what otactl deploy web would send besides the zip.
type deployOpts struct {
	sign    *rsa.PrivateKey
	rollout int
	content []byte // the zip; default zipOf(webFiles(version))
	min     string
}

// deploy uploads a web bundle through the admin API, as otactl deploy web
// does, and returns the stored bundle.
func (e *env) deploy(channel, version string, o deployOpts) ota.Bundle {
	e.t.Helper()
	content := o.content
	if content == nil {
		content = zipOf(webFiles(version))
	}
	req := ota.UploadRequest{
		AppID: testApp, Channel: channel, Version: version, Kind: ota.KindWeb, Checksum: sha(content),
		Rollout: o.rollout, MinNative: o.min, File: bytes.NewReader(content), Size: int64(len(content)),
	}
	if o.sign != nil {
		sig, err := bundle.Sign(bytes.NewReader(content), o.sign)
		if err != nil {
			e.t.Fatal(err)
		}
		req.Signature = sig
	}
	res, err := e.admin.Upload(e.t.Context(), req)
	if err != nil {
		e.t.Fatalf("deploy %s to %s: %v", version, channel, err)
	}
	return res.Bundle
}

// device is a Capawesome device of this env, on the built-in bundle of
// native version 1.0.0.
func (e *env) device(p device.Platform, id string) *device.Device {
	osVersion := "34"
	if p == device.IOS {
		osVersion = "17.5"
	}
	return &device.Device{
		Base: e.base, Client: e.https, Platform: p, AppID: testApp, DeviceID: id,
		AppVersionName: "1.0.0", AppVersionCode: "1", OSVersion: osVersion, PluginVersion: "8.4.1",
		Dir: e.t.TempDir(),
	}
}

// capgo sends the other plugin's update check (POST /updates) for a device
// running bundle running on native 1.0.0.
func (e *env) capgo(id, running, channel string) ota.UpdateResponse {
	e.t.Helper()
	f, tr := false, true
	res, err := e.admin.CheckUpdate(e.t.Context(), ota.UpdateRequest{
		Platform: "android", DeviceID: id, AppID: testApp, VersionBuild: "1.0.0", VersionCode: "1",
		VersionOS: "14", VersionName: running, PluginVersion: "8.51.14", IsEmulator: &f, IsProd: &tr,
		DefaultChannel: channel,
	})
	if err != nil {
		e.t.Fatalf("POST /updates: %v", err)
	}
	return res
}

// get sends a GET the way the plugin does and returns status and body.
func (e *env) get(path string, header ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodGet, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := e.https.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, body
}

// postJSON posts body as JSON, as the other plugin does, and returns the
// status.
func postJSON(t *testing.T, e *env, path string, body any) int {
	t.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.https.Post(e.base+path, "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// jsonObject decodes body as a JSON object.
func jsonObject(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", body, err)
	}
	return m
}

var (
	keyOnce sync.Once
	key     *rsa.PrivateKey
)

// signKey is the team's signing key for the package's tests.
func signKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	keyOnce.Do(func() {
		k, err := bundle.GenerateSigningKey()
		if err != nil {
			t.Fatal(err)
		}
		key = k
	})
	return key
}
