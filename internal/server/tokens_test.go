package server

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/otaship/ota/internal/auth"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// createToken makes a CI token through the API with the admin's login.
func (e *testEnv) createToken(req ota.TokenCreateRequest) ota.TokenCreateResponse {
	e.t.Helper()
	if req.TTLSeconds == 0 {
		req.TTLSeconds = int64((90 * 24 * time.Hour).Seconds())
	}
	rec := e.do(http.MethodPost, "/api/v1/tokens", req)
	wantStatus(e.t, rec, http.StatusCreated, "")
	return decode[ota.TokenCreateResponse](e.t, rec)
}

// uploadAs posts a bundle with the given bearer token.
func (e *testEnv) uploadAs(token, path string, file []byte, fields ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	parts := []formPart{}
	for i := 0; i+1 < len(fields); i += 2 {
		parts = append(parts, formPart{Name: fields[i], Data: []byte(fields[i+1])})
	}
	parts = append(parts, formPart{Name: "file", FileName: "bundle.zip", Data: file})
	body, ctype := multipartOf(e.t, parts...)
	return e.do(http.MethodPost, path, body, "Content-Type", ctype, "Authorization", "Bearer "+token)
}

func bundleZip(version string) []byte {
	return zipOf(map[string]string{"index.html": "<html>" + version + "</html>"})
}

func TestCITokenCreateShowsSecretOnce(t *testing.T) {
	env := newTestEnv(t)
	tok := env.createToken(ota.TokenCreateRequest{Name: "ci", AppID: testApp, Channel: "beta"})
	id, secret, ok := parseCIToken(tok.Token)
	if !ok || id != tok.ID || secret == "" {
		t.Fatalf("token %q is not otad_ci_<id>_<secret> with id %s", tok.Token, tok.ID)
	}
	if want := testEpoch.Add(90 * 24 * time.Hour); !tok.ExpiresAt.Equal(want) {
		t.Errorf("expires_at = %s, want %s", tok.ExpiresAt, want)
	}
	if tok.CreatedBy != testUser || tok.AppID != testApp || tok.Channel != "beta" {
		t.Errorf("token info = %+v", tok.TokenInfo)
	}
	rec := env.do(http.MethodGet, "/api/v1/tokens", nil)
	wantStatus(t, rec, http.StatusOK, "")
	if strings.Contains(rec.Body.String(), secret) {
		t.Errorf("token list shows the secret: %s", rec.Body)
	}
	list := decode[[]ota.TokenInfo](t, rec)
	if len(list) != 1 || list[0].ID != tok.ID || list[0].RevokedAt != nil {
		t.Errorf("list = %+v, want the one new token", list)
	}
	stored, err := env.store.GetToken(t.Context(), tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(stored.SecretHash), secret) || len(stored.SecretHash) != 32 {
		t.Errorf("stored secret hash %x is not a SHA-256", stored.SecretHash)
	}
}

func TestCITokenCreateRejects(t *testing.T) {
	env := newTestEnv(t)
	day := int64(86400)
	for _, tc := range []struct {
		name string
		req  ota.TokenCreateRequest
	}{
		{"no name", ota.TokenCreateRequest{TTLSeconds: day}},
		{"bad name", ota.TokenCreateRequest{Name: "a b", TTLSeconds: day}},
		{"no expiry", ota.TokenCreateRequest{Name: "ci"}},
		{"negative expiry", ota.TokenCreateRequest{Name: "ci", TTLSeconds: -1}},
		{"ten years", ota.TokenCreateRequest{Name: "ci", TTLSeconds: 10 * 366 * day}},
		{"bad channel", ota.TokenCreateRequest{Name: "ci", TTLSeconds: day, Channel: "../x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := env.do(http.MethodPost, "/api/v1/tokens", tc.req)
			if rec.Code != http.StatusBadRequest {
				t.Errorf("status = %d, want 400: %s", rec.Code, rec.Body)
			}
		})
	}
}

