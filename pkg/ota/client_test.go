package ota_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// recorded is what the fake server saw of one request.
type recorded struct {
	method, path, query, auth, contentType string
	contentLength                          int64
	body                                   []byte
}

func fakeServer(t *testing.T, status int, answer string) (*ota.Client, *recorded) {
	t.Helper()
	rec := &recorded{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.method, rec.path, rec.query = r.Method, r.URL.EscapedPath(), r.URL.RawQuery
		rec.auth, rec.contentType, rec.contentLength = r.Header.Get("Authorization"), r.Header.Get("Content-Type"), r.ContentLength
		rec.body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	c, err := ota.NewClient(srv.URL+"/", ota.WithToken("tok"), ota.WithUserAgent("test"))
	if err != nil {
		t.Fatal(err)
	}
	return c, rec
}

func TestNewClientRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "ota.example.com", "ftp://x", "http://"} {
		if _, err := ota.NewClient(u); err == nil {
			t.Errorf("NewClient(%q) = nil error, want one", u)
		}
	}
}

func TestClientRoutes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		call       func(c *ota.Client) error
		answer     string
		wantMethod string
		wantPath   string
		wantQuery  string
		wantBody   string
	}{
		{"login", func(c *ota.Client) error { _, err := c.Login(ctx, "admin", "pw"); return err },
			`{"token":"t"}`, "POST", "/api/v1/auth/login", "", `{"username":"admin","password":"pw"}`},
		{"rollback", func(c *ota.Client) error { _, err := c.Rollback(ctx, "com.x", "stable", "1.0.0"); return err },
			`{}`, "POST", "/api/v1/apps/com.x/channels/stable/rollback", "", `{"to":"1.0.0"}`},
		{"rollback previous", func(c *ota.Client) error { _, err := c.Rollback(ctx, "com.x", "stable", ""); return err },
			`{}`, "POST", "/api/v1/apps/com.x/channels/stable/rollback", "", `{}`},
		{"promote", func(c *ota.Client) error {
			_, err := c.Promote(ctx, "com.x", "stable", ota.PromoteRequest{From: "beta", Version: "1.2.0"})
			return err
		}, `{}`, "POST", "/api/v1/apps/com.x/channels/stable/promote", "", `{"from":"beta","version":"1.2.0"}`},
		{"delete escapes segments", func(c *ota.Client) error { _, err := c.DeleteRelease(ctx, "com.x", "a/b", "1.0.0+x"); return err },
			`{}`, "DELETE", "/api/v1/apps/com.x/channels/a%2Fb/releases/1.0.0+x", "", ``},
		{"apps", func(c *ota.Client) error { _, err := c.Apps(ctx); return err }, `[]`, "GET", "/api/v1/apps", "", ``},
		{"app", func(c *ota.Client) error { _, err := c.App(ctx, "com.x"); return err }, `{}`, "GET", "/api/v1/apps/com.x", "", ``},
		{"channels", func(c *ota.Client) error { _, err := c.Channels(ctx, "com.x"); return err }, `[]`, "GET", "/api/v1/apps/com.x/channels", "", ``},
		{"channel", func(c *ota.Client) error { _, err := c.Channel(ctx, "com.x", "beta"); return err }, `{}`, "GET", "/api/v1/apps/com.x/channels/beta", "", ``},
		{"patch", func(c *ota.Client) error {
			yes := true
			_, err := c.PatchChannel(ctx, "com.x", "beta", ota.ChannelPolicyPatch{AllowSelfSet: &yes})
			return err
		}, `{}`, "PATCH", "/api/v1/apps/com.x/channels/beta", "", `{"allow_self_set":true}`},
		{"bundles", func(c *ota.Client) error { _, err := c.Bundles(ctx, "com.x"); return err }, `[]`, "GET", "/api/v1/apps/com.x/bundles", "", ``},
		{"history", func(c *ota.Client) error { _, err := c.History(ctx, "com.x", "stable", 42, 10); return err },
			`{"events":[]}`, "GET", "/api/v1/apps/com.x/history", "before=42&channel=stable&limit=10", ``},
		{"history all apps", func(c *ota.Client) error { _, err := c.History(ctx, "", "", 0, 0); return err },
			`{"events":[]}`, "GET", "/api/v1/history", "", ``},
		{"set override", func(c *ota.Client) error { return c.SetOverride(ctx, "com.x", "dev-1", "beta") },
			`{}`, "PUT", "/api/v1/apps/com.x/devices/dev-1/channel", "", `{"channel":"beta"}`},
		{"delete override", func(c *ota.Client) error { return c.DeleteOverride(ctx, "com.x", "dev-1") },
			``, "DELETE", "/api/v1/apps/com.x/devices/dev-1/channel", "", ``},
		{"me", func(c *ota.Client) error { _, err := c.Me(ctx); return err }, `{"username":"admin"}`, "GET", "/api/v1/me", "", ``},
		{"version", func(c *ota.Client) error { _, err := c.Version(ctx); return err }, `{"version":"1"}`, "GET", "/version", "", ``},
		{"check update", func(c *ota.Client) error {
			_, err := c.CheckUpdate(ctx, ota.UpdateRequest{AppID: "com.x", VersionName: "builtin"})
			return err
		}, `{"error":"no_new_version_available","kind":"up_to_date"}`, "POST", "/updates", "", ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, rec := fakeServer(t, http.StatusOK, tt.answer)
			if err := tt.call(c); err != nil {
				t.Fatalf("call: %v", err)
			}
			if rec.method != tt.wantMethod || rec.path != tt.wantPath {
				t.Errorf("request = %s %s, want %s %s", rec.method, rec.path, tt.wantMethod, tt.wantPath)
			}
			if rec.query != tt.wantQuery {
				t.Errorf("query = %q, want %q", rec.query, tt.wantQuery)
			}
			if tt.wantBody != "" && string(rec.body) != tt.wantBody {
				t.Errorf("body = %s, want %s", rec.body, tt.wantBody)
			}
			if rec.auth != "Bearer tok" {
				t.Errorf("Authorization = %q, want the bearer token", rec.auth)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		answer     string
		wantCode   string
		wantSubstr string
	}{
		{"envelope", 409, `{"error":"version_conflict","message":"version 1.0.0 exists with other bytes"}`, ota.ErrCodeConflict, "exists with other bytes"},
		{"unauthorized", 401, `{"error":"unauthorized","message":"missing or invalid token"}`, ota.ErrCodeUnauthorized, "invalid token"},
		{"html from a proxy", 502, `<html>bad gateway</html>`, "", "502 Bad Gateway: <html>bad gateway</html>"},
		{"empty body", 500, ``, "", "server answered 500 Internal Server Error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _ := fakeServer(t, tt.status, tt.answer)
			_, err := c.Apps(context.Background())
			var ae *ota.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v, want *ota.APIError", err)
			}
			if ae.Status != tt.status || ae.Code != tt.wantCode {
				t.Errorf("got status %d code %q, want %d %q", ae.Status, ae.Code, tt.status, tt.wantCode)
			}
			if !strings.Contains(err.Error(), tt.wantSubstr) {
				t.Errorf("error %q does not contain %q", err, tt.wantSubstr)
			}
		})
	}
}

func TestClientUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, _ := ota.NewClient(url)
	_, err := c.Apps(context.Background())
	var ae *ota.APIError
	if err == nil || errors.As(err, &ae) {
		t.Fatalf("err = %v, want a transport error", err)
	}
}

func TestClientBadJSONAnswer(t *testing.T) {
	c, _ := fakeServer(t, 200, `{not json`)
	if _, err := c.App(context.Background(), "com.x"); err == nil || !strings.Contains(err.Error(), "decode answer") {
		t.Fatalf("err = %v, want a decode error", err)
	}
}

func TestUpload(t *testing.T) {
	content := bytes.Repeat([]byte("PK\x03\x04 bundle bytes "), 10000)
	sum := sha256.Sum256(content)
	for _, tt := range []struct {
		name   string
		size   int64
		wantCL int64 // -1: chunked
		enc    *ota.BundleEncryption
	}{
		{"known size sends Content-Length", int64(len(content)), 0, nil},
		{"unknown size streams chunked", 0, -1, nil},
		{"encrypted", int64(len(content)), 0, &ota.BundleEncryption{SessionKey: "aXY=:a2V5", EncryptedChecksum: "0f0f", KeyID: "MIIB"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got struct {
				fields map[string]string
				file   []byte
				name   string
				cl     int64
			}
			got.fields = map[string]string{}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/api/v1/apps/com.example.app/bundles" || r.Method != http.MethodPost {
					http.Error(w, "wrong route "+r.URL.Path, 404)
					return
				}
				got.cl = r.ContentLength
				mr, err := r.MultipartReader()
				if err != nil {
					http.Error(w, err.Error(), 400)
					return
				}
				for {
					p, err := mr.NextPart()
					if err == io.EOF {
						break
					}
					if err != nil {
						http.Error(w, err.Error(), 400)
						return
					}
					b, _ := io.ReadAll(p)
					if p.FormName() == "file" {
						got.file, got.name = b, p.FileName()
					} else {
						got.fields[p.FormName()] = string(b)
					}
				}
				w.WriteHeader(http.StatusCreated)
				_ = json.NewEncoder(w).Encode(ota.UploadResult{Channel: "beta", Created: true, Bundle: ota.Bundle{Version: "1.2.0"}})
			}))
			defer srv.Close()
			c, _ := ota.NewClient(srv.URL)
			var last int64
			res, err := c.Upload(context.Background(), ota.UploadRequest{
				AppID: "com.example.app", Channel: "beta", Version: "1.2.0", Checksum: hex.EncodeToString(sum[:]),
				Notes: "fix", File: bytes.NewReader(content), Size: tt.size, Progress: func(n int64) { last = n },
				Encryption: tt.enc,
			})
			if err != nil {
				t.Fatalf("Upload: %v", err)
			}
			if !res.Created || res.Channel != "beta" {
				t.Errorf("result = %+v", res)
			}
			if !bytes.Equal(got.file, content) || got.name != "bundle.zip" {
				t.Errorf("server got %d bytes named %q, want %d named bundle.zip", len(got.file), got.name, len(content))
			}
			want := map[string]string{"version": "1.2.0", "kind": "web", "channel": "beta", "checksum": hex.EncodeToString(sum[:]), "notes": "fix"}
			for k, v := range want {
				if got.fields[k] != v {
					t.Errorf("field %s = %q, want %q", k, got.fields[k], v)
				}
			}
			if _, ok := got.fields["min_native"]; ok {
				t.Error("empty min_native was sent")
			}
			encFields := map[string]string{}
			if tt.enc != nil {
				encFields = map[string]string{"session_key": tt.enc.SessionKey, "encrypted_checksum": tt.enc.EncryptedChecksum, "key_id": tt.enc.KeyID}
			}
			for _, k := range []string{"session_key", "encrypted_checksum", "key_id"} {
				if v, ok := got.fields[k]; v != encFields[k] || ok != (tt.enc != nil) {
					t.Errorf("field %s = %q (sent %v), want %q", k, v, ok, encFields[k])
				}
			}
			if tt.wantCL == -1 && got.cl != -1 {
				t.Errorf("Content-Length = %d, want chunked", got.cl)
			}
			if tt.wantCL == 0 && got.cl <= int64(len(content)) {
				t.Errorf("Content-Length = %d, want more than the file's %d", got.cl, len(content))
			}
			if last != int64(len(content)) {
				t.Errorf("last progress = %d, want %d", last, len(content))
			}
		})
	}
}

