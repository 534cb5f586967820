package server

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/pkg/ota"
)

// Values every test environment starts with.
const (
	testApp      = "com.example.app"
	testUser     = "admin"
	testPassword = "correct horse"
	testPublic   = "https://ota.example.test"
)

// testKey signs the test environment's tokens. It is fixed so that a test
// can forge or re-sign tokens with the same key.
var testKey = []byte("0123456789abcdef0123456789abcdef")

// testEpoch is where the test clock starts.
var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// testClock is a settable clock shared by the server and the token issuer.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// syncBuffer collects the server log; handlers log from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a complete server over a real bbolt file and a real blob
// directory in t.TempDir(), with a user "admin" and a token for it.
type testEnv struct {
	t      testing.TB
	cfg    Config
	dir    string // holds ota.db and blobs/
	store  *bolt.Store
	blobs  blob.Store
	tokens *auth.Issuer
	srv    *Server
	clock  *testClock
	logs   *syncBuffer
	// token is a valid bearer token of testUser.
	token string
	// openBlobs, when set, opens the blob store instead of a directory in
	// dir (s3_test.go: a bucket).
	openBlobs func() (blob.Store, error)
	// storeOpts opens the store (see newTestEnvWithStore).
	storeOpts bolt.Options
}

// newTestEnv builds a test environment. opts may change the Config before
// the server is built (for example the default app or the upload limit).
func newTestEnv(t testing.TB, opts ...func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvBlobs(t, nil, opts...)
}

// newTestEnvWithStore is newTestEnv over a store opened with so.
func newTestEnvWithStore(t testing.TB, so bolt.Options, opts ...func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvFull(t, so, nil, opts...)
}

// newTestEnvBlobs is newTestEnv with bundles in the blob store openBlobs
// opens (nil: a directory in t.TempDir()).
func newTestEnvBlobs(t testing.TB, openBlobs func() (blob.Store, error), opts ...func(*Config)) *testEnv {
	t.Helper()
	return newTestEnvFull(t, bolt.Options{}, openBlobs, opts...)
}

// newTestEnvFull is newTestEnv with the store's options and the blob
// store of its own.
func newTestEnvFull(t testing.TB, so bolt.Options, openBlobs func() (blob.Store, error), opts ...func(*Config)) *testEnv {
	t.Helper()
	clock := &testClock{now: testEpoch}
	cfg := Config{
		PublicURL:      testPublic,
		DefaultApp:     testApp,
		TokenTTL:       time.Hour,
		MaxUploadBytes: 4 << 20,
		MaxJSONBytes:   64 << 10,
		Version:        ota.VersionInfo{Version: "test"},
		Now:            clock.Now,
		RampTick:       -1, // tests tick ramps themselves (tickRamps)
	}
	for _, o := range opts {
		o(&cfg)
	}
	env := &testEnv{t: t, cfg: cfg, dir: t.TempDir(), clock: clock, logs: &syncBuffer{}, openBlobs: openBlobs, storeOpts: so}
	env.open()
	t.Cleanup(func() {
		if env.store != nil {
			if err := env.store.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
		}
	})

	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		t.Fatalf("hash password: %v", err)
	}
	ctx := context.Background()
	now := clock.Now()
	if err := env.store.CreateUser(ctx, store.User{Name: testUser, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("create user: %v", err)
	}
	env.token = env.issue(testUser)
	return env
}

// open opens (or reopens) the store, the blob directory, the issuer and the
// server from env.dir.
func (e *testEnv) open() {
	e.t.Helper()
	st, err := bolt.Open(filepath.Join(e.dir, "ota.db"), e.storeOpts)
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	e.store = st
	var bl blob.Store
	if e.openBlobs != nil {
		bl, err = e.openBlobs()
	} else {
		bl, err = blob.NewFS(filepath.Join(e.dir, "blobs"))
	}
	if err != nil {
		e.t.Fatalf("open blob store: %v", err)
	}
	e.blobs = bl
	iss, err := auth.NewIssuer(testKey, auth.Options{Issuer: "otad-test", Audience: "otactl", TTL: e.cfg.TokenTTL, Now: e.clock.Now})
	if err != nil {
		e.t.Fatalf("new issuer: %v", err)
	}
	e.tokens = iss
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(context.Background(), e.cfg, st, bl, iss, log)
	if err != nil {
		e.t.Fatalf("new server: %v", err)
	}
	e.srv = srv
}

