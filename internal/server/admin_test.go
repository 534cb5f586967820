package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/blob"
	"github.com/otaship/ota/internal/capawesome"
	"github.com/otaship/ota/internal/ratelimit"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func login(env *testEnv, path, user, password, remote string, headers ...string) *httptest.ResponseRecorder {
	env.t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)))
	req.Header.Set("Content-Type", "application/json")
	if remote != "" {
		req.RemoteAddr = remote
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return env.serve(req)
}

func TestLogin(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name     string
		path     string
		body     string
		wantCode int
		wantErr  string
	}{
		{"ok legacy path", "/api/auth/login", `{"username":"admin","password":"correct horse"}`, 200, ""},
		{"ok v1 path", "/api/v1/auth/login", `{"username":"admin","password":"correct horse"}`, 200, ""},
		{"wrong password", "/api/auth/login", `{"username":"admin","password":"wrong"}`, 401, ota.ErrCodeUnauthorized},
		{"unknown user", "/api/auth/login", `{"username":"nobody","password":"correct horse"}`, 401, ota.ErrCodeUnauthorized},
		{"bad json", "/api/auth/login", `{"username":`, 400, ota.ErrCodeInvalidJSON},
		{"empty body", "/api/auth/login", ``, 400, ota.ErrCodeInvalidJSON},
		{"unknown field", "/api/auth/login", `{"username":"admin","password":"correct horse","admin":true}`, 400, ota.ErrCodeInvalidJSON},
		{"missing password", "/api/auth/login", `{"username":"admin"}`, 400, ota.ErrCodeBadRequest},
		{"too large", "/api/auth/login", `{"username":"` + strings.Repeat("a", 8<<10) + `"}`, 413, ota.ErrCodeTooLarge},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			req.Header.Set("Content-Type", "application/json")
			req.RemoteAddr = fmt.Sprintf("198.51.100.%d:4000", i+1) // keep under the per-address limit
			rec := env.serve(req)
			wantStatus(t, rec, tt.wantCode, tt.wantErr)
			if tt.wantCode != 200 {
				return
			}
			lr := decode[ota.LoginResponse](t, rec)
			if lr.Token == "" {
				t.Fatal("login answered no token")
			}
			if want := testEpoch.Add(time.Hour); !lr.ExpiresAt.Equal(want) {
				t.Errorf("expires_at = %v, want %v", lr.ExpiresAt, want)
			}
			me := env.do(http.MethodGet, "/api/v1/me", nil, "Authorization", "Bearer "+lr.Token)
			wantStatus(t, me, 200, "")
			if got := decode[map[string]any](t, me)["username"]; got != testUser {
				t.Errorf("me username = %v, want %s", got, testUser)
			}
		})
	}

	// The two kinds of bad credentials must be indistinguishable.
	wrong := decode[ota.ErrorResponse](t, login(env, "/api/auth/login", "admin", "nope", "203.0.113.9:1"))
	unknown := decode[ota.ErrorResponse](t, login(env, "/api/auth/login", "ghost", "nope", "203.0.113.9:1"))
	if wrong != unknown {
		t.Errorf("wrong password answers %+v but unknown user %+v", wrong, unknown)
	}
	if strings.Contains(env.logs.String(), "correct horse") {
		t.Error("the server log contains a password")
	}
}