func TestCITokenScope(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "beta", "0.9.0", nil)
	env.publish(testApp, "production", "0.9.0", nil)
	beta := env.createToken(ota.TokenCreateRequest{Name: "beta-deploy", AppID: testApp, Channel: "beta"}).Token
	appOnly := env.createToken(ota.TokenCreateRequest{Name: "app-deploy", AppID: testApp}).Token
	v1 := "/api/v1/apps/" + testApp + "/bundles"

	cases := []struct {
		name   string
		do     func() *httptest.ResponseRecorder
		status int
	}{
		{"upload to its channel", func() *httptest.ResponseRecorder {
			return env.uploadAs(beta, v1, bundleZip("1.0.0"), "version", "1.0.0", "channel", "beta")
		}, http.StatusCreated},
		{"upload to another channel", func() *httptest.ResponseRecorder {
			return env.uploadAs(beta, v1, bundleZip("1.0.1"), "version", "1.0.1", "channel", "production")
		}, http.StatusForbidden},
		{"legacy upload to the default channel", func() *httptest.ResponseRecorder {
			return env.uploadAs(beta, "/api/ota/admin/ota/upload", bundleZip("1.0.2"), "version", "1.0.2")
		}, http.StatusForbidden},
		{"legacy upload to its channel", func() *httptest.ResponseRecorder {
			return env.uploadAs(beta, "/api/ota/admin/ota/upload", bundleZip("1.0.3"), "version", "1.0.3", "channel", "beta")
		}, http.StatusCreated},
		{"upload to another app", func() *httptest.ResponseRecorder {
			return env.uploadAs(appOnly, "/api/v1/apps/com.other.app/bundles", bundleZip("1.0.4"), "version", "1.0.4")
		}, http.StatusForbidden},
		{"app token to any channel of its app", func() *httptest.ResponseRecorder {
			return env.uploadAs(appOnly, v1, bundleZip("1.0.5"), "version", "1.0.5", "channel", "production")
		}, http.StatusCreated},
		{"uploaded_at from a CI token", func() *httptest.ResponseRecorder {
			return env.uploadAs(appOnly, v1, bundleZip("1.0.6"), "version", "1.0.6", "uploaded_at", "2024-01-01T00:00:00Z")
		}, http.StatusForbidden},
		{"roll back another channel", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollback", map[string]string{}, "Authorization", "Bearer "+beta)
		}, http.StatusForbidden},
		{"roll back its channel", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/beta/rollback", map[string]string{}, "Authorization", "Bearer "+beta)
		}, http.StatusOK},
		{"promote into another channel", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/promote", ota.PromoteRequest{From: "beta"}, "Authorization", "Bearer "+beta)
		}, http.StatusForbidden},
		{"delete from another channel", func() *httptest.ResponseRecorder {
			return env.do(http.MethodDelete, "/api/v1/apps/"+testApp+"/channels/production/releases/0.9.0", nil, "Authorization", "Bearer "+beta)
		}, http.StatusForbidden},
		{"legacy delete from another channel", func() *httptest.ResponseRecorder {
			return env.do(http.MethodDelete, "/api/ota/admin/ota/production/0.9.0", nil, "Authorization", "Bearer "+beta)
		}, http.StatusForbidden},
		{"read channels", func() *httptest.ResponseRecorder {
			return env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels", nil, "Authorization", "Bearer "+beta)
		}, http.StatusOK},
		{"read another app", func() *httptest.ResponseRecorder {
			return env.do(http.MethodGet, "/api/v1/apps/com.other.app/channels", nil, "Authorization", "Bearer "+beta)
		}, http.StatusForbidden},
		{"pin a device", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPut, "/api/v1/apps/"+testApp+"/devices/d1/channel", map[string]string{"channel": "beta"}, "Authorization", "Bearer "+beta)
		}, http.StatusForbidden},
		{"create a token", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPost, "/api/v1/tokens", ota.TokenCreateRequest{Name: "x", TTLSeconds: 60}, "Authorization", "Bearer "+appOnly)
		}, http.StatusForbidden},
		{"list webhooks", func() *httptest.ResponseRecorder {
			return env.do(http.MethodGet, "/api/v1/webhooks", nil, "Authorization", "Bearer "+appOnly)
		}, http.StatusForbidden},
		{"read history", func() *httptest.ResponseRecorder {
			return env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history", nil, "Authorization", "Bearer "+appOnly)
		}, http.StatusOK},
		{"list tokens", func() *httptest.ResponseRecorder {
			return env.do(http.MethodGet, "/api/v1/tokens", nil, "Authorization", "Bearer "+appOnly)
		}, http.StatusForbidden},
		{"store a delta file of its app", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPut, "/api/v1/apps/"+testApp+"/files/"+sha256Hex([]byte("f")), "f", "Authorization", "Bearer "+beta)
		}, http.StatusCreated},
		{"ask which files its app lacks", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/files/missing", ota.FilesMissingRequest{SHA256: []string{sha256Hex([]byte("f"))}}, "Authorization", "Bearer "+beta)
		}, http.StatusOK},
		{"store a delta file of another app", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPut, "/api/v1/apps/com.other.app/files/"+sha256Hex([]byte("f")), "f", "Authorization", "Bearer "+appOnly)
		}, http.StatusForbidden},
		{"ask about another app's files", func() *httptest.ResponseRecorder {
			return env.do(http.MethodPost, "/api/v1/apps/com.other.app/files/missing", ota.FilesMissingRequest{}, "Authorization", "Bearer "+appOnly)
		}, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.do()
			code := ""
			if tc.status == http.StatusForbidden {
				code = ota.ErrCodeForbidden
			}
			wantStatus(t, rec, tc.status, code)
		})
	}

	// What a CI token did is attributed to it in the history.
	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?channel=beta", nil))
	if len(page.Events) == 0 || page.Events[0].Actor != "ci:beta-deploy" {
		t.Errorf("newest beta event = %+v, want actor ci:beta-deploy", page.Events)
	}
}

