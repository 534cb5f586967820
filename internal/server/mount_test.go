package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestMount: a mounted handler gets its prefix and everything below it,
// nothing else; the API is untouched.
func TestMount(t *testing.T) {
	env := newTestEnv(t)
	env.srv.Mount("/ui", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("mounted " + r.URL.Path))
	}))
	for path, want := range map[string]string{"/ui": "mounted /ui", "/ui/": "mounted /ui/", "/ui/apps/x": "mounted /ui/apps/x"} {
		rec := env.do(http.MethodGet, path, nil)
		if rec.Code != http.StatusOK || rec.Body.String() != want {
			t.Errorf("GET %s = %d %q, want %q", path, rec.Code, rec.Body.String(), want)
		}
	}
	if rec := env.do(http.MethodPost, "/ui/x", "a=b"); rec.Body.String() != "mounted /ui/x" {
		t.Errorf("POST /ui/x = %d %q", rec.Code, rec.Body.String())
	}
	wantStatus(t, env.do(http.MethodGet, "/uix", nil), http.StatusNotFound, "")
	wantStatus(t, env.do(http.MethodGet, "/api/v1/apps", nil), http.StatusOK, "")
}

// TestInternalHandler: requests otad makes to its own API (the
// dashboard's) log at debug level, as the request that caused them is
// logged already; the same request from outside logs at info.
func TestInternalHandler(t *testing.T) {
	env := newTestEnv(t)
	get := func(h http.Handler) {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/apps", nil)
		req.Header.Set("Authorization", "Bearer "+env.token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		wantStatus(t, rec, http.StatusOK, "")
	}
	get(env.srv.InternalHandler())
	lines := strings.Split(strings.TrimSpace(env.logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "level=DEBUG") || !strings.Contains(last, "route=/api/v1/apps") {
		t.Errorf("an internal request logged %q", last)
	}
	get(env.srv.Handler())
	lines = strings.Split(strings.TrimSpace(env.logs.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "level=INFO") {
		t.Errorf("an outside request logged %q", last)
	}
}