// addUsers creates users user0..user<n-1> with cheap hashes, so tests of
// many failed logins do not pay for the default-cost hash that unknown
// user names are checked against.
func addUsers(t *testing.T, env *testEnv, n int) {
	t.Helper()
	h, err := auth.HashPassword("irrelevant", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := env.store.CreateUser(context.Background(), store.User{Name: fmt.Sprintf("user%d", i), PasswordHash: h}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoginRateLimit(t *testing.T) {
	t.Run("per user and address", func(t *testing.T) {
		env := newTestEnv(t)
		for range ratelimit.LoginPairBurst {
			rec := login(env, "/api/auth/login", "admin", "wrong", "192.0.2.1:1")
			wantStatus(t, rec, 401, ota.ErrCodeUnauthorized)
		}
		rec := login(env, "/api/auth/login", "admin", "correct horse", "192.0.2.1:2")
		wantStatus(t, rec, 429, ota.ErrCodeTooManyRequests)
		if ra := rec.Header().Get("Retry-After"); ra == "" || ra == "0" {
			t.Errorf("Retry-After = %q, want a positive number of seconds", ra)
		}
		// The user is not locked out from elsewhere.
		wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", "198.51.100.1:1"), 200, "")
	})
	t.Run("one other address cannot keep a user locked", func(t *testing.T) {
		env := newTestEnv(t)
		// Six wrong attempts, then one every 12 s for ten minutes, from
		// one address: the user's own logins keep working.
		for i := range 6 + 50 {
			if i >= 6 {
				env.clock.Advance(12 * time.Second)
			}
			login(env, "/api/auth/login", "admin", "wrong", "203.0.113.66:1")
			if i%10 == 5 {
				wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", fmt.Sprintf("198.51.100.%d:1", i)), 200, "")
			}
		}
	})
	t.Run("per user across addresses", func(t *testing.T) {
		env := newTestEnv(t)
		// The admin logged in from home once.
		wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", "198.51.100.7:1"), 200, "")
		for i := range ratelimit.LoginUserBurst {
			rec := login(env, "/api/auth/login", "admin", "wrong", fmt.Sprintf("10.%d.%d.1:1", i/200, i%200))
			wantStatus(t, rec, 401, ota.ErrCodeUnauthorized)
		}
		// Distributed guessing hits the ceiling: a new address is refused...
		wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", "192.0.2.200:1"), 429, ota.ErrCodeTooManyRequests)
		// ...but not the address the admin logged in from before.
		wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", "198.51.100.7:1"), 200, "")
	})
	t.Run("per address across users", func(t *testing.T) {
		env := newTestEnv(t)
		addUsers(t, env, ratelimit.LoginAddressBurst)
		for i := range ratelimit.LoginAddressBurst {
			rec := login(env, "/api/auth/login", fmt.Sprintf("user%d", i), "wrong", "192.0.2.7:1")
			wantStatus(t, rec, 401, ota.ErrCodeUnauthorized)
		}
		rec := login(env, "/api/auth/login", "admin", "correct horse", "192.0.2.7:2")
		wantStatus(t, rec, 429, ota.ErrCodeTooManyRequests)
	})
	t.Run("an IPv6 /64 is one address", func(t *testing.T) {
		env := newTestEnv(t)
		addUsers(t, env, ratelimit.LoginAddressBurst)
		for i := range ratelimit.LoginAddressBurst {
			rec := login(env, "/api/auth/login", fmt.Sprintf("user%d", i), "wrong", fmt.Sprintf("[2001:db8:1:2::%x]:1", i+1))
			wantStatus(t, rec, 401, ota.ErrCodeUnauthorized)
		}
		wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", "[2001:db8:1:2:ffff::1]:1"), 429, ota.ErrCodeTooManyRequests)
		wantStatus(t, login(env, "/api/auth/login", "admin", "correct horse", "[2001:db8:1:3::1]:1"), 200, "")
	})
	t.Run("forwarded-for is ignored without a trusted proxy", func(t *testing.T) {
		env := newTestEnv(t)
		addUsers(t, env, ratelimit.LoginAddressBurst)
		for i := range ratelimit.LoginAddressBurst {
			login(env, "/api/auth/login", fmt.Sprintf("user%d", i), "wrong", "192.0.2.8:1",
				"X-Forwarded-For", fmt.Sprintf("10.0.0.%d", i))
		}
		rec := login(env, "/api/auth/login", "admin", "correct horse", "192.0.2.8:1", "X-Forwarded-For", "10.9.9.9")
		wantStatus(t, rec, 429, ota.ErrCodeTooManyRequests)
	})
	t.Run("forwarded-for counts behind a trusted proxy", func(t *testing.T) {
		env := newTestEnv(t, func(c *Config) { c.TrustProxy = true })
		addUsers(t, env, ratelimit.LoginAddressBurst)
		for i := range ratelimit.LoginAddressBurst {
			login(env, "/api/auth/login", fmt.Sprintf("user%d", i), "wrong", "192.0.2.9:1",
				"X-Forwarded-For", "10.0.0.1")
		}
		rec := login(env, "/api/auth/login", "admin", "correct horse", "192.0.2.9:1", "X-Forwarded-For", "10.0.0.2")
		wantStatus(t, rec, 200, "")
	})
}

// A user name that does not exist may be a password typed into the name
// field: the log names it by a keyed hash only.
func TestLoginLogsNoUnknownName(t *testing.T) {
	env := newTestEnv(t)
	const typed = "hunter2-typed-as-name"
	for range ratelimit.LoginPairBurst + 1 {
		login(env, "/api/auth/login", typed, "x", "192.0.2.50:1")
	}
	logs := env.logs.String()
	if strings.Contains(logs, typed) {
		t.Errorf("the log names the unknown user:\n%s", grepLines(logs, "login"))
	}
	if !strings.Contains(logs, "user_hash=") || !strings.Contains(logs, "login rate limited") {
		t.Errorf("no user_hash in the failed and rate-limited login lines:\n%s", grepLines(logs, "login"))
	}
}

// protectedRoute is one admin route with parameters filled in.
type protectedRoute struct{ method, path string }

// publicRoutes are the routes reachable without a token.
var publicRoutes = map[string]bool{
	"GET /": true, "GET /healthz": true, "GET /readyz": true, "GET /version": true,
	"POST /updates": true, "POST /check": true, "POST /stats": true,
	"POST /channel_self": true, "PUT /channel_self": true, "GET /channel_self": true, "DELETE /channel_self": true,
	"GET /api/ota/bundle/:key": true, "HEAD /api/ota/bundle/:key": true,
	"GET /api/ota/file/:key": true, "HEAD /api/ota/file/:key": true,
	"POST /updates/manifest_size": true, "POST /check/manifest_size": true,
	"POST /api/auth/login": true, "POST /api/v1/auth/login": true,
	// @capawesome/capacitor-live-update's device endpoints (internal/capawesome).
	"GET " + capawesome.RouteLatest: true, "GET " + capawesome.RouteChannels: true, "GET " + capawesome.RouteFiles: true,
}

// protectedRoutes lists every registered route that is not public, so a
// route added later is covered by the authentication tests on its own.
func protectedRoutes(t *testing.T, env *testEnv) []protectedRoute {
	t.Helper()
	fill := strings.NewReplacer(":app", testApp, ":channel", "stable", ":version", "1.0.0", ":device", "dev-1", ":sha256", strings.Repeat("a", 64))
	var out []protectedRoute
	for _, r := range env.srv.e.Routes() {
		// Echo lists its not-found handlers as routes with a pseudo-method.
		if strings.HasPrefix(r.Method, "echo_") || publicRoutes[r.Method+" "+r.Path] {
			continue
		}
		out = append(out, protectedRoute{r.Method, fill.Replace(r.Path)})
	}
	if len(out) < 19 {
		t.Fatalf("found %d protected routes, want at least 19: %v", len(out), out)
	}
	return out
}

func TestAuthRequired(t *testing.T) {
	otherKey, err := auth.NewIssuer([]byte("another key, not the server's own!"), auth.Options{Issuer: "otad-test", Audience: "otactl", TTL: time.Hour, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	forged, _, err := otherKey.Issue(testUser, "any-id", 1)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		setup func(env *testEnv) (header string)
	}{
		{"no token", func(*testEnv) string { return "" }},
		{"malformed", func(*testEnv) string { return "Bearer not.a.jwt" }},
		{"not bearer", func(env *testEnv) string { return "Basic YWRtaW46Y29ycmVjdCBob3JzZQ==" }},
		{"bearer without token", func(*testEnv) string { return "Bearer " }},
		{"other key", func(*testEnv) string { return "Bearer " + forged }},
		{"expired", func(env *testEnv) string {
			env.clock.Advance(env.cfg.TokenTTL + 5*time.Minute)
			return "Bearer " + env.token
		}},
		{"removed user", func(env *testEnv) string {
			if err := env.store.DeleteUser(context.Background(), testUser); err != nil {
				t.Fatal(err)
			}
			return "Bearer " + env.token
		}},
		{"changed password", func(env *testEnv) string {
			h, err := auth.HashPassword("new password", bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.store.SetPassword(context.Background(), testUser, h, env.clock.Now()); err != nil {
				t.Fatal(err)
			}
			return "Bearer " + env.token
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			env.publish(testApp, "stable", "1.0.0", nil)
			hdr := tt.setup(env)
			for _, r := range protectedRoutes(t, env) {
				rec := env.do(r.method, r.path, nil, "Authorization", hdr)
				if rec.Code != http.StatusUnauthorized {
					t.Errorf("%s %s: status %d, want 401; body %s", r.method, r.path, rec.Code, rec.Body)
					continue
				}
				er := decode[ota.ErrorResponse](t, rec)
				if er.Code != ota.ErrCodeUnauthorized || !strings.Contains(er.Message, "run: otactl login") {
					t.Errorf("%s %s: envelope %+v, want unauthorized with a login hint", r.method, r.path, er)
				}
				if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("%s %s: WWW-Authenticate = %q", r.method, r.path, rec.Header().Get("WWW-Authenticate"))
				}
				if rec.Header().Get("Cache-Control") != "no-store" {
					t.Errorf("%s %s: Cache-Control = %q, want no-store", r.method, r.path, rec.Header().Get("Cache-Control"))
				}
			}
			if strings.Contains(env.logs.String(), env.token) {
				t.Error("the server log contains a token")
			}
		})
	}
	t.Run("valid token passes", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(http.MethodGet, "/api/v1/me", nil)
		wantStatus(t, rec, 200, "")
		for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
			if got := rec.Header().Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	})
}

func TestUpload(t *testing.T) {
	good := zipOf(map[string]string{"index.html": "<html>1</html>", "assets/app.js": "console.log(1)"})
	other := zipOf(map[string]string{"index.html": "<html>2</html>"})
	apk := zipOf(map[string]string{"AndroidManifest.xml": "<manifest/>", "classes.dex": "dex"})

	const legacy = "/api/ota/admin/ota/upload"
	const legacyAPK = "/api/ota/admin/apk/upload"
	const v1 = "/api/v1/apps/" + testApp + "/bundles"

	tests := []struct {
		name     string
		setup    func(env *testEnv)
		path     string
		file     []byte
		fields   []string
		wantCode int
		wantErr  string
		// kept reports whether the file's bytes must be in the blob store
		// afterwards.
		kept bool
	}{
		{name: "legacy web ok", path: legacy, file: good, fields: []string{"version", "1.0.0", "channel", "stable", "checksum", sha(good)}, wantCode: 201, kept: true},
		{name: "legacy web default channel", path: legacy, file: good, fields: []string{"version", "1.0.0"}, wantCode: 201, kept: true},
		{name: "uppercase checksum", path: legacy, file: good, fields: []string{"version", "1.0.0", "checksum", strings.ToUpper(sha(good))}, wantCode: 201, kept: true},
		{name: "idempotent retry", path: legacy, file: good, fields: []string{"version", "1.0.0"}, wantCode: 200, kept: true,
			setup: func(env *testEnv) { env.publish(testApp, "stable", "1.0.0", good) }},
		{name: "version conflict", path: legacy, file: other, fields: []string{"version", "1.0.0"}, wantCode: 409, wantErr: ota.ErrCodeConflict,
			setup: func(env *testEnv) { env.publish(testApp, "stable", "1.0.0", good) }},
		{name: "checksum mismatch", path: legacy, file: good, fields: []string{"version", "1.0.0", "checksum", sha(other)}, wantCode: 422, wantErr: ota.ErrCodeChecksum},
		{name: "checksum crc32", path: legacy, file: good, fields: []string{"version", "1.0.0", "checksum", "deadbeef"}, wantCode: 422, wantErr: ota.ErrCodeChecksum},
		{name: "checksum not hex", path: legacy, file: good, fields: []string{"version", "1.0.0", "checksum", "xyz"}, wantCode: 400, wantErr: ota.ErrCodeBadRequest},
		{name: "not a zip", path: legacy, file: []byte("hello, not a zip"), fields: []string{"version", "1.0.0"}, wantCode: 422, wantErr: ota.ErrCodeInvalidBundle},
		{name: "empty file", path: legacy, file: []byte{}, fields: []string{"version", "1.0.0"}, wantCode: 422, wantErr: ota.ErrCodeInvalidBundle},
		{name: "zip slip", path: legacy, file: zipOf(map[string]string{"index.html": "x", "../../evil.js": "x"}), fields: []string{"version", "1.0.0"}, wantCode: 422, wantErr: ota.ErrCodeInvalidBundle},
		{name: "absolute entry", path: legacy, file: zipOf(map[string]string{"index.html": "x", "/etc/passwd": "x"}), fields: []string{"version", "1.0.0"}, wantCode: 422, wantErr: ota.ErrCodeInvalidBundle},
		{name: "no index.html", path: legacy, file: zipOf(map[string]string{"main.js": "x"}), fields: []string{"version", "1.0.0"}, wantCode: 422, wantErr: ota.ErrCodeInvalidBundle},
		{name: "missing file", path: legacy, fields: []string{"version", "1.0.0"}, wantCode: 400, wantErr: ota.ErrCodeMissingFile},
		{name: "missing version", path: legacy, file: good, wantCode: 400, wantErr: ota.ErrCodeInvalidVersion},
		{name: "version with slash", path: legacy, file: good, fields: []string{"version", "1.0/../../x"}, wantCode: 400, wantErr: ota.ErrCodeInvalidVersion},
		{name: "version builtin", path: legacy, file: good, fields: []string{"version", "builtin"}, wantCode: 400, wantErr: ota.ErrCodeInvalidVersion},
		{name: "web version not semver-like", path: legacy, file: good, fields: []string{"version", "latest"}, wantCode: 400, wantErr: ota.ErrCodeInvalidVersion},
		{name: "version too long", path: legacy, file: good, fields: []string{"version", "1." + strings.Repeat("9", 200)}, wantCode: 400, wantErr: ota.ErrCodeInvalidVersion},
		{name: "bad channel", path: legacy, file: good, fields: []string{"version", "1.0.0", "channel", "../stable"}, wantCode: 400, wantErr: ota.ErrCodeInvalidName},
		{name: "uppercase channel", path: legacy, file: good, fields: []string{"version", "1.0.0", "channel", "Stable"}, wantCode: 400, wantErr: ota.ErrCodeInvalidName},
		{name: "bad app_id", path: legacy, file: good, fields: []string{"version", "1.0.0", "app_id", "com/evil"}, wantCode: 400, wantErr: ota.ErrCodeInvalidName},
		{name: "unknown field", path: legacy, file: good, fields: []string{"version", "1.0.0", "chanel", "beta"}, wantCode: 400, wantErr: ota.ErrCodeBadRequest},
		{name: "duplicate field", path: legacy, file: good, fields: []string{"version", "1.0.0", "version", "1.0.1"}, wantCode: 400, wantErr: ota.ErrCodeBadRequest},
		{name: "apk ok", path: legacyAPK, file: apk, fields: []string{"version", "42"}, wantCode: 201, kept: true},
		{name: "apk not a zip", path: legacyAPK, file: []byte("MZ not an apk"), fields: []string{"version", "42"}, wantCode: 422, wantErr: ota.ErrCodeInvalidBundle},
		{name: "apk kind on web route", path: legacy, file: apk, fields: []string{"version", "42", "kind", "apk"}, wantCode: 400, wantErr: ota.ErrCodeBadRequest},
		{name: "v1 web ok", path: v1, file: good, fields: []string{"version", "2.0.0", "channel", "beta", "notes", "first beta", "min_native", "1.0.0"}, wantCode: 201, kept: true},
		{name: "v1 apk", path: v1, file: apk, fields: []string{"version", "build-7", "kind", "apk"}, wantCode: 201, kept: true},
		{name: "v1 bad kind", path: v1, file: good, fields: []string{"version", "1.0.0", "kind", "ipa"}, wantCode: 400, wantErr: ota.ErrCodeBadRequest},
		{name: "v1 app mismatch", path: v1, file: good, fields: []string{"version", "1.0.0", "app_id", "com.other"}, wantCode: 400, wantErr: ota.ErrCodeBadRequest},
		{name: "v1 bad app in path", path: "/api/v1/apps/bad%20app/bundles", file: good, fields: []string{"version", "1.0.0"}, wantCode: 400, wantErr: ota.ErrCodeInvalidName},
		{name: "v1 apk into web channel", path: v1, file: apk, fields: []string{"version", "43", "kind", "apk", "channel", "stable"}, wantCode: 422,
			setup: func(env *testEnv) { env.publish(testApp, "stable", "1.0.0", other) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newTestEnv(t)
			if tt.setup != nil {
				tt.setup(env)
			}
			rec := env.upload(tt.path, tt.file, tt.fields...)
			wantStatus(t, rec, tt.wantCode, tt.wantErr)
			if len(tt.file) > 0 {
				_, err := env.blobs.Stat(context.Background(), sha(tt.file))
				if kept := err == nil; kept != tt.kept {
					t.Errorf("bytes kept in the blob store = %v, want %v (stat: %v)", kept, tt.kept, err)
				}
			}
			if rec.Code >= 300 {
				return
			}
			res := decode[ota.UploadResult](t, rec)
			if res.Bundle.SHA256 != sha(tt.file) || res.Bundle.Size != int64(len(tt.file)) {
				t.Errorf("bundle sha256/size = %s/%d, want %s/%d", res.Bundle.SHA256, res.Bundle.Size, sha(tt.file), len(tt.file))
			}
			wantURL := testPublic + "/api/ota/bundle/" + sha(tt.file) + ".zip"
			if res.Bundle.Kind == ota.KindAPK {
				wantURL = testPublic + "/api/ota/bundle/" + sha(tt.file) + ".apk"
			}
			if res.Bundle.URL != wantURL {
				t.Errorf("url = %q, want %q", res.Bundle.URL, wantURL)
			}
			if res.Created != (tt.wantCode == 201) {
				t.Errorf("created = %v with status %d", res.Created, tt.wantCode)
			}
			if res.Bundle.UploadedBy != testUser {
				t.Errorf("uploaded_by = %q, want %q", res.Bundle.UploadedBy, testUser)
			}
			ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/"+res.Channel, nil))
			if ch.Active != res.Bundle.Version {
				t.Errorf("channel %s active = %q, want %q", res.Channel, ch.Active, res.Bundle.Version)
			}
		})
	}
}

func TestUploadChannelDefaults(t *testing.T) {
	env := newTestEnv(t)
	rec := env.upload("/api/ota/admin/apk/upload", zipOf(map[string]string{"classes.dex": "x"}), "version", "1.0.0")
	wantStatus(t, rec, 201, "")
	if res := decode[ota.UploadResult](t, rec); res.Channel != ota.APKChannel || res.Bundle.Kind != ota.KindAPK {
		t.Errorf("apk upload went to channel %q as %q, want %q as apk", res.Channel, res.Bundle.Kind, ota.APKChannel)
	}
	rec = env.upload("/api/ota/admin/ota/upload", zipOf(map[string]string{"index.html": "x"}), "version", "1.0.0")
	wantStatus(t, rec, 201, "")
	if res := decode[ota.UploadResult](t, rec); res.Channel != ota.DefaultChannel || res.Bundle.Kind != ota.KindWeb {
		t.Errorf("web upload went to channel %q as %q, want %q as web", res.Channel, res.Bundle.Kind, ota.DefaultChannel)
	}
}

func TestUploadFieldsAfterFile(t *testing.T) {
	// otactl sends the fields first and the file last; both orders work.
	env := newTestEnv(t)
	z := zipOf(map[string]string{"index.html": "x"})
	body, ctype := multipartOf(t,
		formPart{Name: "version", Data: []byte("3.0.0")},
		formPart{Name: "channel", Data: []byte("beta")},
		formPart{Name: "file", FileName: "b.zip", Data: z})
	rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/bundles", body, "Content-Type", ctype)
	wantStatus(t, rec, 201, "")

	// A bad field before the file is refused before the bytes are stored.
	z2 := zipOf(map[string]string{"index.html": "y"})
	body, ctype = multipartOf(t,
		formPart{Name: "channel", Data: []byte("BAD")},
		formPart{Name: "file", FileName: "b.zip", Data: z2})
	rec = env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/bundles", body, "Content-Type", ctype)
	wantStatus(t, rec, 400, ota.ErrCodeInvalidName)
	if _, err := env.blobs.Stat(context.Background(), sha(z2)); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("bytes of a refused upload: stat err = %v, want ErrNotFound", err)
	}
}

func TestUploadLimits(t *testing.T) {
	big := zipOf(map[string]string{"index.html": "x", "big.bin": strings.Repeat("z", 1)})
	big = append(big, bytes.Repeat([]byte{0}, 3000)...) // over the limit below
	limit := func(c *Config) { c.MaxUploadBytes = 2000 }

	t.Run("content-length over the limit", func(t *testing.T) {
		env := newTestEnv(t, limit)
		body, ctype := multipartOf(t, formPart{Name: "file", FileName: "b.zip", Data: bytes.Repeat([]byte("a"), 2000+multipartSlack+1)})
		rec := env.do(http.MethodPost, "/api/ota/admin/ota/upload", body, "Content-Type", ctype)
		wantStatus(t, rec, 413, ota.ErrCodeTooLarge)
	})
	t.Run("file over the limit", func(t *testing.T) {
		env := newTestEnv(t, limit)
		rec := env.upload("/api/ota/admin/ota/upload", big, "version", "1.0.0")
		wantStatus(t, rec, 413, ota.ErrCodeTooLarge)
		if _, err := env.blobs.Stat(context.Background(), sha(big)); !errors.Is(err, blob.ErrNotFound) {
			t.Errorf("oversized bytes: stat err = %v, want ErrNotFound", err)
		}
	})
	t.Run("chunked body over the limit", func(t *testing.T) {
		env := newTestEnv(t, limit)
		body, ctype := multipartOf(t,
			formPart{Name: "notes", Data: bytes.Repeat([]byte("n"), 100)},
			formPart{Name: "file", FileName: "b.zip", Data: bytes.Repeat([]byte("a"), 2000+multipartSlack+10)})
		req := httptest.NewRequest(http.MethodPost, "/api/ota/admin/ota/upload", bytes.NewReader(body))
		req.ContentLength = -1 // unknown, as with chunked encoding
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Authorization", "Bearer "+env.token)
		wantStatus(t, env.serve(req), 413, ota.ErrCodeTooLarge)
	})
	t.Run("not multipart", func(t *testing.T) {
		env := newTestEnv(t)
		rec := env.do(http.MethodPost, "/api/ota/admin/ota/upload", map[string]string{"version": "1.0.0"})
		wantStatus(t, rec, 400, ota.ErrCodeBadRequest)
	})
	t.Run("truncated form", func(t *testing.T) {
		env := newTestEnv(t)
		body, ctype := multipartOf(t, formPart{Name: "file", FileName: "b.zip", Data: zipOf(map[string]string{"index.html": "x"})})
		rec := env.do(http.MethodPost, "/api/ota/admin/ota/upload", body[:len(body)-60], "Content-Type", ctype)
		wantStatus(t, rec, 400, ota.ErrCodeBadRequest)
	})
	t.Run("no default app", func(t *testing.T) {
		env := newTestEnv(t, func(c *Config) { c.DefaultApp = "" })
		rec := env.upload("/api/ota/admin/ota/upload", zipOf(map[string]string{"index.html": "x"}), "version", "1.0.0")
		wantStatus(t, rec, 400, ota.ErrCodeBadRequest)
		if er := decode[ota.ErrorResponse](t, rec); !strings.Contains(er.Message, "OTAD_DEFAULT_APP") {
			t.Errorf("message %q does not say how to name the app", er.Message)
		}
		rec = env.upload("/api/ota/admin/ota/upload", zipOf(map[string]string{"index.html": "x"}), "version", "1.0.0", "app_id", "com.named.app")
		wantStatus(t, rec, 201, "")
	})
}

func TestDownload(t *testing.T) {
	env := newTestEnv(t)
	content := zipOf(map[string]string{"index.html": strings.Repeat("<p>hello</p>", 100)})
	b := env.publish(testApp, "stable", "1.0.0", content)
	key := b.SHA256 + ".zip"
	get := func(method, path string, headers ...string) *httptest.ResponseRecorder {
		return env.do(method, path, nil, append([]string{"Authorization", ""}, headers...)...)
	}

	t.Run("full", func(t *testing.T) {
		rec := get(http.MethodGet, "/api/ota/bundle/"+key)
		wantStatus(t, rec, 200, "")
		if !bytes.Equal(rec.Body.Bytes(), content) {
			t.Fatalf("body differs from the uploaded bytes (%d vs %d bytes)", rec.Body.Len(), len(content))
		}
		for h, want := range map[string]string{
			"ETag":              `"` + b.SHA256 + `"`,
			"Cache-Control":     "public, max-age=31536000, immutable",
			"Content-Type":      "application/zip",
			"X-Checksum-Sha256": b.SHA256,
			"Content-Length":    fmt.Sprint(len(content)),
		} {
			if got := rec.Header().Get(h); got != want {
				t.Errorf("%s = %q, want %q", h, got, want)
			}
		}
	})
	t.Run("range", func(t *testing.T) {
		rec := get(http.MethodGet, "/api/ota/bundle/"+key, "Range", "bytes=100-")
		wantStatus(t, rec, 206, "")
		if !bytes.Equal(rec.Body.Bytes(), content[100:]) {
			t.Error("range body differs")
		}
		if want := fmt.Sprintf("bytes 100-%d/%d", len(content)-1, len(content)); rec.Header().Get("Content-Range") != want {
			t.Errorf("Content-Range = %q, want %q", rec.Header().Get("Content-Range"), want)
		}
	})
	t.Run("head", func(t *testing.T) {
		rec := get(http.MethodHead, "/api/ota/bundle/"+key)
		wantStatus(t, rec, 200, "")
		if rec.Body.Len() != 0 || rec.Header().Get("Content-Length") != fmt.Sprint(len(content)) {
			t.Errorf("HEAD: body %d bytes, Content-Length %q", rec.Body.Len(), rec.Header().Get("Content-Length"))
		}
	})
	t.Run("if-none-match", func(t *testing.T) {
		rec := get(http.MethodGet, "/api/ota/bundle/"+key, "If-None-Match", `"`+b.SHA256+`"`)
		wantStatus(t, rec, 304, "")
	})
	t.Run("legacy alias", func(t *testing.T) {
		rec := get(http.MethodGet, "/api/ota/bundle/stable-1.0.0.zip")
		wantStatus(t, rec, 200, "")
		if !bytes.Equal(rec.Body.Bytes(), content) {
			t.Error("legacy alias serves other bytes")
		}
		if cc := rec.Header().Get("Cache-Control"); strings.Contains(cc, "immutable") {
			t.Errorf("legacy alias Cache-Control = %q, want a short cache", cc)
		}
	})
	t.Run("legacy alias with dashes", func(t *testing.T) {
		c2 := zipOf(map[string]string{"index.html": "rc"})
		env.publish(testApp, "pre-release", "2.0.0-rc-1", c2)
		// A private channel's releases have no guessable alias...
		wantStatus(t, get(http.MethodGet, "/api/ota/bundle/pre-release-2.0.0-rc-1.zip"), 404, ota.ErrCodeBundleNotFound)
		// ...one that devices may choose has.
		env.patch(testApp, "pre-release", ota.ChannelPolicyPatch{AllowSelfSet: ptrTo(true)})
		rec := get(http.MethodGet, "/api/ota/bundle/pre-release-2.0.0-rc-1.zip")
		wantStatus(t, rec, 200, "")
		if !bytes.Equal(rec.Body.Bytes(), c2) {
			t.Error("legacy alias serves other bytes")
		}
	})

	bad := []string{
		"../../etc/passwd",
		"..%2f..%2fetc%2fpasswd",
		"%2e%2e",
		"%2e%2e%2f" + key,
		strings.ToUpper(b.SHA256) + ".zip",
		b.SHA256 + ".tar",
		b.SHA256[:63] + ".zip",
		b.SHA256 + "0.zip",
		strings.Repeat("0", 64) + ".zip", // well-formed, not stored
		"stable-9.9.9.zip",               // unknown version
		"beta-1.0.0.zip",                 // unknown channel
		"stable-1.0.0.apk",
		"stable-.zip",
		"-1.0.0.zip",
		strings.Repeat("a-", 200) + "1.zip",
	}
	for _, k := range bad {
		t.Run("bad key "+k, func(t *testing.T) {
			rec := get(http.MethodGet, "/api/ota/bundle/"+k)
			if rec.Code != http.StatusNotFound {
				t.Fatalf("status %d, want 404; body %.200s", rec.Code, rec.Body)
			}
			if bytes.Contains(rec.Body.Bytes(), []byte("root:")) || bytes.Equal(rec.Body.Bytes(), content) {
				t.Fatal("a bad key served content")
			}
		})
	}
}

func TestDownloadAPK(t *testing.T) {
	env := newTestEnv(t)
	apk := zipOf(map[string]string{"classes.dex": "dex"})
	rec := env.upload("/api/ota/admin/apk/upload", apk, "version", "7")
	wantStatus(t, rec, 201, "")
	res := decode[ota.UploadResult](t, rec)
	rec = env.do(http.MethodGet, strings.TrimPrefix(res.Bundle.URL, testPublic), nil, "Authorization", "")
	wantStatus(t, rec, 200, "")
	if ct := rec.Header().Get("Content-Type"); ct != "application/vnd.android.package-archive" {
		t.Errorf("Content-Type = %q", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), apk) {
		t.Error("apk bytes differ")
	}
}

func TestDeleteWalkBack(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy=%v", legacy), func(t *testing.T) {
			env := newTestEnv(t)
			env.publish(testApp, "stable", "1.0.0", nil)
			b2 := env.publish(testApp, "stable", "1.0.1", nil)
			del := func(version string) *httptest.ResponseRecorder {
				if legacy {
					return env.do(http.MethodDelete, "/api/ota/admin/ota/stable/"+version, nil)
				}
				return env.do(http.MethodDelete, "/api/v1/apps/"+testApp+"/channels/stable/releases/"+version, nil)
			}
			steps := []struct{ version, from, to string }{
				{"1.0.1", "1.0.1", "1.0.0"},
				{"1.0.0", "1.0.0", ""},
			}
			for _, s := range steps {
				rec := del(s.version)
				wantStatus(t, rec, 200, "")
				change := decode[ota.ChannelChange](t, rec)
				if change.From != s.from || change.To != s.to {
					t.Fatalf("delete %s: %s -> %s, want %s -> %s", s.version, change.From, change.To, s.from, s.to)
				}
				ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/stable", nil))
				if ch.Active != s.to {
					t.Fatalf("after delete %s active = %q, want %q", s.version, ch.Active, s.to)
				}
				st, err := env.store.LoadAppState(context.Background(), testApp)
				if err != nil {
					t.Fatal(err)
				}
				if got := activeOf(st, "stable"); got != s.to {
					t.Fatalf("device state active = %q, want %q", got, s.to)
				}
			}
			wantStatus(t, del("1.0.1"), 404, ota.ErrCodeBundleNotFound)
			// A deleted version stays reserved: other bytes under its name are refused.
			rec := env.upload("/api/ota/admin/ota/upload", zipOf(map[string]string{"index.html": "new"}), "version", "1.0.1")
			wantStatus(t, rec, 409, ota.ErrCodeConflict)
			_ = b2
		})
	}
	t.Run("errors", func(t *testing.T) {
		env := newTestEnv(t)
		env.publish(testApp, "stable", "1.0.0", nil)
		wantStatus(t, env.do(http.MethodDelete, "/api/v1/apps/com.nope/channels/stable/releases/1.0.0", nil), 404, ota.ErrCodeAppNotFound)
		wantStatus(t, env.do(http.MethodDelete, "/api/v1/apps/"+testApp+"/channels/beta/releases/1.0.0", nil), 404, ota.ErrCodeChannelNotFound)
		wantStatus(t, env.do(http.MethodDelete, "/api/v1/apps/"+testApp+"/channels/stable/releases/bad%2Fversion", nil), 400, ota.ErrCodeInvalidVersion)
		wantStatus(t, env.do(http.MethodDelete, "/api/v1/apps/"+testApp+"/channels/BAD/releases/1.0.0", nil), 400, ota.ErrCodeInvalidName)
		wantStatus(t, env.do(http.MethodDelete, "/api/ota/admin/ota/stable/1.0.0?app_id=com.other", nil), 404, ota.ErrCodeAppNotFound)
		wantStatus(t, env.do(http.MethodDelete, "/api/ota/admin/ota/stable/1.0.0?app_id=bad%20app", nil), 400, ota.ErrCodeInvalidName)
	})
}

