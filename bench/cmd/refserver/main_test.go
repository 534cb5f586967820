package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestEchoHandler(t *testing.T) {
	body := []byte(`{"version":"1.0.99"}` + "\n")
	srv := httptest.NewServer(echoHandler(body))
	defer srv.Close()
	tests := []struct {
		method, path string
		status       int
	}{
		{"POST", "/updates", 200},
		{"POST", "/stats", 200},
		{"GET", "/updates", 405},
		{"POST", "/other", 404},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s %s: HTTP %d, want %d", tt.method, tt.path, resp.StatusCode, tt.status)
			continue
		}
		if tt.status != 200 {
			continue
		}
		if string(got) != string(body) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: %q (%s), want the constant body as JSON", tt.method, tt.path, got, resp.Header.Get("Content-Type"))
		}
		if resp.Header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id: the RequestID middleware is missing", tt.method, tt.path)
		}
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	for _, args := range [][]string{nil, {"nope"}, {"echo", "--body", "/does/not/exist"}, {"file", "--path", "/does/not/exist"}} {
		if err := run(args); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
