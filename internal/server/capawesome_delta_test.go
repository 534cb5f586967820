package server

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/bundle"
	cawdevice "github.com/otaship/ota/internal/capawesome/device"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/testengine"
	"github.com/otaship/ota/pkg/ota"
)

var (
	capawesomeKeyOnce sync.Once
	capawesomeKey     *rsa.PrivateKey
	capawesomeKeyErr  error
)

// signingKey is a signing key for @capawesome/capacitor-live-update,
// made once for the package's tests.
func signingKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	capawesomeKeyOnce.Do(func() { capawesomeKey, capawesomeKeyErr = bundle.GenerateSigningKey() })
	if capawesomeKeyErr != nil {
		t.Fatal(capawesomeKeyErr)
	}
	return capawesomeKey
}

// TestCapawesomeSignedDeltaUpload: a signed delta release must be signed
// in full (zip, every file, the manifest file) or its files not at all;
// anything in between is refused and activates nothing.
func TestCapawesomeSignedDeltaUpload(t *testing.T) {
	env, base, _ := e2eServer(t)
	c := newTestClient(t, base, env.token)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, c, testApp, "production", "1.0.1", dir, nil)

	webDir(t, dir, 2)
	files, err := delta.Scan(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	up, err := delta.UploadFiles(ctx, delta.UploadOptions{Client: c, AppID: testApp, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	var z bytes.Buffer
	if _, err := bundle.Zip(ctx, dir, &z, bundle.ZipOptions{}); err != nil {
		t.Fatal(err)
	}
	key := signingKey(t)
	sign := func(b []byte) string {
		s, err := bundle.Sign(bytes.NewReader(b), key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	zipSig := sign(z.Bytes())
	signed := func() []ota.ManifestFile {
		m := make([]ota.ManifestFile, len(up.Manifest))
		copy(m, up.Manifest)
		for i, f := range files {
			b, err := os.ReadFile(f.Disk)
			if err != nil {
				t.Fatal(err)
			}
			m[i].Signature = sign(b)
		}
		return m
	}
	good := signed()
	manifestSig := sign(ota.CapawesomeManifest(good))
	for _, tt := range []struct {
		name          string
		manifest      []ota.ManifestFile
		sig, manifSig string
		status        int
	}{
		{"one file unsigned", func() []ota.ManifestFile { m := signed(); m[1].Signature = ""; return m }(), zipSig, manifestSig, 422},
		{"no manifest signature", good, zipSig, "", 400},
		{"no zip signature", good, "", manifestSig, 400},
		{"a manifest signature without signed files", up.Manifest, zipSig, manifestSig, 400},
		{"a manifest signature of a zip-only release", nil, zipSig, manifestSig, 400},
		{"a manifest signature that is not base64", good, zipSig, "not base64!", 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Upload(ctx, ota.UploadRequest{
				AppID: testApp, Channel: "production", Version: "1.0.2", Manifest: tt.manifest,
				Signature: tt.sig, ManifestSignature: tt.manifSig, File: bytes.NewReader(z.Bytes()), Size: int64(z.Len()),
			})
			var ae *ota.APIError
			if !errors.As(err, &ae) || ae.Status != tt.status {
				t.Fatalf("upload: %v; want %d", err, tt.status)
			}
			if ch, err := env.store.GetChannel(ctx, testApp, "production"); err != nil || ch.Active != "1.0.1" {
				t.Errorf("production serves %q after a refused release (%v); want 1.0.1", ch.Active, err)
			}
		})
	}
	res, err := c.Upload(ctx, ota.UploadRequest{
		AppID: testApp, Channel: "production", Version: "1.0.2", Manifest: good,
		Signature: zipSig, ManifestSignature: manifestSig, File: bytes.NewReader(z.Bytes()), Size: int64(z.Len()),
	})
	if err != nil || res.Bundle.ManifestSignature != manifestSig || res.Bundle.Signature != zipSig {
		t.Fatalf("signed release: %+v, %v", res.Bundle, err)
	}
	// A device with the key installs it as a manifest bundle.
	d := &cawdevice.Device{Base: base, Platform: cawdevice.Android, AppID: testApp, DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11",
		AppVersionName: "1.0.0", PluginVersion: "8.4.1", Dir: t.TempDir(), PublicKey: &key.PublicKey}
	if r, err := d.Sync(ctx); err != nil || r.Latest.ArtifactType != ota.ArtifactManifest || r.Next != "1.0.2" {
		t.Fatalf("device with the key: %+v, %v", r, err)
	}
}

// TestCapawesomeDeltaS3: with the files in a bucket and presigned
// downloads, a Capawesome device still installs a manifest bundle from
// otad's files route (the plugin verifies each file from the headers of
// the response it ends with, which a redirect to the bucket would lose),
// while a zip goes through the Locator as always: presigned.
func TestCapawesomeDeltaS3(t *testing.T) {
	s := newS3Server(t, testengine.S3(t), presigned(time.Hour, time.Now, nil))
	dir := filepath.Join(t.TempDir(), "web")
	webDir(t, dir, 1)
	deltaDeploy(t, newTestClient(t, s.base, s.env.token), testApp, "production", "1.0.1", dir, nil)
	s3URL, _ := url.Parse(s.target.Endpoint)
	ctx := context.Background()
	for _, p := range []cawdevice.Platform{cawdevice.Android, cawdevice.IOS} {
		d := &cawdevice.Device{Base: s.base, Platform: p, AppID: testApp, DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11",
			AppVersionName: "1.0.0", PluginVersion: "8.4.1", Dir: t.TempDir()}
		r, err := d.Sync(ctx)
		if err != nil || r.Latest.ArtifactType != ota.ArtifactManifest || !strings.HasPrefix(r.Latest.URL, s.base+"/v1/apps/") || r.Fetched == 0 {
			t.Fatalf("%s: %+v, %v; want a manifest bundle from otad's files route", p, r, err)
		}
		d.Restart()
		for _, f := range mustScan(t, dir) {
			want, _ := os.ReadFile(f.Disk)
			if got, err := d.ReadFile(f.Path); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s differs from the web dir (%v)", p, f.Path, err)
			}
		}
		old := &cawdevice.Device{Base: s.base, Platform: p, AppID: testApp, DeviceID: "6aa0b2a5-2c3e-4d5b-9a65-2f4f1a1e7c11",
			AppVersionName: "1.0.0", PluginVersion: "6.4.2", Dir: t.TempDir()}
		r, err = old.Sync(ctx)
		if err != nil || r.Latest.ArtifactType != ota.ArtifactZip || r.Next != "1.0.1" {
			t.Fatalf("%s 6.4.2: %+v, %v; want the zip", p, r, err)
		}
		if u, err := url.Parse(r.Latest.URL); err != nil || u.Host != s3URL.Host || u.Query().Get("X-Amz-Signature") == "" {
			t.Errorf("%s 6.4.2: zip URL %s, want a presigned URL of the bucket", p, r.Latest.URL)
		}
	}
}

func mustScan(t *testing.T, dir string) []delta.File {
	t.Helper()
	files, err := delta.Scan(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return files
}
