package landing

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

func TestWantsHTML(t *testing.T) {
	tests := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{"*/*"}, false},
		{[]string{"application/json"}, false},
		{[]string{"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}, true}, // a browser
		{[]string{"application/xhtml+xml"}, true},
		{[]string{"application/json, text/html;q=0.5"}, true},
		{[]string{"text/html;q=0"}, false},
		{[]string{"application/json", "text/html"}, true},
		{[]string{"text/htmlx"}, false},
		{[]string{";;;,=,text/html"}, true},
	}
	for _, tt := range tests {
		if got := wantsHTML(tt.accept); got != tt.want {
			t.Errorf("wantsHTML(%q) = %v, want %v", tt.accept, got, tt.want)
		}
	}
}

func TestHandler(t *testing.T) {
	h := Handler(Info("https://ota.example.com/", "1.2.3"))

	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/html,*/*;q=0.8")
	h.ServeHTTP(rec, req)
	if ct := rec.Header().Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Fatalf("browser got Content-Type %q", ct)
	}
	body := rec.Body.String()
	for _, want := range []string{
		"otad 1.2.3", `"updateUrl": "https://ota.example.com/updates"`, "https://ota.example.com/channel_self",
		"otactl login --server https://ota.example.com --username admin", DocsURL,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page does not say %q:\n%s", want, body)
		}
	}
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("CSP = %q", csp)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("a program got Content-Type %q", ct)
	}
	var got ota.ServerInfo
	if err := json.NewDecoder(rec.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := ota.ServerInfo{Name: "otad", Description: got.Description, Version: "1.2.3", PublicURL: "https://ota.example.com",
		UpdateURL: "https://ota.example.com/updates", StatsURL: "https://ota.example.com/stats",
		ChannelURL: "https://ota.example.com/channel_self", API: "https://ota.example.com/api/v1", Docs: DocsURL}
	if got != want || got.Description == "" {
		t.Errorf("JSON = %+v, want %+v", got, want)
	}
}

// TestHandlerEscapes: the values are configuration, but the page must
// still not let one break out of its markup.
func TestHandlerEscapes(t *testing.T) {
	h := Handler(Info("https://ota.example.com", `<script>alert(1)</script>`))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Accept", "text/html")
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	if strings.Contains(string(b), "<script>alert") {
		t.Errorf("version not escaped:\n%s", b)
	}
}

// FuzzWantsHTML: any Accept header is handled without panicking, and only
// one that names an HTML type gets the page.
func FuzzWantsHTML(f *testing.F) {
	for _, s := range []string{"", "*/*", "text/html", "text/html;q=0", "application/xhtml+xml;q=0.5, */*", ";;=,,", "text/html; charset=\"x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, accept string) {
		if wantsHTML([]string{accept}) && !strings.Contains(strings.ToLower(accept), "html") {
			t.Errorf("wantsHTML(%q) = true without an HTML type", accept)
		}
	})
}