// activeOf is the active version of a channel in a loaded state.
func activeOf(st store.State, channel string) string {
	for _, ch := range st.Channels {
		if ch.Name == channel {
			return ch.Active
		}
	}
	return "<no channel>"
}

func TestRollbackPromote(t *testing.T) {
	env := newTestEnv(t)
	base := "/api/v1/apps/" + testApp + "/channels/"
	env.publish(testApp, "stable", "1.0.0", nil)
	env.publish(testApp, "stable", "1.1.0", nil)

	steps := []struct {
		name     string
		method   string
		path     string
		body     any
		wantCode int
		wantErr  string
		from, to string
	}{
		{"rollback to previous", "POST", base + "stable/rollback", nil, 200, "", "1.1.0", "1.0.0"},
		{"nothing before", "POST", base + "stable/rollback", nil, 409, ota.ErrCodeNothingToRoll, "", ""},
		{"rollback to named", "POST", base + "stable/rollback", ota.RollbackRequest{To: "1.1.0"}, 200, "", "1.0.0", "1.1.0"},
		{"rollback to builtin", "POST", base + "stable/rollback", ota.RollbackRequest{To: "builtin"}, 200, "", "1.1.0", "builtin"},
		{"rollback to unknown", "POST", base + "stable/rollback", ota.RollbackRequest{To: "9.9.9"}, 404, ota.ErrCodeBundleNotFound, "", ""},
		{"rollback to bad name", "POST", base + "stable/rollback", ota.RollbackRequest{To: "../x"}, 400, ota.ErrCodeInvalidVersion, "", ""},
		{"rollback unknown channel", "POST", base + "nope/rollback", nil, 404, ota.ErrCodeChannelNotFound, "", ""},
		{"rollback bad json", "POST", base + "stable/rollback", `{"to":`, 400, ota.ErrCodeInvalidJSON, "", ""},
		{"rollback unknown field", "POST", base + "stable/rollback", `{"too":"1.0.0"}`, 400, ota.ErrCodeInvalidJSON, "", ""},
		{"promote stable to beta", "POST", base + "beta/promote", ota.PromoteRequest{From: "stable", Version: "1.0.0"}, 200, "", "", "1.0.0"},
		{"promote what beta serves", "POST", base + "production/promote", ota.PromoteRequest{From: "beta"}, 200, "", "", "1.0.0"},
		{"promote onto itself", "POST", base + "beta/promote", ota.PromoteRequest{From: "beta"}, 400, ota.ErrCodeBadRequest, "", ""},
		{"promote without source", "POST", base + "beta/promote", ota.PromoteRequest{}, 400, ota.ErrCodeBadRequest, "", ""},
		{"promote unknown source", "POST", base + "beta/promote", ota.PromoteRequest{From: "nope"}, 404, ota.ErrCodeChannelNotFound, "", ""},
		{"promote unknown version", "POST", base + "beta/promote", ota.PromoteRequest{From: "stable", Version: "7.7.7"}, 404, ota.ErrCodeBundleNotFound, "", ""},
		{"promote bad target", "POST", base + "Beta/promote", ota.PromoteRequest{From: "stable"}, 400, ota.ErrCodeInvalidName, "", ""},
	}
	for _, s := range steps {
		rec := env.do(s.method, s.path, s.body)
		if rec.Code != s.wantCode {
			t.Fatalf("%s: status %d, want %d; body %s", s.name, rec.Code, s.wantCode, rec.Body)
		}
		if s.wantErr != "" {
			wantStatus(t, rec, s.wantCode, s.wantErr)
			continue
		}
		change := decode[ota.ChannelChange](t, rec)
		if change.From != s.from || change.To != s.to {
			t.Fatalf("%s: %q -> %q, want %q -> %q", s.name, change.From, change.To, s.from, s.to)
		}
		st, err := env.store.LoadAppState(context.Background(), testApp)
		if err != nil {
			t.Fatal(err)
		}
		if got := activeOf(st, change.Channel); got != s.to {
			t.Fatalf("%s: stored active = %q, want %q", s.name, got, s.to)
		}
	}
}

