package ota

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestClientBackup(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/backup" || r.Method != http.MethodGet {
			http.NotFound(w, r)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer user":
			w.Header().Set("Content-Type", "application/x-tar")
			io.WriteString(w, "tar bytes")
		case "Bearer ci":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `{"error":"forbidden","message":"CI token \"x\" cannot download backups"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer hs.Close()

	c, err := NewClient(hs.URL, WithToken("user"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := c.Backup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(body)
	body.Close()
	if err != nil || string(b) != "tar bytes" {
		t.Errorf("body = %q, %v", b, err)
	}

	c.Token = "ci"
	_, err = c.Backup(t.Context())
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden || ae.Code != "forbidden" {
		t.Errorf("err = %#v, want the 403 envelope", err)
	}
	c.Token = ""
	if _, err := c.Backup(t.Context()); !errors.As(err, &ae) || ae.Status != http.StatusUnauthorized {
		t.Errorf("err = %v, want 401", err)
	}
}
