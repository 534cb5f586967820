package capawesome_test

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/otaship/ota/internal/capawesome/device"
	"github.com/otaship/ota/internal/server"
	"github.com/otaship/ota/internal/webbundle"
	"github.com/otaship/ota/pkg/ota"
)

// readTree reads every file under dir, by slash path.
func readTree(tb testing.TB, dir string) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// BenchmarkManifestBundle measures a manifest bundle on the benchmarks'
// generated web bundle (webbundle: 1,500 files, 25 MiB), whose second
// release changes the 40 KiB entry chunk and index.html, both deployed
// with otactl deploy web --delta:
//
//   - sync/*: one device's install of the second release, reporting the
//     bytes it downloaded (wire-B/op) against the zip's (zip-B): from a
//     built-in first release with its manifest, and with nothing to
//     compare with;
//   - check/*: the latest-bundle check answering the manifest bundle
//     against the same check answering the zip (a plugin before 6.5.0);
//   - file/*: one file (the 40 KiB entry chunk) from this plugin's files
//     route, Brotli and raw, against the other plugin's file route.
//
// The check and file ones alternate with their reference and report the
// best block of each (see alternate).
//
// go test -run XXX -bench BenchmarkManifestBundle -benchtime 3x ./internal/capawesome/
func BenchmarkManifestBundle(b *testing.B) {
	root := b.TempDir()
	v1, v2 := filepath.Join(root, "v1"), filepath.Join(root, "v2")
	tree, err := webbundle.Generate(v1, webbundle.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := os.CopyFS(v2, os.DirFS(v1)); err != nil {
		b.Fatal(err)
	}
	_, _, entry, err := webbundle.Next(v2)
	if err != nil {
		b.Fatal(err)
	}
	e := newEnv(b, func(c *server.Config) { c.MaxUploadBytes = 64 << 20 })
	p := e.project()
	deploy := func(version, dir string) int64 {
		if err := os.RemoveAll(p.web); err != nil {
			b.Fatal(err)
		}
		if err := os.CopyFS(p.web, os.DirFS(dir)); err != nil {
			b.Fatal(err)
		}
		p.otactl(0, "deploy", "web", version, "--skip-build", "--delta", "--channel", "production")
		bn, err := e.store.GetBundle(b.Context(), testApp, ota.KindWeb, version)
		if err != nil {
			b.Fatal(err)
		}
		return bn.Size
	}
	deploy("1.0.1", v1)
	zipSize := deploy("1.0.2", v2)
	builtin := builtinOf(b, readTree(b, v1))
	b.Logf("tree: %d files, %d bytes; zip of 1.0.2: %d bytes", tree.Files, tree.Bytes, zipSize)

	for _, bc := range []struct {
		name     string
		platform device.Platform
		plugin   string
		builtin  map[string][]byte
	}{
		{"sync/android-8.4.1-builtin-manifest", device.Android, "8.4.1", builtin},
		{"sync/ios-builtin-manifest", device.IOS, "8.4.1", builtin},
		{"sync/android-8.3.0-builtin-manifest", device.Android, "8.3.0", builtin},
		{"sync/android-8.4.1-nothing-to-compare", device.Android, "8.4.1", nil},
		{"sync/ios-nothing-to-compare", device.IOS, "8.4.1", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var wire int64
			n := 0
			for b.Loop() {
				d := e.device(bc.platform, deviceID)
				d.PluginVersion, d.Builtin, d.Dir = bc.plugin, bc.builtin, b.TempDir()
				res, err := d.Sync(b.Context())
				if err != nil || res.Next != "1.0.2" {
					b.Fatalf("sync: %+v, %v", res, err)
				}
				wire += res.WireBytes
				n++
			}
			b.ReportMetric(float64(wire)/float64(n), "wire-B/op")
			b.ReportMetric(float64(zipSize), "zip-B")
			b.ReportMetric(100*float64(wire)/float64(n)/float64(zipSize), "%-of-zip")
		})
	}

	h := e.srv.Handler()
	get := func(target string, header ...string) func() {
		return func() {
			req := httptest.NewRequest(http.MethodGet, target, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("%s: %d %s", target, rec.Code, rec.Body)
			}
		}
	}
	latest := "/v1/apps/" + testApp + "/bundles/latest?"
	b.Run("check/manifest-vs-zip-answer", func(b *testing.B) {
		alternate(b, get(latest+iosQuery(nil)), get(latest+iosQuery(map[string]string{"pluginVersion": "6.4.2"})))
	})
	entryData, err := os.ReadFile(filepath.Join(v2, filepath.FromSlash(entry)))
	if err != nil {
		b.Fatal(err)
	}
	files := "/v1/apps/" + testApp + "/bundles/1.0.2/files?href=" + entry
	capgo := get("/api/ota/file/" + sha(entryData))
	b.Run("file/capawesome-raw-vs-capgo-route", func(b *testing.B) { alternate(b, get(files, "Accept-Encoding", "gzip"), capgo) })
	b.Run("file/capawesome-brotli-vs-capgo-route", func(b *testing.B) { alternate(b, get(files, "Accept-Encoding", "br,gzip"), capgo) })
}

// alternate runs a and ref in turns, blocks of 20 each per iteration, and
// reports the best block's time per call of each and their ratio: the
// machine is shared, and the fastest block is the one least disturbed.
func alternate(b *testing.B, a, ref func()) {
	const block = 20
	best := [2]time.Duration{time.Hour, time.Hour}
	for b.Loop() {
		for i, fn := range []func(){a, ref} {
			t0 := time.Now()
			for range block {
				fn()
			}
			best[i] = min(best[i], time.Since(t0)/block)
		}
	}
	b.ReportMetric(float64(best[0].Nanoseconds()), "best-ns/call")
	b.ReportMetric(float64(best[1].Nanoseconds()), "ref-best-ns/call")
	b.ReportMetric(float64(best[0])/float64(best[1]), "ratio")
}