func TestHistoryPaging(t *testing.T) {
	env := newTestEnv(t)
	for i := range 5 {
		env.publish(testApp, "stable", fmt.Sprintf("1.0.%d", i), nil)
	}
	env.publish(testApp, "beta", "2.0.0", nil)
	env.publish("com.other.app", "stable", "1.0.0", nil)

	var seqs []uint64
	path := "/api/v1/apps/" + testApp + "/history?channel=stable&limit=2"
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("history does not end")
		}
		rec := env.do(http.MethodGet, path, nil)
		wantStatus(t, rec, 200, "")
		page := decode[ota.HistoryPage](t, rec)
		if len(page.Events) > 2 {
			t.Fatalf("page has %d events, limit was 2", len(page.Events))
		}
		for _, ev := range page.Events {
			if ev.AppID != testApp || ev.Channel != "stable" {
				t.Fatalf("event of %s/%s in the history of %s/stable", ev.AppID, ev.Channel, testApp)
			}
			if len(seqs) > 0 && ev.Seq >= seqs[len(seqs)-1] {
				t.Fatalf("events not newest first: %d after %d", ev.Seq, seqs[len(seqs)-1])
			}
			seqs = append(seqs, ev.Seq)
		}
		if page.Next == 0 {
			break
		}
		path = fmt.Sprintf("/api/v1/apps/%s/history?channel=stable&limit=2&before=%d", testApp, page.Next)
	}
	if len(seqs) < 5 {
		t.Errorf("paged through %d events of stable, want at least the 5 uploads", len(seqs))
	}

	all := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/history?limit=500", nil))
	apps := map[string]bool{}
	for _, ev := range all.Events {
		apps[ev.AppID] = true
		if ev.Type == ota.EventUpload && ev.Actor != testUser {
			t.Errorf("upload event actor = %q, want %q", ev.Actor, testUser)
		}
	}
	if !apps[testApp] || !apps["com.other.app"] {
		t.Errorf("global history covers apps %v, want both", apps)
	}

	for _, bad := range []string{"?before=x", "?limit=0", "?limit=100000", "?limit=-1", "?channel=Bad"} {
		rec := env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history"+bad, nil)
		if rec.Code != 400 {
			t.Errorf("history%s: status %d, want 400", bad, rec.Code)
		}
	}
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/com.nope/history", nil), 404, ota.ErrCodeAppNotFound)
}