// reopen closes the store and builds everything again from the same
// directory, as a restarted otad would.
func (e *testEnv) reopen() {
	e.t.Helper()
	if err := e.store.Close(); err != nil {
		e.t.Fatalf("close store: %v", err)
	}
	e.store = nil
	e.open()
}

// issue returns a token for user at the user's current generation.
func (e *testEnv) issue(user string) string {
	e.t.Helper()
	u, err := e.store.GetUser(context.Background(), user)
	if err != nil {
		e.t.Fatalf("get user %s: %v", user, err)
	}
	tok, _, err := e.tokens.Issue(user, u.ID, u.TokenGeneration)
	if err != nil {
		e.t.Fatalf("issue token: %v", err)
	}
	return tok
}

// do sends a request through the full router. body may be nil, a string,
// []byte, an io.Reader, or any value sent as JSON. headers are name/value
// pairs; the bearer token is added unless they set Authorization (pass
// "Authorization", "" to send none).
func (e *testEnv) do(method, path string, body any, headers ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var r io.Reader
	isJSON := false
	switch b := body.(type) {
	case nil:
	case string:
		r = bytes.NewBufferString(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			e.t.Fatalf("encode request body: %v", err)
		}
		r = bytes.NewReader(data)
		isJSON = true
	}
	req := httptest.NewRequest(method, path, r)
	if isJSON {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(headers)%2 != 0 {
		e.t.Fatalf("headers must be name/value pairs, got %q", headers)
	}
	setAuth := false
	for i := 0; i < len(headers); i += 2 {
		name, value := headers[i], headers[i+1]
		if http.CanonicalHeaderKey(name) == "Authorization" {
			setAuth = true
			if value == "" {
				req.Header.Del(name)
				continue
			}
		}
		req.Header.Set(name, value)
	}
	if !setAuth {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	return e.serve(req)
}

// serve runs a prepared request through the router.
func (e *testEnv) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, req)
	return rec
}

// formPart is one part of a multipart body; a FileName makes it a file part.
type formPart struct {
	Name     string
	FileName string
	Data     []byte
}

// multipartOf encodes parts, in order, the way curl -F does.
func multipartOf(t testing.TB, parts ...formPart) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		var pw io.Writer
		var err error
		if p.FileName != "" {
			pw, err = w.CreateFormFile(p.Name, p.FileName)
		} else {
			pw, err = w.CreateFormField(p.Name)
		}
		if err != nil {
			t.Fatalf("multipart part %s: %v", p.Name, err)
		}
		if _, err := pw.Write(p.Data); err != nil {
			t.Fatalf("multipart part %s: %v", p.Name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("multipart close: %v", err)
	}
	return buf.Bytes(), w.FormDataContentType()
}

// upload posts a multipart form to path as the old deploy script does: the
// file first (when not nil), then fields given as name/value pairs.
func (e *testEnv) upload(path string, file []byte, fields ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	if len(fields)%2 != 0 {
		e.t.Fatalf("fields must be name/value pairs, got %q", fields)
	}
	var parts []formPart
	if file != nil {
		parts = append(parts, formPart{Name: "file", FileName: "bundle.zip", Data: file})
	}
	for i := 0; i < len(fields); i += 2 {
		parts = append(parts, formPart{Name: fields[i], Data: []byte(fields[i+1])})
	}
	body, ctype := multipartOf(e.t, parts...)
	return e.do(http.MethodPost, path, body, "Content-Type", ctype)
}