func TestCITokenRefused(t *testing.T) {
	env := newTestEnv(t)
	good := env.createToken(ota.TokenCreateRequest{Name: "ci"})
	short := env.createToken(ota.TokenCreateRequest{Name: "short", TTLSeconds: 3600})
	revoked := env.createToken(ota.TokenCreateRequest{Name: "gone"})
	rec := env.do(http.MethodDelete, "/api/v1/tokens/"+revoked.ID, nil)
	wantStatus(t, rec, http.StatusOK, "")
	if info := decode[ota.TokenInfo](t, rec); info.RevokedAt == nil || !info.RevokedAt.Equal(testEpoch) {
		t.Errorf("revoked token = %+v, want revoked_at %s", info, testEpoch)
	}
	env.clock.Advance(time.Hour)

	id, _, _ := parseCIToken(good.Token)
	for _, tc := range []struct {
		name, token string
		status      int
	}{
		{"valid", good.Token, http.StatusOK},
		{"expired", short.Token, http.StatusUnauthorized},
		{"revoked", revoked.Token, http.StatusUnauthorized},
		{"wrong secret", fmt.Sprintf("%s%s_%s", ota.CITokenPrefix, id, strings.Repeat("0", 64)), http.StatusUnauthorized},
		{"unknown id", fmt.Sprintf("%s%s_%s", ota.CITokenPrefix, strings.Repeat("a", 16), strings.Repeat("0", 64)), http.StatusUnauthorized},
		{"malformed", ota.CITokenPrefix + "nope", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := env.do(http.MethodGet, "/api/v1/me", nil, "Authorization", "Bearer "+tc.token)
			code := ""
			if tc.status == http.StatusUnauthorized {
				code = ota.ErrCodeUnauthorized
			}
			wantStatus(t, rec, tc.status, code)
		})
	}

	// A second revoke keeps the first time; an unknown id is 404.
	rec = env.do(http.MethodDelete, "/api/v1/tokens/"+revoked.ID, nil)
	if info := decode[ota.TokenInfo](t, rec); info.RevokedAt == nil || !info.RevokedAt.Equal(testEpoch) {
		t.Errorf("second revoke = %+v, want revoked_at still %s", info, testEpoch)
	}
	wantStatus(t, env.do(http.MethodDelete, "/api/v1/tokens/"+strings.Repeat("b", 16), nil), http.StatusNotFound, ota.ErrCodeNotFound)
	// Tokens survive a restart.
	env.reopen()
	wantStatus(t, env.do(http.MethodGet, "/api/v1/me", nil, "Authorization", "Bearer "+good.Token), http.StatusOK, "")
}

func TestUploadedAt(t *testing.T) {
	env := newTestEnv(t)
	v1 := "/api/v1/apps/" + testApp + "/bundles"
	at := "2024-05-01T12:00:00Z"
	rec := env.uploadAs(env.token, v1, bundleZip("1.0.0"), "version", "1.0.0", "uploaded_at", at)
	wantStatus(t, rec, http.StatusCreated, "")
	res := decode[ota.UploadResult](t, rec)
	if got := res.Bundle.UploadedAt.UTC().Format(time.RFC3339); got != at {
		t.Errorf("uploaded_at = %s, want %s", got, at)
	}
	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history", nil))
	if len(page.Events) != 1 || page.Events[0].Time.UTC().Format(time.RFC3339) != at {
		t.Errorf("history = %+v, want one event at %s", page.Events, at)
	}
	for _, bad := range []string{"yesterday", testEpoch.Add(time.Hour).Format(time.RFC3339)} {
		rec := env.uploadAs(env.token, v1, bundleZip("1.0.1"), "version", "1.0.1", "uploaded_at", bad)
		wantStatus(t, rec, http.StatusBadRequest, ota.ErrCodeBadRequest)
	}
}