func TestAppsChannelsBundles(t *testing.T) {
	env := newTestEnv(t)
	b := env.publish(testApp, "stable", "1.0.0", nil)

	apps := decode[[]ota.App](t, env.do(http.MethodGet, "/api/v1/apps", nil))
	if len(apps) != 1 || apps[0].ID != testApp {
		t.Fatalf("apps = %+v", apps)
	}
	app := decode[ota.App](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp, nil))
	if app.DefaultChannel != "stable" {
		t.Errorf("default channel = %q, want stable", app.DefaultChannel)
	}
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/com.nope", nil), 404, ota.ErrCodeAppNotFound)
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/bad%21app", nil), 400, ota.ErrCodeInvalidName)

	chs := decode[[]ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels", nil))
	if len(chs) != 1 || chs[0].ActiveBundle == nil || chs[0].ActiveBundle.URL != b.URL {
		t.Fatalf("channels = %+v, want stable with active bundle url %s", chs, b.URL)
	}
	ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/stable", nil))
	if ch.ActiveBundle == nil || ch.ActiveBundle.URL != b.URL {
		t.Errorf("channel active bundle = %+v, want url %s", ch.ActiveBundle, b.URL)
	}
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/nope", nil), 404, ota.ErrCodeChannelNotFound)
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/com.nope/channels", nil), 404, ota.ErrCodeAppNotFound)

	bs := decode[[]ota.Bundle](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/bundles", nil))
	if len(bs) != 1 || bs[0].URL != b.URL || bs[0].Version != "1.0.0" {
		t.Errorf("bundles = %+v", bs)
	}
}

func TestPatchChannel(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "stable", "1.0.0", nil)
	path := "/api/v1/apps/" + testApp + "/channels/stable"
	tests := []struct {
		name     string
		body     any
		wantCode int
		wantErr  string
	}{
		{"disable ios", `{"ios":false,"disable_auto_update":"major"}`, 200, ""},
		{"unknown field", `{"ios_enabled":false}`, 400, ota.ErrCodeInvalidJSON},
		{"bad disable value", `{"disable_auto_update":"everything"}`, 400, ota.ErrCodeBadRequest},
		{"empty patch", `{}`, 400, ota.ErrCodeBadRequest},
		{"not json", `ios=false`, 400, ota.ErrCodeInvalidJSON},
		{"two objects", `{"ios":false}{"ios":true}`, 400, ota.ErrCodeInvalidJSON},
		{"too large", `{"ios":false,"x":"` + strings.Repeat("a", 70<<10) + `"}`, 413, ota.ErrCodeTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := env.do(http.MethodPatch, path, tt.body, "Content-Type", "application/json")
			wantStatus(t, rec, tt.wantCode, tt.wantErr)
		})
	}
	ch := decode[ota.Channel](t, env.do(http.MethodGet, path, nil))
	if ch.Policy.IOS || !ch.Policy.Android || ch.Policy.DisableAutoUpdate != ota.DisableMajor {
		t.Errorf("policy after patch = %+v", ch.Policy)
	}
	st, err := env.store.LoadAppState(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range st.Channels {
		if c.Name == "stable" && c.Policy.IOS {
			t.Error("stored policy still allows ios")
		}
	}
	wantStatus(t, env.do(http.MethodPatch, "/api/v1/apps/"+testApp+"/channels/nope", `{"ios":false}`), 404, ota.ErrCodeChannelNotFound)
}

