package daemon

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

// s3Env is the environment of an otad serve with its bundles in target.
func s3Env(target testengine.S3Target, extra map[string]string) map[string]string {
	env := map[string]string{
		"OTAD_BLOB_URL":         "s3://" + target.Bucket + "/otad",
		"OTAD_S3_ENDPOINT":      target.Endpoint,
		"OTAD_S3_REGION":        target.Region,
		"OTAD_S3_PATH_STYLE":    "true",
		"AWS_ACCESS_KEY_ID":     target.AccessKey,
		"AWS_SECRET_ACCESS_KEY": target.SecretKey,
		envAdminUser:            "ci",
		envAdminPassword:        testPassword,
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// smallZip is a web bundle the plugin could install.
func smallZip(t *testing.T, version string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.Create("index.html")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "<html>"+version+"</html>")
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// deploy logs in as ci and uploads content as version to stable.
func (s *runningServer) deploy(t *testing.T, version string, content []byte) ota.UploadResult {
	t.Helper()
	raw, _ := json.Marshal(map[string]string{"username": "ci", "password": testPassword})
	resp, err := http.Post(s.url+"/api/auth/login", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	var lr ota.LoginResponse
	_ = json.NewDecoder(resp.Body).Decode(&lr)
	resp.Body.Close()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("version", version)
	_ = mw.WriteField("channel", "stable")
	fw, _ := mw.CreateFormFile("file", "bundle.zip")
	_, _ = fw.Write(content)
	_ = mw.Close()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v1/apps/com.example.app/bundles", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+lr.Token)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %s", resp.StatusCode, out)
	}
	var up ota.UploadResult
	if err := json.Unmarshal(out, &up); err != nil {
		t.Fatal(err)
	}
	return up
}

// check asks for an update as a device on 1.0.0.
func (s *runningServer) check(t *testing.T) ota.UpdateResponse {
	t.Helper()
	raw, _ := json.Marshal(ota.UpdateRequest{Platform: "android", DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11",
		AppID: "com.example.app", VersionBuild: "1.0.0", VersionName: "1.0.0", PluginVersion: "8.51.14", DefaultChannel: "stable"})
	resp, err := http.Post(s.url+"/updates", "application/json", bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ur ota.UpdateResponse
	if err := json.NewDecoder(resp.Body).Decode(&ur); err != nil {
		t.Fatal(err)
	}
	return ur
}

// TestServeOnS3 runs the real otad serve with its bundles in a bucket,
// configured by the environment only: an upload lands in the bucket and
// not in the data dir, devices are offered a presigned URL that the S3
// server answers with the bytes, and the secret key is in no log line.
// With a CDN base the offer is the CDN's URL of the content address.
func TestServeOnS3(t *testing.T) {
	target := testengine.S3(t)
	dataDir := t.TempDir()
	s := startServe(t, dataDir, s3Env(target, map[string]string{"OTAD_PRESIGN_TTL": "10m"}))
	content := smallZip(t, "1.2.0")
	up := s.deploy(t, "1.2.0", content)
	ur := s.check(t)
	u, err := url.Parse(ur.URL)
	if err != nil || ur.Version != "1.2.0" {
		t.Fatalf("/updates = %+v", ur)
	}
	ep, _ := url.Parse(target.Endpoint)
	if u.Host != ep.Host || u.Query().Get("X-Amz-Expires") != "600" {
		t.Fatalf("/updates URL %s: want a presigned URL of %s lasting 600 s", ur.URL, ep.Host)
	}
	resp, err := http.Get(ur.URL)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sum := sha256.Sum256(got)
	if resp.StatusCode != 200 || hex.EncodeToString(sum[:]) != up.Bundle.SHA256 || !bytes.Equal(got, content) {
		t.Fatalf("download from the bucket: %d, %d bytes", resp.StatusCode, len(got))
	}
	if _, err := os.Stat(filepath.Join(dataDir, "blobs")); !os.IsNotExist(err) {
		t.Errorf("otad on a bucket made a blob directory in the data dir (%v)", err)
	}
	if code := s.stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	logs := s.stderr.String()
	if strings.Contains(logs, target.SecretKey) {
		t.Fatalf("the secret key reached the log:\n%s", logs)
	}
	if !strings.Contains(logs, "bundles in object storage") || !strings.Contains(logs, "presigned URLs") {
		t.Errorf("the log does not say where bundles are and how devices get them:\n%s", logs)
	}

	// The same data dir and bucket behind a CDN.
	s = startServe(t, dataDir, s3Env(target, map[string]string{"OTAD_DOWNLOAD_BASE_URL": "https://cdn.example.com/ota/"}))
	ur = s.check(t)
	want := "https://cdn.example.com/ota/sha256/" + up.Bundle.SHA256[:2] + "/" + up.Bundle.SHA256
	if ur.URL != want {
		t.Errorf("/updates URL behind a CDN = %s, want %s", ur.URL, want)
	}
}

// TestServeS3StartErrors: a bad bucket URL is a usage error; a bucket that
// cannot be used fails the start with what to fix. No message carries
// the secret.
func TestServeS3StartErrors(t *testing.T) {
	target := testengine.S3(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name string
		env  map[string]string
		code int
		want string
	}{
		{"bad blob URL", map[string]string{"OTAD_BLOB_URL": "s3://Not_A_Bucket/x"}, exitUsage, "blob-url"},
		{"not s3", map[string]string{"OTAD_BLOB_URL": "https://bucket/x"}, exitUsage, "s3://BUCKET"},
		{"endpoint with a path", map[string]string{"OTAD_S3_ENDPOINT": target.Endpoint + "/x"}, exitUsage, "s3-endpoint"},
		{"bad path style", map[string]string{"OTAD_S3_PATH_STYLE": "sometimes"}, exitUsage, "s3-path-style"},
		{"presign TTL too long", map[string]string{"OTAD_PRESIGN_TTL": "200h"}, exitUsage, "presign-ttl"},
		{"bad CDN base", map[string]string{"OTAD_DOWNLOAD_BASE_URL": "cdn.example.com"}, exitUsage, "download-base-url"},
		{"unreachable endpoint", map[string]string{"OTAD_S3_ENDPOINT": closed}, exitError, "cannot reach"},
		{"missing bucket", map[string]string{"OTAD_BLOB_URL": "s3://ota-test-missing-bucket/otad"}, exitError, "does not exist"},
		{"wrong secret", map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong-secret-4f1a1e7c11"}, exitError, "refuses these credentials"},
		{"no credentials", map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(t.TempDir(), "none")}, exitError, "no S3 credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := s3Env(target, tt.env)
			r := otad(t, env, "", "serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir())
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", r.code, r.stderr, tt.code, tt.want)
			}
			for _, secret := range []string{target.SecretKey, env["AWS_SECRET_ACCESS_KEY"]} {
				if secret != "" && strings.Contains(r.stderr+r.stdout, secret) {
					t.Errorf("the secret reached the output:\n%s", r.stderr)
				}
			}
		})
	}
	// The S3 settings without a bucket are a mistake, not ignored.
	r := otad(t, map[string]string{"OTAD_S3_ENDPOINT": target.Endpoint}, "", "serve", "--data-dir", t.TempDir())
	if r.code != exitUsage || !strings.Contains(r.stderr, "blob-url") {
		t.Errorf("--s3-endpoint without --blob-url: exit %d, %q", r.code, r.stderr)
	}
}

// TestBackupRefusesBucket: otad backup and restore copy a local data dir;
// with bundles in a bucket they say so instead of writing or restoring an
// archive without the bundles.
func TestBackupRefusesBucket(t *testing.T) {
	env := map[string]string{"OTAD_BLOB_URL": "s3://ota-bucket/otad"}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"backup", "--data-dir", dir, filepath.Join(t.TempDir(), "b.tar")},
		{"restore", "--data-dir", filepath.Join(dir, "new"), filepath.Join(t.TempDir(), "b.tar")},
	} {
		r := otad(t, env, "", args...)
		if r.code != exitError || !strings.Contains(r.stderr, "bundles are in s3://ota-bucket/otad") || !strings.Contains(r.stderr, "docs/operations.md") {
			t.Errorf("otad %s: exit %d, %q", args[0], r.code, r.stderr)
		}
	}
}