func TestUploadShortFile(t *testing.T) {
	c, _ := fakeServer(t, 201, `{}`)
	_, err := c.Upload(context.Background(), ota.UploadRequest{AppID: "a", Version: "1", File: strings.NewReader("abc"), Size: 10})
	if err == nil {
		t.Fatal("upload of a file shorter than Size succeeded")
	}
}

func TestUploadNoFile(t *testing.T) {
	c, _ := fakeServer(t, 201, `{}`)
	if _, err := c.Upload(context.Background(), ota.UploadRequest{AppID: "a", Version: "1"}); err == nil {
		t.Fatal("upload without a file succeeded")
	}
}

// answerTransport answers every request with a fixed status and body,
// without a network, so the fuzzer runs fast.
type answerTransport struct {
	status int
	body   []byte
}

func (a answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: a.status, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(a.body)), Request: r,
	}, nil
}

// FuzzClientAnswer feeds arbitrary server answers to the client: it must
// never panic, and every non-2xx answer must come back as an *APIError
// with that status.
func FuzzClientAnswer(f *testing.F) {
	f.Add(200, []byte(`[{"app_id":"com.x","default_channel":"stable"}]`))
	f.Add(401, []byte(`{"error":"unauthorized","message":"missing or invalid token; run: otactl login"}`))
	f.Add(409, []byte(`{"error":"version_conflict"}`))
	f.Add(500, []byte(`<html>oops</html>`))
	f.Add(200, []byte(`{"events":[{"seq":1}],"next":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			t.Skip()
		}
		c, err := ota.NewClient("http://otad.test", ota.WithHTTPClient(&http.Client{Transport: answerTransport{status, body}}))
		if err != nil {
			t.Fatal(err)
		}
		_, err1 := c.Apps(context.Background())
		_, err2 := c.History(context.Background(), "com.x", "", 0, 0)
		if status >= 200 && status <= 299 {
			return
		}
		for _, err := range []error{err1, err2} {
			var ae *ota.APIError
			if !errors.As(err, &ae) || ae.Status != status {
				t.Fatalf("status %d answered %v, want an *APIError with that status", status, err)
			}
			if len(ae.Message) > maxMessage(len(body)) {
				t.Fatalf("message of %d bytes from a %d-byte body", len(ae.Message), len(body))
			}
		}
	})
}

// maxMessage bounds an error message built from a body of n bytes: the
// envelope's message, or a short excerpt of anything else.
func maxMessage(n int) int { return n + 300 }