func TestDeviceOverride(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "stable", "1.0.0", nil)
	env.publish(testApp, "beta", "2.0.0", nil)
	dev := "6AA0B2A5-2C3E-4D5B-9A65-2F4F1A1E7C11"
	path := "/api/v1/apps/" + testApp + "/devices/" + dev + "/channel"

	wantStatus(t, env.do(http.MethodPut, path, ota.DeviceOverrideRequest{Channel: "beta"}), 200, "")
	st, err := env.store.LoadAppState(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Overrides) != 1 || st.Overrides[0].DeviceID != strings.ToLower(dev) || st.Overrides[0].Channel != "beta" {
		t.Fatalf("overrides = %+v, want the lowercased device on beta", st.Overrides)
	}
	wantStatus(t, env.do(http.MethodPut, path, ota.DeviceOverrideRequest{Channel: "nope"}), 404, ota.ErrCodeChannelNotFound)
	wantStatus(t, env.do(http.MethodPut, path, ota.DeviceOverrideRequest{}), 400, ota.ErrCodeInvalidName)
	wantStatus(t, env.do(http.MethodPut, "/api/v1/apps/"+testApp+"/devices/bad%20id/channel", ota.DeviceOverrideRequest{Channel: "beta"}), 400, ota.ErrCodeInvalidName)
	wantStatus(t, env.do(http.MethodPut, "/api/v1/apps/com.nope/devices/"+dev+"/channel", ota.DeviceOverrideRequest{Channel: "beta"}), 404, ota.ErrCodeAppNotFound)

	wantStatus(t, env.do(http.MethodDelete, path, nil), 204, "")
	wantStatus(t, env.do(http.MethodDelete, path, nil), 404, ota.ErrCodeNotFound)
	st, err = env.store.LoadAppState(context.Background(), testApp)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Overrides) != 0 {
		t.Errorf("overrides after delete = %+v", st.Overrides)
	}
}

