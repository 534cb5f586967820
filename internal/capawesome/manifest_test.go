package capawesome_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capawesome"
	"github.com/otaship/ota/internal/capawesome/device"
	"github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// The handlers' side of the manifest seam, over an in-memory Manifests
// (otad's own, over delta releases, is tested through the real router in
// delta_test.go): the handlers and the simulated devices are the real
// ones.

// memManifests serves bundles' files from memory, signed when key is set.
type memManifests struct {
	files map[string]map[string]string // version → path → content
	key   *rsa.PrivateKey
	// unsigned leaves this path unsigned (a source that must not claim Has).
	unsigned string
}

func (m *memManifests) Has(_ *update.AppView, b *ota.Bundle) bool { return m.files[b.Version] != nil }

func (m *memManifests) Files(_ context.Context, _ *update.AppView, b *ota.Bundle) (capawesome.Listing, error) {
	var l capawesome.Listing
	if m.files[b.Version] == nil {
		return l, capawesome.ErrNotManifest
	}
	paths := make([]string, 0, len(m.files[b.Version]))
	for p := range m.files[b.Version] {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range paths {
		c := []byte(m.files[b.Version][p])
		f := capawesome.File{Path: p, SHA256: sha(c), Size: int64(len(c))}
		if m.key != nil && p != m.unsigned {
			f.Signature = mustSign(m.key, c)
		}
		l.Files = append(l.Files, f)
	}
	if m.key != nil {
		l.Signature = mustSign(m.key, capawesome.ManifestJSON(l.Files))
	}
	return l, nil
}

func (m *memManifests) Open(_ context.Context, b *ota.Bundle, f capawesome.File, _ bool) (io.ReadSeekCloser, error) {
	c, ok := m.files[b.Version][f.Path]
	if !ok {
		return nil, capawesome.ErrNoFile
	}
	return nopCloser{strings.NewReader(c)}, nil
}

type nopCloser struct{ io.ReadSeeker }

func (nopCloser) Close() error { return nil }

func mustSign(k *rsa.PrivateKey, b []byte) string {
	s, err := bundle.Sign(bytes.NewReader(b), k)
	if err != nil {
		panic(err)
	}
	return s
}

// snapBackend serves a fixed snapshot.
type snapBackend struct{ snap *update.Snapshot }

func (b snapBackend) Snapshot(context.Context, string) (*update.Snapshot, error) { return b.snap, nil }
func (b snapBackend) Failures() update.FailureMemory                             { return nil }
func (b snapBackend) OfferURL(d *update.Decision) string                         { return d.Response.URL }

func (b snapBackend) Checked(*update.Snapshot, *ota.UpdateRequest, *update.Decision) {
}

// manifestServer is the plugin's routes over HTTPS with production
// serving active and an earlier release, all of them in m.
func manifestServer(t *testing.T, m *memManifests, active string) (base string, client *http.Client, set func(active string)) {
	t.Helper()
	e := echo.New()
	var backend snapBackend
	hs := httptest.NewUnstartedServer(e)
	hs.StartTLS()
	t.Cleanup(hs.Close)
	build := func(active string) {
		var bundles []ota.Bundle
		var releases []ota.Release
		for v := range m.files {
			bundles = append(bundles, ota.Bundle{AppID: testApp, Version: v, Kind: ota.KindWeb, SHA256: sha([]byte(v))})
			releases = append(releases, ota.Release{Version: v})
		}
		slices.SortFunc(releases, func(a, b ota.Release) int { return strings.Compare(a.Version, b.Version) })
		backend.snap = update.Build(store.State{
			Apps: []ota.App{{ID: testApp, DefaultChannel: "production"}},
			Channels: []ota.Channel{{AppID: testApp, ID: 1, Name: "production", Kind: ota.KindWeb, Public: true,
				Active: active, Releases: releases, Policy: ota.DefaultChannelPolicy()}},
			Bundles: bundles,
		}, func(b *ota.Bundle) download.Link { return download.Link{URL: hs.URL + "/zip/" + b.SHA256} })
	}
	build(active)
	capawesome.Register(e, capawesome.Options{Backend: &backend, PublicURL: hs.URL, Manifests: m})
	return hs.URL, hs.Client(), build
}

func TestManifestBundles(t *testing.T) {
	builtin := map[string]string{"index.html": "<html>1.0.0</html>", "assets/logo.svg": "<svg/>", "assets/a b+c.js": "old"}
	v101 := map[string]string{"index.html": "<html>1.0.1</html>", "assets/logo.svg": "<svg/>", "assets/a b+c.js": "new", "app.js": "ready()"}
	v102 := map[string]string{"index.html": "<html>1.0.1</html>", "assets/logo.svg": "<svg/>", "assets/a b+c.js": "new", "app.js": "ready(); v2"}
	m := &memManifests{files: map[string]map[string]string{"1.0.1": v101, "1.0.2": v102}}
	base, client, setActive := manifestServer(t, m, "1.0.1")
	for _, p := range []device.Platform{device.Android, device.IOS} {
		t.Run(p.String(), func(t *testing.T) {
			setActive("1.0.1")
			d := &device.Device{Base: base, Client: client, Platform: p, AppID: testApp, DeviceID: deviceID,
				AppVersionName: "1.0.0", AppVersionCode: "1", PluginVersion: "8.4.1", Dir: t.TempDir(), Builtin: map[string][]byte{}}
			for path, c := range builtin {
				d.Builtin[path] = []byte(c)
			}
			// The built-in bundle ships its manifest, as the plugin expects.
			var files []capawesome.File
			for _, path := range []string{"assets/a b+c.js", "assets/logo.svg", "index.html"} {
				files = append(files, capawesome.File{Path: path, SHA256: sha([]byte(builtin[path])), Size: int64(len(builtin[path]))})
			}
			d.Builtin[ota.CapawesomeManifestFile] = capawesome.ManifestJSON(files)

			res, err := d.Sync(t.Context())
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if res.Latest.ArtifactType != ota.ArtifactManifest || res.Latest.Checksum != "" || res.Latest.Signature != "" ||
				!strings.HasSuffix(res.Latest.URL, "/v1/apps/"+testApp+"/bundles/1.0.1/files") {
				t.Errorf("answer %+v, want a manifest bundle with the files URL and no zip checksum", res.Latest)
			}
			// logo.svg is copied; index.html, app.js and a b+c.js changed.
			if res.Next != "1.0.1" || res.Copied != 1 || res.Fetched != 3 {
				t.Fatalf("first sync = %+v, want 1.0.1 with 1 copied and 3 fetched", res)
			}
			d.Restart()
			for path, want := range v101 {
				if got, err := d.ReadFile(path); err != nil || string(got) != want {
					t.Errorf("%s = %q, %v; want %q", path, got, err, want)
				}
			}
			// Only the changed file is fetched for the next bundle.
			setActive("1.0.2")
			res, err = d.Sync(t.Context())
			if err != nil || res.Next != "1.0.2" || res.Fetched != 1 || res.Copied != 3 {
				t.Fatalf("second sync = %+v, %v; want 1 fetched, 3 copied", res, err)
			}
		})
	}
}

func TestManifestSigned(t *testing.T) {
	files := map[string]string{"index.html": "<html>1.0.1</html>", "app.js": "ready()"}
	for _, tt := range []struct {
		name     string
		unsigned string
		wantErr  error
	}{
		{"every file signed", "", nil},
		{"one file unsigned", "app.js", device.ErrSignatureMissing},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := &memManifests{files: map[string]map[string]string{"1.0.1": files}, key: signKey(t), unsigned: tt.unsigned}
			base, client, _ := manifestServer(t, m, "1.0.1")
			for _, p := range []device.Platform{device.Android, device.IOS} {
				d := &device.Device{Base: base, Client: client, Platform: p, AppID: testApp, DeviceID: deviceID,
					AppVersionName: "1.0.0", PluginVersion: "8.4.1", Dir: t.TempDir(), PublicKey: &signKey(t).PublicKey}
				_, err := d.Sync(t.Context())
				if !errors.Is(err, tt.wantErr) && (err != nil || tt.wantErr != nil) {
					t.Errorf("%s: sync error %v, want %v", p, err, tt.wantErr)
				}
			}
		})
	}
}

