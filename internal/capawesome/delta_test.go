package capawesome_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capawesome/device"
	"github.com/otaship/ota/internal/cli"
	"github.com/otaship/ota/internal/cli/iostreams"
	"github.com/otaship/ota/internal/delta"
	"github.com/otaship/ota/internal/delta/deltatest"
	"github.com/otaship/ota/pkg/ota"
)

// Manifest bundles from delta releases (docs/protocol-capawesome.md §4,
// docs/delta.md): deployed with the real otactl (deploy web --delta,
// in-process, over HTTPS), installed by simulated devices of both
// platforms through otad's real router.

// writeWeb writes the web dir of revision rev into dir, replacing it, and
// returns its files. Between revisions the entry chunk (renamed, Brotli
// sized), index.html and a small text file change; a vendor chunk and a
// stylesheet (both Brotli sized), an image (incompressible), a name with
// a space, a '+' and non-ASCII letters, a file named *.br, an empty file
// and a nested one stay.
func writeWeb(t testing.TB, dir string, rev int) map[string][]byte {
	t.Helper()
	rng := rand.New(rand.NewChaCha8([32]byte{byte(rev)}))
	fixed := rand.New(rand.NewChaCha8([32]byte{200}))
	text := func(r *rand.Rand, n int) []byte {
		words := []string{"function", "return", "const", "let", "if", "else", "this", "=>", "{", "}", ";", "value"}
		var b bytes.Buffer
		for b.Len() < n {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		return b.Bytes()[:n]
	}
	noise := func(r *rand.Rand, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	main := fmt.Sprintf("assets/main-%04d.js", rev)
	files := map[string][]byte{
		"assets/vendor-5d41.js":    text(fixed, 48<<10),
		"assets/a b+c ünï.css":     text(fixed, 12<<10),
		"assets/img/logo.png":      noise(fixed, 16<<10),
		"assets/data.br":           noise(fixed, 3<<10),
		"assets/empty.txt":         {},
		"assets/deep/a/b/c.json":   []byte(`{"deep":true}`),
		"assets/changed.txt":       fmt.Appendf(nil, "revision %d\n", rev),
		main:                       append(text(rng, 24<<10), fmt.Sprintf("/* rev %d */ LiveUpdate.ready();", rev)...),
		"index.html":               fmt.Appendf(nil, `<!doctype html><html><head><script src="%s"></script></head><body>rev %d</body></html>`, main, rev),
		"assets/unchanged-tiny.js": []byte("export const x = 1;"),
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// builtinOf is a built-in bundle of files, with the manifest a native
// build ships when the web dir had one generated before npx cap sync.
func builtinOf(t testing.TB, files map[string][]byte) map[string][]byte {
	t.Helper()
	out := make(map[string][]byte, len(files)+1)
	var list []ota.ManifestFile
	for name, b := range files {
		out[name] = b
		list = append(list, ota.ManifestFile{Path: name, SHA256: sha(b), Size: int64(len(b))})
	}
	slices.SortFunc(list, func(a, b ota.ManifestFile) int { return strings.Compare(a.Path, b.Path) })
	out[ota.CapawesomeManifestFile] = ota.CapawesomeManifest(list)
	return out
}

// project is a Capacitor project with a built web dir, for otactl deploy
// web --skip-build.
type project struct {
	e   *env
	dir string
	web string // its webDir
}

func (e *env) project() *project {
	e.t.Helper()
	dir := e.t.TempDir()
	for name, body := range map[string]string{
		"capacitor.config.json": `{"appId": "` + testApp + `", "appName": "demo", "webDir": "www"}`,
		"package.json":          `{"name": "demo", "version": "1.0.0"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
	return &project{e: e, dir: dir, web: filepath.Join(dir, "www")}
}

// otactl runs the real otactl in the project, logged in to the env's
// otad, and returns its output; a non-zero exit fails the test unless
// wantCode says otherwise.
func (p *project) otactl(wantCode int, args ...string) (stdout, stderr string) {
	t := p.e.t
	t.Helper()
	home := t.TempDir()
	env := map[string]string{
		"OTACTL_SERVER": p.e.base, "OTACTL_TOKEN": p.e.token, "HOME": home,
		"XDG_CONFIG_HOME": filepath.Join(home, ".config"), "NO_COLOR": "1",
	}
	io, _, out, errOut := iostreams.Test()
	f := &cli.Factory{
		IO: io, Getenv: func(k string) string { return env[k] }, Now: time.Now, HTTPClient: p.e.https,
		Runner: cli.ExecRunner{}, LookPath: exec.LookPath, WorkDir: p.dir,
	}
	if code := cli.Run(t.Context(), f, args); code != wantCode {
		t.Fatalf("otactl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out, errOut)
	}
	return out.String(), errOut.String()
}

// deployDelta writes revision rev to the web dir and deploys it as
// version with otactl deploy web --delta and the extra flags.
func (p *project) deployDelta(version string, rev int, flags ...string) map[string][]byte {
	p.e.t.Helper()
	files := writeWeb(p.e.t, p.web, rev)
	p.otactl(0, append([]string{"deploy", "web", version, "--skip-build", "--delta", "--channel", "production"}, flags...)...)
	return files
}

// runsExactly checks that the device runs a bundle holding exactly files
// and the manifest file of them that otad serves.
func runsExactly(t *testing.T, d *device.Device, files map[string][]byte) {
	t.Helper()
	root := filepath.Join(d.Dir, "bundles", d.Current())
	got := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := builtinOf(t, files)
	for name, b := range want {
		if g, ok := got[name]; !ok || !bytes.Equal(g, b) {
			t.Errorf("bundle %s: %s = %d bytes (present %t), want %d bytes as deployed", d.Current(), name, len(g), ok, len(b))
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("bundle %s has %s, which was not deployed", d.Current(), name)
		}
	}
}

// rawSize is the bytes of the named files.
func rawSize(files map[string][]byte, names ...string) int64 {
	var n int64
	for _, name := range names {
		n += int64(len(files[name]))
	}
	return n
}

// TestDeltaManifestBundles: a release deployed with otactl deploy web
// --delta reaches Android and iOS devices as a manifest bundle. A device
// on its built-in bundle (which ships a manifest) copies what it has and
// fetches what changed; the next release is fetched against the
// downloaded bundle; both end byte-identical to the web dir deployed.
// Brotli-stored files travel compressed to HTTP stacks that ask for it
// (Android from 8.4.0, iOS), raw to the others (Android before 8.4.0).
func TestDeltaManifestBundles(t *testing.T) {
	e := newEnv(t)
	p := e.project()
	rev1 := writeWeb(t, filepath.Join(t.TempDir(), "rev1"), 1)
	rev2 := p.deployDelta("1.0.1", 2)
	changed12 := []string{"index.html", "assets/main-0002.js", "assets/changed.txt"}

	type run struct {
		name   string
		p      device.Platform
		plugin string
	}
	runs := []run{{"android", device.Android, "8.4.1"}, {"ios", device.IOS, "8.4.1"}, {"android-8.3.0", device.Android, "8.3.0"}}
	devices := map[string]*device.Device{}
	wire := map[string]int64{}
	for _, r := range runs {
		t.Run(r.name+"/from-builtin", func(t *testing.T) {
			d := e.device(r.p, deviceID)
			d.PluginVersion = r.plugin
			d.Builtin = builtinOf(t, rev1)
			devices[r.name] = d
			res, err := d.Sync(t.Context())
			if err != nil {
				t.Fatalf("sync: %v", err)
			}
			if res.Latest.ArtifactType != ota.ArtifactManifest || res.Latest.Checksum != "" || res.Latest.Signature != "" ||
				res.Latest.URL != e.base+"/v1/apps/"+testApp+"/bundles/1.0.1/files" {
				t.Fatalf("answer %+v, want a manifest bundle at otad's files URL, without the zip's checksum", res.Latest)
			}
			if res.Next != "1.0.1" || res.Fetched != len(changed12) || res.Copied != len(rev2)-len(changed12) {
				t.Fatalf("sync = %+v; want 1.0.1 with %d files fetched and %d copied from the built-in bundle", res, len(changed12), len(rev2)-len(changed12))
			}
			wire[r.name] = res.WireBytes
			d.Restart()
			runsExactly(t, d, rev2)
		})
	}
	// The 24 KiB entry chunk is the bulk of what changed; Brotli makes it
	// a fraction, for the stacks that asked.
	raw := rawSize(rev2, changed12...)
	for _, name := range []string{"android", "ios"} {
		if wire[name] == 0 || wire[name] > raw/2 {
			t.Errorf("%s downloaded %d bytes for %d bytes of changed files; want them Brotli-compressed", name, wire[name], raw)
		}
	}
	if w := wire["android-8.3.0"]; w < raw {
		t.Errorf("Android 8.3.0 downloaded %d bytes for %d bytes of changed files; it cannot decode Brotli, so want them raw", w, raw)
	}

	rev3 := p.deployDelta("1.0.2", 3)
	changed23 := []string{"index.html", "assets/main-0003.js", "assets/changed.txt"}
	for _, r := range runs {
		t.Run(r.name+"/from-download", func(t *testing.T) {
			d := devices[r.name]
			if d == nil {
				t.Skip("the first sync failed")
			}
			res, err := d.Sync(t.Context())
			if err != nil || res.Next != "1.0.2" || res.Fetched != len(changed23) || res.Copied != len(rev3)-len(changed23) {
				t.Fatalf("sync = %+v, %v; want 1.0.2 with %d fetched and the rest copied from 1.0.1", res, err, len(changed23))
			}
			d.Restart()
			runsExactly(t, d, rev3)
			// Up to date: nothing more to do.
			if res, err := d.Sync(t.Context()); err != nil || res.Status != 404 {
				t.Errorf("sync on the active bundle = %+v, %v; want 404", res, err)
			}
		})
	}

	// A device with nothing built in fetches every file.
	t.Run("nothing-built-in", func(t *testing.T) {
		d := e.device(device.IOS, "0b7e0c1a-1111-4222-8333-444455556666")
		res, err := d.Sync(t.Context())
		if err != nil || res.Fetched != len(rev3) || res.Copied != 0 {
			t.Fatalf("sync = %+v, %v; want all %d files fetched", res, err, len(rev3))
		}
		d.Restart()
		runsExactly(t, d, rev3)
	})
}

// TestDeltaBothPlugins: one otactl deploy web --delta serves both
// plugins. Through a staged rollout a @capgo/capacitor-updater device and
// a @capawesome/capacitor-live-update device with the same device id get
// the same release, and both end with exactly its web dir.
func TestDeltaBothPlugins(t *testing.T) {
	e := newEnv(t)
	p := e.project()
	webs := map[string]map[string][]byte{}
	webs["1.0.1"] = p.deployDelta("1.0.1", 1)
	webs["1.0.2"] = p.deployDelta("1.0.2", 2, "--rollout", "50")
	dirs := map[string]string{}
	for v, files := range webs {
		dirs[v] = t.TempDir()
		for name, b := range files {
			path := filepath.Join(dirs[v], filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]int{}
	for i := range 12 {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012d", i*7919, i)
		capgo := e.capgo(id, "1.0.0", "")
		if len(capgo.Manifest) == 0 {
			t.Fatalf("device %s: the Capgo answer %+v has no manifest", id, capgo)
		}
		cd := &deltatest.Device{Platform: "android", Builtin: t.TempDir(), Cache: t.TempDir(), HTTP: e.https}
		dest := filepath.Join(t.TempDir(), "capgo")
		if r, err := cd.Install(t.Context(), capgo, dest); err != nil {
			t.Fatalf("device %s: Capgo install of %s: %v (%v)", id, capgo.Version, err, r.Stats)
		}
		if diff, err := deltatest.SameTree(dirs[capgo.Version], dest); err != nil || diff != "" {
			t.Fatalf("device %s: the Capgo device's %s differs from the web dir: %s %v", id, capgo.Version, diff, err)
		}
		for _, pl := range platforms {
			d := e.device(pl, id)
			res, err := d.Sync(t.Context())
			if err != nil || res.Latest == nil || res.Latest.ArtifactType != ota.ArtifactManifest {
				t.Fatalf("device %s on %s: %+v, %v; want a manifest bundle", id, pl, res, err)
			}
			if res.Next != capgo.Version {
				t.Fatalf("device %s: Capgo gets %s, %s gets %s", id, capgo.Version, pl, res.Next)
			}
			d.Restart()
			runsExactly(t, d, webs[capgo.Version])
		}
		got[capgo.Version]++
	}
	if got["1.0.1"] == 0 || got["1.0.2"] == 0 {
		t.Fatalf("releases offered: %v; the test needs devices on both sides of the 50%% rollout", got)
	}
}

// writeKey writes k as a private key file otactl signs with.
func writeKey(t *testing.T, dir string) string {
	t.Helper()
	pemBytes, err := bundle.PrivateKeyPEM(signKey(t))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "signing.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestDeltaSigned: otactl deploy web --delta --sign-key signs the zip,
// every file and the manifest file. A device with the publicKey installs
// the manifest bundle verifying each, one with another key refuses it,
// one without a key installs it. A delta release whose zip alone is
// signed (deployed by an otactl that did not sign files) is offered as
// its signed zip.
func TestDeltaSigned(t *testing.T) {
	e := newEnv(t)
	p := e.project()
	key := writeKey(t, p.dir)
	rev1 := writeWeb(t, filepath.Join(t.TempDir(), "rev1"), 1)
	rev2 := p.deployDelta("1.0.1", 2, "--sign-key", key)
	other, err := bundle.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, pl := range platforms {
		t.Run(pl.String(), func(t *testing.T) {
			d := e.device(pl, deviceID)
			d.PublicKey = &signKey(t).PublicKey
			d.Builtin = builtinOf(t, rev1)
			res, err := d.Sync(t.Context())
			if err != nil || res.Latest.ArtifactType != ota.ArtifactManifest || res.Fetched != 3 {
				t.Fatalf("device with the key: %+v, %v; want the manifest bundle, 3 files fetched and verified", res, err)
			}
			d.Restart()
			runsExactly(t, d, rev2)

			wrong := e.device(pl, deviceID)
			wrong.PublicKey = &other.PublicKey
			if _, err := wrong.Sync(t.Context()); !errors.Is(err, device.ErrSignatureFailed) {
				t.Errorf("device with another key: %v, want %v", err, device.ErrSignatureFailed)
			}
			plain := e.device(pl, deviceID)
			if res, err := plain.Sync(t.Context()); err != nil || res.Next != "1.0.1" || res.Fetched != len(rev2) {
				t.Errorf("device without a key: %+v, %v", res, err)
			}
		})
	}

	// A delta release with only its zip signed.
	dir := filepath.Join(t.TempDir(), "rev3")
	writeWeb(t, dir, 3)
	apiDeltaDeploy(t, e, "1.0.2", dir, true)
	for _, pl := range platforms {
		d := e.device(pl, deviceID)
		d.PublicKey = &signKey(t).PublicKey
		res, err := d.Sync(t.Context())
		if err != nil || res.Latest.ArtifactType != ota.ArtifactZip || res.Latest.Signature == "" || res.Next != "1.0.2" {
			t.Errorf("%s: zip-signed delta release = %+v, %v; want its signed zip", pl, res, err)
		}
	}
}

// apiDeltaDeploy deploys dir as a delta release through the API, the zip
// signed when sign is set but not the files.
func apiDeltaDeploy(t testing.TB, e *env, version, dir string, sign bool) {
	t.Helper()
	ctx := t.Context()
	files, err := delta.Scan(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	zipPath := filepath.Join(t.TempDir(), "bundle.zip")
	z, err := bundle.ZipFile(ctx, dir, zipPath, bundle.ZipOptions{})
	if err != nil {
		t.Fatal(err)
	}
	up, err := delta.UploadFiles(ctx, delta.UploadOptions{Client: e.admin, AppID: testApp, Files: files})
	if err != nil {
		t.Fatal(err)
	}
	req := ota.UploadRequest{AppID: testApp, Channel: "production", Version: version, Checksum: z.SHA256, Size: z.Size, Manifest: up.Manifest}
	if sign {
		if req.Signature, err = bundle.SignFile(zipPath, signKey(t)); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	req.File = f
	if _, err := e.admin.Upload(ctx, req); err != nil {
		t.Fatalf("upload %s: %v", version, err)
	}
}

// blobPath is where the env's blob store keeps key.
func (e *env) blobPath(key string) string { return filepath.Join(e.blobs, "sha256", key[:2], key) }

// TestDeltaRefusals: a device refuses a manifest bundle whose file does
// not hash to its x-checksum (§5.3) and one whose file cannot be
// downloaded (§5.1: any non-2xx), keeps running what it ran and sets no
// next bundle.
func TestDeltaRefusals(t *testing.T) {
	for _, tt := range []struct {
		name   string
		damage func(e *env, files map[string][]byte)
		want   error
	}{
		{"bytes that do not match x-checksum", func(e *env, files map[string][]byte) {
			// A file under 8 KiB has no Brotli form: every device gets
			// these bytes.
			path := e.blobPath(sha(files["assets/changed.txt"]))
			if err := os.WriteFile(path, []byte("tampered!!!\n"), 0o644); err != nil {
				e.t.Fatal(err)
			}
		}, device.ErrChecksumMismatch},
		{"a file the store lost", func(e *env, files map[string][]byte) {
			recs, err := e.store.DeltaFiles(e.t.Context(), testApp, []string{sha(files["assets/main-0002.js"])})
			if err != nil || len(recs) != 1 {
				e.t.Fatalf("delta file record: %v, %v", recs, err)
			}
			for _, r := range recs {
				for _, k := range []string{r.SHA256, r.Br} {
					if k != "" {
						if err := os.Remove(e.blobPath(k)); err != nil {
							e.t.Fatal(err)
						}
					}
				}
			}
		}, device.ErrDownloadFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			p := e.project()
			rev1 := writeWeb(t, filepath.Join(t.TempDir(), "rev1"), 1)
			rev2 := p.deployDelta("1.0.1", 2)
			tt.damage(e, rev2)
			for _, pl := range platforms {
				d := e.device(pl, deviceID)
				d.Builtin = builtinOf(t, rev1)
				_, err := d.Sync(t.Context())
				if !errors.Is(err, tt.want) {
					t.Errorf("%s: sync error %v, want %v", pl, err, tt.want)
				}
				if d.NextBundle() != "" || d.Current() != "" {
					t.Errorf("%s: next %q, current %q; want the built-in bundle kept", pl, d.NextBundle(), d.Current())
				}
			}
		})
	}
}

// TestDeltaZipFallbacks: what is not a manifest bundle to a device gets
// the zip or nothing. Plugins before 6.5.0 get the zip of a delta release;
// an encrypted delta release is refused (the plugin cannot decrypt, and
// its zip is encrypted too).
func TestDeltaZipFallbacks(t *testing.T) {
	e := newEnv(t)
	p := e.project()
	rev1 := p.deployDelta("1.0.1", 1)
	for plugin, want := range map[string]string{"6.4.2": ota.ArtifactZip, "6.5.0": ota.ArtifactManifest, "garbage": ota.ArtifactZip} {
		for _, pl := range platforms {
			d := e.device(pl, deviceID)
			d.PluginVersion = plugin
			res, err := d.Sync(t.Context())
			if err != nil || res.Latest.ArtifactType != want || res.Next != "1.0.1" {
				t.Fatalf("%s %s: %+v, %v; want a %s bundle", pl, plugin, res, err, want)
			}
			d.Restart()
			if want == ota.ArtifactZip {
				if b, err := d.ReadFile("index.html"); err != nil || !bytes.Equal(b, rev1["index.html"]) {
					t.Errorf("%s %s: index.html = %q, %v", pl, plugin, b, err)
				}
			} else {
				runsExactly(t, d, rev1)
			}
		}
	}

	p.otactl(0, "key", "create", "--out", filepath.Join(p.dir, "capgo.pem"))
	p.deployDelta("1.0.2", 2, "--encrypt-key", filepath.Join(p.dir, "capgo.pem"))
	status, _, body := e.get("/v1/apps/"+testApp+"/bundles/latest?"+iosQuery(nil), "X-Capawesome-Device-Id", deviceID)
	if m := jsonObject(t, body); status != 404 || m["error"] != ota.UpdEncryptionUnsupported {
		t.Errorf("encrypted delta release: %d %s; want 404 %s", status, body, ota.UpdEncryptionUnsupported)
	}
	if status, _, _ := e.get("/v1/apps/" + testApp + "/bundles/1.0.2/files?href=index.html"); status != 404 {
		t.Errorf("files of the encrypted release: status %d, want 404", status)
	}
}

// TestDeltaFilesRoute checks the files route per clause of §4 and §5.2:
// the manifest and each file with the checksum (and signature) headers in
// lower case on the wire, Brotli and gzip only for clients that ask, a
// manifest file in the web dir replaced by otad's, a release no channel
// serves any more still downloadable, a zip-only release not at all.
func TestDeltaFilesRoute(t *testing.T) {
	e := newEnv(t)
	p := e.project()
	files := writeWeb(t, p.web, 1)
	// A manifest the team generated for its native build (stale here):
	// the release lists it, devices get otad's instead.
	stale := []byte(`[{"href":"index.html","checksum":"0000","sizeInBytes":1}]`)
	if err := os.WriteFile(filepath.Join(p.web, ota.CapawesomeManifestFile), stale, 0o644); err != nil {
		t.Fatal(err)
	}
	p.otactl(0, "deploy", "web", "1.0.1", "--skip-build", "--delta", "--channel", "production")
	base := "/v1/apps/" + testApp + "/bundles/1.0.1/files"

	// The manifest: every file but the stale manifest, gzipped on request.
	status, h, plain := e.get(base+"?href="+ota.CapawesomeManifestFile, "Accept-Encoding", "identity")
	var items []ota.ManifestItem
	if err := json.Unmarshal(plain, &items); status != 200 || err != nil || len(items) != len(files) {
		t.Fatalf("manifest: %d, %d items (%v); want %d", status, len(items), err, len(files))
	}
	for _, it := range items {
		if it.Href == ota.CapawesomeManifestFile || it.Checksum != sha(files[it.Href]) || it.SizeInBytes != int64(len(files[it.Href])) {
			t.Errorf("manifest item %+v", it)
		}
	}
	if h.Get("X-Checksum") != sha(plain) || h.Get("Content-Encoding") != "" || h.Get("Vary") != "Accept-Encoding" {
		t.Errorf("manifest headers %v", h)
	}
	status, h, zipped := e.get(base+"?href="+ota.CapawesomeManifestFile, "Accept-Encoding", "gzip")
	if status != 200 || h.Get("Content-Encoding") != "gzip" || len(zipped) >= len(plain) || h.Get("X-Checksum") != sha(plain) {
		t.Errorf("gzipped manifest: %d, %v, %d bytes of %d", status, h, len(zipped), len(plain))
	}

	// A Brotli-stored file: br only when asked, raw otherwise, the same
	// checksum of the file's bytes either way.
	vendor := "assets/vendor-5d41.js"
	for accept, wantEnc := range map[string]string{"br,gzip": "br", "gzip": "", "": "", "br;q=0, gzip": "", "*": "br"} {
		status, h, body := e.get(base+"?href="+vendor, "Accept-Encoding", accept)
		if status != 200 || h.Get("Content-Encoding") != wantEnc || h.Get("X-Checksum") != sha(files[vendor]) {
			t.Errorf("Accept-Encoding %q: %d, Content-Encoding %q, x-checksum %q", accept, status, h.Get("Content-Encoding"), h.Get("X-Checksum"))
		}
		if wantEnc == "" && !bytes.Equal(body, files[vendor]) {
			t.Errorf("Accept-Encoding %q: the raw body differs from the file", accept)
		}
		if wantEnc == "br" {
			dec, err := io.ReadAll(delta.NewBrotliReader(bytes.NewReader(body)))
			if err != nil || !bytes.Equal(dec, files[vendor]) || len(body) >= len(files[vendor]) {
				t.Errorf("Accept-Encoding %q: the Brotli body (%d bytes) does not decode to the file: %v", accept, len(body), err)
			}
		}
	}
	// A name with a space, '+' and non-ASCII letters, as iOS writes it
	// ('+' left as it is) and as Android does (%2B).
	css := "assets/a b+c ünï.css"
	for _, q := range []string{"assets/a%20b+c%20%C3%BCn%C3%AF.css", "assets/a%20b%2Bc%20%C3%BCn%C3%AF.css"} {
		if status, _, body := e.get(base+"?href="+q, "Accept-Encoding", "identity"); status != 200 || !bytes.Equal(body, files[css]) {
			t.Errorf("href=%s: %d, %d bytes", q, status, len(body))
		}
	}

	// The header names go out in lower case (iOS before 7.3.0 looks them
	// up so).
	raw := rawGet(t, e, base+"?href=index.html")
	if !strings.Contains(raw, "\r\nx-checksum: "+sha(files["index.html"])+"\r\n") || strings.Contains(raw, "X-Checksum") {
		t.Errorf("raw response head:\n%s\nwant a lower-case x-checksum header", raw)
	}

	for path, want := range map[string]int{
		base + "?href=nope.js":  404,
		base:                    400,
		base + "?href=a&href=b": 400,
		"/v1/apps/" + testApp + "/bundles/9.9.9/files?href=index.html": 404,
	} {
		if status, _, body := e.get(path); status != want {
			t.Errorf("%s: %d %s, want %d", path, status, body, want)
		}
	}

	// A zip-only release has no files; a delta release no channel serves
	// any more still has them (a device may be halfway through).
	e.deploy("production", "1.0.2", deployOpts{content: zipOf(map[string]string{"index.html": "<html>LiveUpdate.ready()</html>"})})
	if status, _, _ := e.get("/v1/apps/" + testApp + "/bundles/1.0.2/files?href=index.html"); status != 404 {
		t.Errorf("a zip-only release's files: %d, want 404", status)
	}
	if status, _, body := e.get(base + "?href=index.html"); status != 200 || !bytes.Equal(body, files["index.html"]) {
		t.Errorf("a release no longer served: %d", status)
	}
}

// rawGet sends a GET over HTTP/1.1 on its own TLS connection and returns
// the response head as it came on the wire (Go's client canonicalizes
// header names).
func rawGet(t *testing.T, e *env, path string) string {
	t.Helper()
	cfg := e.https.Transport.(*http.Transport).TLSClientConfig.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	host := strings.TrimPrefix(e.base, "https://")
	cfg.ServerName, _, _ = strings.Cut(host, ":")
	conn, err := tls.Dial("tcp", host, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, host); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	head, _, _ := strings.Cut(string(b), "\r\n\r\n")
	return head
}

// TestLatestHandlerAllocsManifest keeps a manifest-bundle answer as light
// as a zip answer (whose own budget TestLatestHandlerAllocs keeps against
// /updates): offering a delta release's files costs a few allocations
// (its files URL) and no more.
func TestLatestHandlerAllocsManifest(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation count")
	}
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "web")
	writeWeb(t, dir, 1)
	apiDeltaDeploy(t, e, "1.0.1", dir, false)
	h := e.srv.Handler()
	count := func(plugin, want string) float64 {
		target := "/v1/apps/" + testApp + "/bundles/latest?" + iosQuery(map[string]string{"pluginVersion": plugin})
		return testing.AllocsPerRun(200, func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
			if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"artifactType":"`+want+`"`) {
				t.Fatalf("status %d: %s; want a %s answer", rec.Code, rec.Body, want)
			}
		})
	}
	zip, manifest := count("6.4.2", ota.ArtifactZip), count("8.4.1", ota.ArtifactManifest)
	t.Logf("allocations per check: zip answer %.0f, manifest answer %.0f", zip, manifest)
	if manifest > zip+3 {
		t.Errorf("a manifest answer allocates %.0f times, a zip answer %.0f; want at most 3 more", manifest, zip)
	}
}