func TestStatsQuery(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "stable", "1.0.0", nil)
	ev := func(action string, at time.Time) store.StoredStat {
		return store.StoredStat{Received: at, Event: ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: testApp, DeviceID: "d1"}, Action: action}}
	}
	if err := env.store.AppendStats(context.Background(), []store.StoredStat{
		ev("set", testEpoch), ev("download_fail", testEpoch.Add(time.Hour)),
	}); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/apps/" + testApp + "/stats"
	got := decode[[]store.StoredStat](t, env.do(http.MethodGet, path, nil))
	if len(got) != 2 {
		t.Fatalf("stats = %+v, want 2 events", got)
	}
	since := testEpoch.Add(30 * time.Minute).Format(time.RFC3339)
	got = decode[[]store.StoredStat](t, env.do(http.MethodGet, path+"?since="+since, nil))
	if len(got) != 1 || got[0].Event.Action != "download_fail" {
		t.Errorf("stats since %s = %+v, want the download_fail only", since, got)
	}
	wantStatus(t, env.do(http.MethodGet, path+"?since=yesterday", nil), 400, ota.ErrCodeBadRequest)
	wantStatus(t, env.do(http.MethodGet, path+"?limit=0", nil), 400, ota.ErrCodeBadRequest)
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/com.nope/stats", nil), 404, ota.ErrCodeAppNotFound)
}