// publish stores content (a zip with an index.html naming the version when
// nil) as a web bundle and makes it active on app/channel, bypassing the
// HTTP upload, and refreshes the device snapshot. It returns the bundle with
// its URL.
func (e *testEnv) publish(app, channel, version string, content []byte) ota.Bundle {
	e.t.Helper()
	if app == "" {
		app = e.cfg.DefaultApp
	}
	if content == nil {
		content = zipOf(map[string]string{"index.html": "<html>" + version + "</html>"})
	}
	ctx := context.Background()
	info, err := e.blobs.Put(ctx, bytes.NewReader(content), 0)
	if err != nil {
		e.t.Fatalf("put blob: %v", err)
	}
	res, err := e.store.Publish(ctx, store.PublishInput{
		Bundle:  ota.Bundle{AppID: app, Version: version, Kind: ota.KindWeb, SHA256: info.SHA256, Size: info.Size, UploadedBy: testUser},
		Channel: channel,
		Actor:   testUser,
		Time:    e.clock.Now(),
	})
	if err != nil {
		e.t.Fatalf("publish %s %s %s: %v", app, channel, version, err)
	}
	if err := e.srv.refreshApp(ctx, app); err != nil {
		e.t.Fatalf("refresh %s: %v", app, err)
	}
	b := res.Bundle
	b.URL = e.srv.bundleURL(&b)
	return b
}

// patch changes a channel's policy directly in the store and refreshes the
// snapshot.
func (e *testEnv) patch(app, channel string, p ota.ChannelPolicyPatch) {
	e.t.Helper()
	ctx := context.Background()
	if _, err := e.store.UpdateChannel(ctx, app, channel, p, testUser, e.clock.Now()); err != nil {
		e.t.Fatalf("patch %s/%s: %v", app, channel, err)
	}
	if err := e.srv.refreshApp(ctx, app); err != nil {
		e.t.Fatalf("refresh %s: %v", app, err)
	}
}

// override pins device to channel directly in the store and refreshes the
// snapshot.
func (e *testEnv) override(app, device, channel string) {
	e.t.Helper()
	ctx := context.Background()
	o := store.DeviceOverride{AppID: app, DeviceID: device, Channel: channel}
	if err := e.store.SetOverride(ctx, o, testUser, e.clock.Now()); err != nil {
		e.t.Fatalf("override %s/%s: %v", app, device, err)
	}
	if err := e.srv.refreshApp(ctx, app); err != nil {
		e.t.Fatalf("refresh %s: %v", app, err)
	}
}

// offered records that channel of app offered version to devices now, as
// an answered update check would: their reports about it then count.
func (e *testEnv) offered(app, channel, version string, devices ...string) {
	for _, d := range devices {
		e.srv.offers.Record(app, channel, version, d, e.clock.Now())
	}
}

// zipOf builds a zip of files. Names are sorted and times fixed, so the same
// files always give the same bytes (and the same SHA-256).
func zipOf(files map[string]string) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, n := range names {
		f, err := w.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Deflate, Modified: testEpoch})
		if err != nil {
			panic(err) // only a programming error in a test can get here
		}
		if _, err := io.WriteString(f, files[n]); err != nil {
			panic(err)
		}
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// decode reads a JSON response body into a value of type T.
func decode[T any](t testing.TB, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %T from %q: %v", v, rec.Body.String(), err)
	}
	return v
}

// wantStatus fails the test unless rec has status want and, when code is
// not empty, that error code in its envelope.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, want int, code string) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, want, rec.Body.String())
	}
	if code == "" {
		return
	}
	var er ota.ErrorResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil {
		t.Fatalf("decode error envelope %q: %v", rec.Body.String(), err)
	}
	if er.Code != code {
		t.Fatalf("error code = %q, want %q; message %q", er.Code, code, er.Message)
	}
}