func TestManifestFileRoute(t *testing.T) {
	m := &memManifests{files: map[string]map[string]string{"1.0.1": {"index.html": "<html/>"}}}
	base, client, _ := manifestServer(t, m, "1.0.1")
	get := func(path string) (int, http.Header, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	files := "/v1/apps/" + testApp + "/bundles/1.0.1/files"
	status, h, body := get(files + "?href=" + ota.CapawesomeManifestFile)
	if status != http.StatusOK || h.Get("X-Checksum") != sha([]byte(body)) || !strings.HasPrefix(body, `[{"href":"index.html"`) {
		t.Errorf("manifest: %d %q (X-Checksum %q)", status, body, h.Get("X-Checksum"))
	}
	status, h, body = get(files + "?href=index.html")
	if status != http.StatusOK || body != "<html/>" || h.Get("X-Checksum") != sha([]byte("<html/>")) {
		t.Errorf("file: %d %q %v", status, body, h)
	}
	for path, want := range map[string]int{
		files + "?href=nope.js":  http.StatusNotFound,
		files:                    http.StatusBadRequest,
		files + "?href=a&href=b": http.StatusBadRequest,
		files + "?href=%zz":      http.StatusBadRequest,
		"/v1/apps/" + testApp + "/bundles/9.9.9/files?href=index.html": http.StatusNotFound,
	} {
		if status, _, body := get(path); status != want {
			t.Errorf("%s: %d %s, want %d", path, status, body, want)
		}
	}
}
