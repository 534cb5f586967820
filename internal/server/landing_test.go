package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// TestLandingPage: GET / without a token answers what this server is (a
// page for a browser, JSON for a program) instead of the admin API's 401,
// while the admin API still needs one.
func TestLandingPage(t *testing.T) {
	env := newTestEnv(t)
	tests := []struct {
		name, accept, wantType, wantBody string
	}{
		{"browser", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html; charset=utf-8", `"updateUrl": "` + testPublic + `/updates"`},
		{"curl", "*/*", "application/json", `"update_url":"` + testPublic + `/updates"`},
		{"no accept", "", "application/json", `"name":"otad"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.accept != "" {
				req.Header.Set("Accept", tt.accept)
			}
			rec := env.serve(req)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET / = %d: %s", rec.Code, rec.Body)
			}
			if ct := rec.Header().Get("Content-Type"); ct != tt.wantType {
				t.Errorf("Content-Type = %q, want %q", ct, tt.wantType)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body does not say %s:\n%s", tt.wantBody, rec.Body)
			}
			if !strings.Contains(rec.Body.String(), "test") { // the configured version
				t.Errorf("body does not name the version:\n%s", rec.Body)
			}
		})
	}
	info := decode[ota.ServerInfo](t, env.serve(httptest.NewRequest(http.MethodGet, "/", nil)))
	if info.Version != env.cfg.Version.Version || info.PublicURL != testPublic || info.API != testPublic+"/api/v1" {
		t.Errorf("info = %+v", info)
	}
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps", nil, "Authorization", ""), http.StatusUnauthorized, ota.ErrCodeUnauthorized)
	wantStatus(t, env.do(http.MethodGet, "/no-such-page", nil, "Authorization", ""), http.StatusNotFound, ota.ErrCodeNotFound)
}