// readFromRecorder is a ResponseWriter with io.ReaderFrom, like net/http's
// own, that records whether the body came through ReadFrom.
type readFromRecorder struct {
	*httptest.ResponseRecorder
	usedReadFrom bool
}

func (r *readFromRecorder) ReadFrom(src io.Reader) (int64, error) {
	r.usedReadFrom = true
	return io.Copy(r.ResponseRecorder, src)
}

func TestDownloadUsesReadFrom(t *testing.T) {
	// net/http turns ReadFrom of a file into sendfile; echo's response
	// writer must not hide it.
	env := newTestEnv(t)
	content := zipOf(map[string]string{"index.html": "sendfile"})
	b := env.publish(testApp, "stable", "1.0.0", content)
	w := &readFromRecorder{ResponseRecorder: httptest.NewRecorder()}
	env.srv.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/ota/bundle/"+b.SHA256+".zip", nil))
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), content) {
		t.Fatalf("status %d, %d bytes", w.Code, w.Body.Len())
	}
	if !w.usedReadFrom {
		t.Error("the body was copied through echo's writer, not handed to ReadFrom")
	}
}

func TestConcurrentUploadsSameBytes(t *testing.T) {
	// Uploads of the same bytes race: some are refused (bad checksum) and
	// may have stored the bytes first; the accepted ones must keep them.
	env := newTestEnv(t)
	content := zipOf(map[string]string{"index.html": "shared"})
	const n = 8
	codes := make(chan int, n)
	for i := range n {
		go func() {
			sum := sha(content)
			if i%2 == 1 {
				sum = strings.Repeat("0", 64)
			}
			body, ctype := multipartOf(t, formPart{Name: "file", FileName: "b.zip", Data: content},
				formPart{Name: "version", Data: []byte(fmt.Sprintf("1.0.%d", i))}, formPart{Name: "checksum", Data: []byte(sum)})
			req := httptest.NewRequest(http.MethodPost, "/api/ota/admin/ota/upload", bytes.NewReader(body))
			req.Header.Set("Content-Type", ctype)
			req.Header.Set("Authorization", "Bearer "+env.token)
			codes <- env.serve(req).Code
		}()
	}
	created := 0
	for range n {
		switch c := <-codes; c {
		case 201:
			created++
		case 422:
		default:
			t.Errorf("status %d, want 201 or 422", c)
		}
	}
	if created != n/2 {
		t.Errorf("%d uploads created, want %d", created, n/2)
	}
	rec := env.do(http.MethodGet, "/api/ota/bundle/"+sha(content)+".zip", nil, "Authorization", "")
	if rec.Code != 200 || !bytes.Equal(rec.Body.Bytes(), content) {
		t.Fatalf("the published bytes are gone: status %d", rec.Code)
	}
}
