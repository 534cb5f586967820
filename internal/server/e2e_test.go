package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// e2eServer runs env's server on a real loopback listener. After
// env.reopen, call the returned function to serve the new server.
func e2eServer(t *testing.T, opts ...func(*Config)) (env *testEnv, base string, swap func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	base = "http://" + ln.Addr().String()
	env = newTestEnv(t, append(opts, func(c *Config) { c.PublicURL = base })...)
	var current atomic.Pointer[Server]
	current.Store(env.srv)
	hs := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			current.Load().Handler().ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return env, base, func() { current.Store(env.srv) }
}

func postJSON(t *testing.T, url string, body any, out any) int {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("POST %s: decode %q: %v", url, raw, err)
		}
	}
	return resp.StatusCode
}

// curlUpload sends the form exactly as the old deploy script's
// curl -F file=@… -F version=… -F channel=stable -F checksum=… does:
// file first, with curl's part headers.
func curlUpload(t *testing.T, url, token string, zipName string, zipData []byte, fields [][2]string) *http.Response {
	t.Helper()
	const boundary = "------------------------a1b2c3d4e5f60718"
	var b bytes.Buffer
	fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\nContent-Type: application/zip\r\n\r\n", boundary, zipName)
	b.Write(zipData)
	b.WriteString("\r\n")
	for _, f := range fields {
		fmt.Fprintf(&b, "--%s\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n", boundary, f[0], f[1])
	}
	fmt.Fprintf(&b, "--%s--\r\n", boundary)
	req, err := http.NewRequest(http.MethodPost, url, &b)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
	req.Header.Set("Expect", "100-continue")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return resp
}

func download(t *testing.T, url string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, body
}

// TestEndToEnd follows the old deploy script and a device over real HTTP,
// then restarts the server from its data directory.
func TestEndToEnd(t *testing.T) {
	env, base, swap := e2eServer(t)

	// 1. Log in as the script does and read .token.
	var lr ota.LoginResponse
	if code := postJSON(t, base+"/api/auth/login", map[string]string{"username": testUser, "password": testPassword}, &lr); code != 200 || lr.Token == "" {
		t.Fatalf("login: status %d, token %q", code, lr.Token)
	}

	// 2. Upload with the script's exact form.
	bundle := zipOf(map[string]string{
		"index.html":        "<!doctype html><script src=app.js></script>",
		"app.js":            strings.Repeat("console.log('ota');\n", 500),
		"assets/styles.css": "body{}",
	})
	sum := sha256.Sum256(bundle)
	checksum := hex.EncodeToString(sum[:])
	resp := curlUpload(t, base+"/api/ota/admin/ota/upload", lr.Token, "stable-1.2.0.zip", bundle,
		[][2]string{{"version", "1.2.0"}, {"channel", "stable"}, {"checksum", checksum}})
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: status %d, body %s", resp.StatusCode, raw)
	}
	var up ota.UploadResult
	if err := json.Unmarshal(raw, &up); err != nil {
		t.Fatal(err)
	}
	if up.Bundle.URL != base+"/api/ota/bundle/"+checksum+".zip" {
		t.Fatalf("bundle url = %q", up.Bundle.URL)
	}

	// checkDevice plays a device on 1.0.0 polling for updates and
	// downloading what it is offered, whole and resumed.
	checkDevice := func(stage string) {
		t.Helper()
		dev := ota.UpdateRequest{
			Platform: "android", DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11", AppID: testApp,
			VersionBuild: "1.0.0", VersionCode: "1", VersionOS: "14", VersionName: "1.0.0", PluginVersion: "8.51.14",
		}
		var ur ota.UpdateResponse
		if code := postJSON(t, base+"/updates", dev, &ur); code != 200 {
			t.Fatalf("%s: /updates status %d", stage, code)
		}
		if ur.Version != "1.2.0" || ur.Checksum != checksum || ur.URL != up.Bundle.URL || ur.Error != "" {
			t.Fatalf("%s: /updates answered %+v, want 1.2.0 at %s", stage, ur, up.Bundle.URL)
		}
		resp, body := download(t, ur.URL)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: download status %d", stage, resp.StatusCode)
		}
		got := sha256.Sum256(body)
		if hex.EncodeToString(got[:]) != ur.Checksum {
			t.Fatalf("%s: downloaded sha256 %x, offered %s", stage, got, ur.Checksum)
		}
		half := len(bundle) / 2
		resp, body = download(t, ur.URL, "Range", fmt.Sprintf("bytes=%d-", half))
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, bundle[half:]) {
			t.Fatalf("%s: resumed download: status %d, %d bytes", stage, resp.StatusCode, len(body))
		}
		resp, body = download(t, base+"/api/ota/bundle/stable-1.2.0.zip")
		if resp.StatusCode != 200 || !bytes.Equal(body, bundle) {
			t.Fatalf("%s: legacy alias: status %d", stage, resp.StatusCode)
		}
	}
	checkDevice("after upload")

	// 3. Restart from the same data directory: everything is still there.
	env.reopen()
	swap()
	checkDevice("after restart")

	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/apps/"+testApp+"/history", nil)
	req.Header.Set("Authorization", "Bearer "+lr.Token) // tokens survive a restart
	hresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var page ota.HistoryPage
	if err := json.NewDecoder(hresp.Body).Decode(&page); err != nil || hresp.StatusCode != 200 {
		t.Fatalf("history after restart: status %d, err %v", hresp.StatusCode, err)
	}
	found := false
	for _, ev := range page.Events {
		if ev.Type == ota.EventUpload && ev.Version == "1.2.0" && ev.SHA256 == checksum && ev.Actor == testUser {
			found = true
		}
	}
	if !found {
		t.Errorf("history after restart lacks the upload: %+v", page.Events)
	}
}
