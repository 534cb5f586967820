package dashboard

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
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

// Values every test environment starts with.
const (
	testApp      = "com.example.app"
	testUser     = "admin"
	testPassword = "correct horse battery"
	tokenTTL     = time.Hour
)

var testEpoch = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is a settable clock shared by otad, its token issuer and the
// dashboard.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects the logs of otad and the dashboard.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a whole otad (real bbolt file, real blob directory, the real
// server) with the dashboard mounted, served over loopback HTTP.
type env struct {
	t      testing.TB
	clock  *clock
	store  *bolt.Store
	srv    *server.Server
	issuer *auth.Issuer
	http   *httptest.Server
	url    string
	logs   *logBuffer
	token  string // an API token of testUser, for setting things up
	// dashboard is the mounted dashboard.
	dashboard *Dashboard
}

type envOption func(*server.Config, *Config)

// withPublicURL makes the server's public URL u (an https one makes the
// dashboard's cookies Secure).
func withPublicURL(u string) envOption {
	return func(s *server.Config, d *Config) { s.PublicURL, d.PublicURL = u, u }
}

func withTrustProxy() envOption {
	return func(s *server.Config, d *Config) { s.TrustProxy, d.TrustProxy = true, true }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: testEpoch}, logs: &logBuffer{}}
	dir := t.TempDir()
	st, err := bolt.Open(filepath.Join(dir, "otad.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.store = st
	bl, err := blob.NewFS(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	e.issuer, err = auth.NewIssuer(key, auth.Options{TTL: tokenTTL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	hash, err := auth.HashPassword(testPassword, bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateUser(context.Background(), store.User{Name: testUser, PasswordHash: hash, CreatedAt: testEpoch}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	scfg := server.Config{PublicURL: "http://otad.test", TokenTTL: tokenTTL, MaxUploadBytes: 4 << 20,
		Version: ota.VersionInfo{Version: "test"}, Now: e.clock.Now, BcryptCost: bcrypt.MinCost, DeviceRateLimit: 0}
	dcfg := Config{Bundles: st, Secret: []byte("dashboard-test-secret-0123456789abcdef"), PublicURL: scfg.PublicURL,
		Version: "test", Now: e.clock.Now, Log: log}
	for _, o := range opts {
		o(&scfg, &dcfg)
	}
	e.srv, err = server.New(context.Background(), scfg, st, bl, e.issuer, log)
	if err != nil {
		t.Fatal(err)
	}
	dcfg.API = e.srv.InternalHandler()
	d, err := New(dcfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv.Mount(Prefix, d)
	e.dashboard = d
	e.http = httptest.NewServer(e.srv.Handler())
	e.url = e.http.URL
	t.Cleanup(func() {
		e.http.Close()
		e.srv.Close()
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	e.token = e.apiToken()
	return e
}

// apiToken is a fresh API token of testUser.
func (e *env) apiToken() string {
	u, err := e.store.GetUser(context.Background(), testUser)
	if err != nil {
		e.t.Fatal(err)
	}
	tok, _, err := e.issuer.Issue(testUser, u.ID, u.TokenGeneration)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// api is an API client of testUser over HTTP.
func (e *env) api() *ota.Client {
	c, err := ota.NewClient(e.url, ota.WithToken(e.apiToken()))
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func zipOf(index string) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, _ := w.CreateHeader(&zip.FileHeader{Name: "index.html", Method: zip.Deflate, Modified: testEpoch})
	_, _ = io.WriteString(f, index)
	_ = w.Close()
	return buf.Bytes()
}

// deploy uploads a web bundle through the API, as otactl deploy does;
// fields are extra form fields as name/value pairs (notes, rollout, …).
func (e *env) deploy(app, channel, version string, fields ...string) {
	e.t.Helper()
	data := zipOf("<html>" + version + "</html>")
	sum := sha256.Sum256(data)
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	all := append([]string{"version", version, "channel", channel, "checksum", hex.EncodeToString(sum[:])}, fields...)
	for i := 0; i+1 < len(all); i += 2 {
		_ = mw.WriteField(all[i], all[i+1])
	}
	fw, _ := mw.CreateFormFile("file", "bundle.zip")
	_, _ = fw.Write(data)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, e.url+"/api/v1/apps/"+url.PathEscape(app)+"/bundles", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+e.apiToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		e.t.Fatalf("deploy %s %s: %d %s", channel, version, resp.StatusCode, b)
	}
}

// device is a simulated phone speaking the plugin's protocol.
func device(id, running string) ota.DeviceInfo {
	f, tr := false, true
	return ota.DeviceInfo{Platform: "android", DeviceID: id, AppID: testApp, VersionBuild: "1.0.0", VersionCode: "1",
		VersionName: running, PluginVersion: "7.0.0", IsEmulator: &f, IsProd: &tr}
}

// poll asks /updates what the device gets.
func (e *env) poll(d ota.DeviceInfo) ota.UpdateResponse {
	e.t.Helper()
	c, _ := ota.NewClient(e.url)
	r, err := c.CheckUpdate(context.Background(), d)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// stats sends device events to /stats, as the plugin does.
func (e *env) stats(events ...ota.StatsEvent) {
	e.t.Helper()
	// A report counts only for a version the device was offered: stand
	// in for the update checks that came before.
	for _, ev := range events {
		// A delta file's failure reports "<version>:<file>".
		v, _, _ := strings.Cut(ev.VersionName, ":")
		e.srv.Offers().Record(ev.AppID, "", v, ev.DeviceID, e.clock.Now())
	}
	b, _ := json.Marshal(events)
	resp, err := http.Post(e.url+"/stats", "application/json", bytes.NewReader(b))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("stats: %d", resp.StatusCode)
	}
}

func statsEvent(id, version, action string) ota.StatsEvent {
	return ota.StatsEvent{DeviceInfo: device(id, version), Action: action}
}

// browser is an HTTP client with its own cookies that does not follow
// redirects, so tests see every answer.
type browser struct {
	t   testing.TB
	e   *env
	c   *http.Client
	jar *cookiejar.Jar
	// header is added to every request (e.g. a proxy's X-Forwarded-Proto).
	header http.Header
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, jar: jar, header: http.Header{}, c: &http.Client{Jar: jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// answer is a response with its body read.
type answer struct {
	*http.Response
	Body string
}

func (b *browser) do(method, path string, form url.Values, header ...string) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.url+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return answer{Response: resp, Body: string(data)}
}

func (b *browser) get(path string, header ...string) answer {
	return b.do(http.MethodGet, path, nil, header...)
}

func (b *browser) post(path string, form url.Values, header ...string) answer {
	return b.do(http.MethodPost, path, form, header...)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF field of a page's form.
func csrf(t testing.TB, page string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf field in the page:\n%s", page)
	}
	return m[1]
}

// login logs in through the form and returns the page it lands on.
func (b *browser) login(user, password string) answer {
	b.t.Helper()
	form := b.get("/ui/login")
	return b.post("/ui/login", url.Values{"csrf": {csrf(b.t, form.Body)}, "username": {user}, "password": {password}, "next": {"/ui/"}})
}

// mustLogin logs in as testUser and returns the CSRF token of the session.
func (b *browser) mustLogin() string {
	b.t.Helper()
	if a := b.login(testUser, testPassword); a.StatusCode != http.StatusSeeOther || a.Header.Get("Location") != "/ui/" {
		b.t.Fatalf("login: %d %s\n%s", a.StatusCode, a.Header.Get("Location"), a.Body)
	}
	return csrf(b.t, b.get("/ui/").Body)
}

// cookie is the value of the browser's cookie name for the dashboard.
func (b *browser) cookie(name string) string {
	u, _ := url.Parse(b.e.url + "/ui/")
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

func (b *browser) setCookie(name, value string) {
	u, _ := url.Parse(b.e.url + "/ui/")
	b.jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/ui"}})
}

func wantStatus(t testing.TB, a answer, want int) {
	t.Helper()
	if a.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d\n%s", a.Request.Method, a.Request.URL.Path, a.StatusCode, want, a.Body)
	}
}

// wantLogin checks a is the redirect to the login form.
func wantLogin(t testing.TB, a answer) {
	t.Helper()
	if a.StatusCode != http.StatusSeeOther || !strings.HasPrefix(a.Header.Get("Location"), "/ui/login?next=") {
		t.Fatalf("%s %s: %d Location %q, want a redirect to the login form\n%s", a.Request.Method, a.Request.URL.Path,
			a.StatusCode, a.Header.Get("Location"), a.Body)
	}
}

// withRefresh makes the health panel reload itself every d.
func withRefresh(d time.Duration) envOption {
	return func(_ *server.Config, c *Config) { c.Refresh = d }
}

func hashPassword(pw string) ([]byte, error) { return auth.HashPassword(pw, bcrypt.MinCost) }