// A token limited to one channel changes that channel only; app-wide
// settings (which channel is the default) need a token of the whole app.
// A token limited to one app lists and reads that app only.
func TestCITokenNarrow(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "beta", "1.1.0", nil)
	env.publish("com.other.app", "production", "9.0.0", nil)
	beta := env.createToken(ota.TokenCreateRequest{Name: "beta-deploy", AppID: testApp, Channel: "beta"}).Token
	appOnly := env.createToken(ota.TokenCreateRequest{Name: "app-deploy", AppID: testApp}).Token
	patch := func(token, channel string, body map[string]any) *httptest.ResponseRecorder {
		return env.do(http.MethodPatch, "/api/v1/apps/"+testApp+"/channels/"+channel, body, "Authorization", "Bearer "+token)
	}

	wantStatus(t, patch(beta, "beta", map[string]any{"default": true}), http.StatusForbidden, ota.ErrCodeForbidden)
	if got := decode[ota.App](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp, nil)).DefaultChannel; got != "production" {
		t.Fatalf("default channel = %s after a refused patch, want production", got)
	}
	if rec := env.device(http.MethodPost, "/updates", confRequest(nil)); strings.Contains(rec.Body.String(), `"1.1.0"`) {
		t.Errorf("devices without a channel are offered beta's %s", rec.Body)
	}
	wantStatus(t, patch(beta, "beta", map[string]any{"ios": false}), http.StatusOK, "")
	wantStatus(t, patch(beta, "beta", map[string]any{"default": true, "ios": true}), http.StatusForbidden, ota.ErrCodeForbidden)
	wantStatus(t, patch(appOnly, "beta", map[string]any{"default": true}), http.StatusOK, "")

	for _, token := range []string{appOnly, beta} {
		apps := decode[[]ota.App](t, env.do(http.MethodGet, "/api/v1/apps", nil, "Authorization", "Bearer "+token))
		if len(apps) != 1 || apps[0].ID != testApp {
			t.Errorf("apps listed for a token of %s: %+v", testApp, apps)
		}
		page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/history?limit=500", nil, "Authorization", "Bearer "+token))
		if len(page.Events) == 0 {
			t.Errorf("history of the token's own app is empty")
		}
		for _, ev := range page.Events {
			if ev.AppID != testApp {
				t.Errorf("history for a token of %s shows %+v", testApp, ev)
			}
		}
	}
	// A user login and an unlimited token still see every app.
	all := env.createToken(ota.TokenCreateRequest{Name: "everything"}).Token
	for _, token := range []string{env.token, all} {
		if apps := decode[[]ota.App](t, env.do(http.MethodGet, "/api/v1/apps", nil, "Authorization", "Bearer "+token)); len(apps) != 2 {
			t.Errorf("apps = %+v, want both", apps)
		}
	}
}

// Login tokens die with their user: removing a user and creating one of
// the same name (whose token generation starts at 0 again) does not
// revive the old user's tokens, nor does a token from before user ids.
func TestLoginTokenOfRemovedUser(t *testing.T) {
	env := newTestEnv(t)
	ctx := t.Context()
	hash, err := auth.HashPassword("pw-of-bob-1", bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.store.CreateUser(ctx, store.User{Name: "bob", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	old := decode[ota.LoginResponse](t, login(env, "/api/v1/auth/login", "bob", "pw-of-bob-1", "")).Token
	me := func(token string) *httptest.ResponseRecorder {
		return env.do(http.MethodGet, "/api/v1/me", nil, "Authorization", "Bearer "+token)
	}
	wantStatus(t, me(old), http.StatusOK, "")
	if err := env.store.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, me(old), http.StatusUnauthorized, ota.ErrCodeUnauthorized)
	if err := env.store.CreateUser(ctx, store.User{Name: "bob", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	for name, token := range map[string]string{
		"the removed user's token": old,
		"a token without a user id": func() string {
			legacy, err := jwtWithoutUID(env, "bob")
			if err != nil {
				t.Fatal(err)
			}
			return legacy
		}(),
	} {
		t.Run(name, func(t *testing.T) { wantStatus(t, me(token), http.StatusUnauthorized, ota.ErrCodeUnauthorized) })
	}
	if n := strings.Count(env.logs.String(), "token of another user of that name"); n != 2 {
		t.Errorf("%d refusals logged for the user id, want 2 (not for a bad signature or claim):\n%s", n, grepLines(env.logs.String(), "authentication failed"))
	}
	fresh := decode[ota.LoginResponse](t, login(env, "/api/v1/auth/login", "bob", "pw-of-bob-1", "")).Token
	wantStatus(t, me(fresh), http.StatusOK, "")
}

// jwtWithoutUID signs a token as otad did before tokens named user ids.
func jwtWithoutUID(env *testEnv, user string) (string, error) {
	now := env.clock.Now()
	claims := jwt.MapClaims{"iss": "otad-test", "aud": "otactl", "sub": user, "gen": 0,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x"}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(testKey)
}
