package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/otaship/ota/bench/internal/load"
	"github.com/otaship/ota/internal/delta/deltatest"
	"github.com/otaship/ota/internal/webbundle"
	"github.com/otaship/ota/pkg/ota"
)

// Apps of the delta phase: the same two releases deployed with --delta,
// and as plain zips for the references.
const (
	deltaApp = "com.bench.delta"
	zipApp   = "com.bench.zip"
)

// phaseDelta: delta releases (issue #9). On the generated bundle, one
// ~40 KB JS chunk changes (new content, new hashed name) and index.html
// names the new one; both releases are deployed with otactl deploy web
// --delta. Measured: what an Android and an iOS device download for the
// second release, by the plugin's algorithm (internal/delta/deltatest),
// against the zip; the second deploy's time against the first's; and
// /updates throughput when the answer is a manifest rather than a zip.
func (b *bench) phaseDelta(ctx context.Context) error {
	root := b.path("delta")
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	v1, v2 := filepath.Join(root, "v1", "www"), filepath.Join(root, "v2", "www")
	changed, err := makeDeltaPair(b.cfg.web, v1, v2)
	if err != nil {
		return err
	}
	b.notef("delta: the second release changes %s (%s) and index.html", changed.name, fmtKB(changed.size))

	otad, err := b.startOtad(ctx, "otad-delta", filepath.Join(root, "data"))
	if err != nil {
		return err
	}
	defer otad.stop()
	token, err := login(otad.addr)
	if err != nil {
		return err
	}
	env := []string{"OTACTL_SERVER=http://" + otad.addr, "OTACTL_TOKEN=" + token, "NO_COLOR=1", "HOME=" + root}

	// Deploys: delta releases of deltaApp, zip releases of zipApp.
	type deployed struct {
		took time.Duration
		out  deployOutput
	}
	deploy := func(app, dir, version string, delta bool) (deployed, error) {
		if err := writeProject(filepath.Dir(dir), app); err != nil {
			return deployed{}, err
		}
		args := []string{"deploy", "web", "--skip-build", version, "-o", "json", "--delta=" + fmt.Sprint(delta)}
		cmd := exec.CommandContext(ctx, filepath.Join(b.cfg.bin, "otactl"), args...)
		cmd.Dir, cmd.Env = filepath.Dir(dir), append(os.Environ(), env...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		t0 := time.Now()
		err := cmd.Run()
		d := deployed{took: time.Since(t0)}
		if err != nil {
			return d, fmt.Errorf("otactl deploy web %s of %s: %w: %s", version, app, err, lastLines(stderr.Bytes(), 6))
		}
		if err := json.Unmarshal(stdout.Bytes(), &d.out); err != nil {
			return d, fmt.Errorf("otactl deploy web -o json: %w: %s", err, stdout.Bytes())
		}
		logf("  deployed %s %s (delta %v) in %s: %s", app, version, delta, fmtDur(d.took), strings.TrimSpace(lastLines(stderr.Bytes(), 2)))
		return d, nil
	}
	d1, err := deploy(deltaApp, v1, "1.0.1", true)
	if err != nil {
		return err
	}
	d2, err := deploy(deltaApp, v2, "1.0.2", true)
	if err != nil {
		return err
	}
	z1, err := deploy(zipApp, v1, "1.0.1", false)
	if err != nil {
		return err
	}
	z2, err := deploy(zipApp, v2, "1.0.2", false)
	if err != nil {
		return err
	}
	ratio := d2.took.Seconds() / d1.took.Seconds()
	b.add(row{
		target:    "deploy --delta: second release (one chunk changed) vs the first",
		measured:  fmt.Sprintf("%s, %d of %d files uploaded (%s)", fmtDur(d2.took), d2.out.Delta.Uploaded, d2.out.Delta.Files, fmtKB(d2.out.Delta.UploadedBytes)),
		reference: fmt.Sprintf("%s, %d uploaded (%s)", fmtDur(d1.took), d1.out.Delta.Uploaded, fmtMB(d1.out.Delta.UploadedBytes)),
		ratio:     fmt.Sprintf("%.2f", ratio),
		threshold: "< 1 (only the changed files)",
		ok:        ratio < 1 && d2.out.Delta.Uploaded <= 3,
	})
	b.notef("delta: the same releases deployed as plain zips took %s and %s (zip %s); a delta deploy also zips, then sends what the server lacks",
		fmtDur(z1.took), fmtDur(z2.took), fmtMB(z2.out.Size))

	// What devices download for 1.0.2.
	zipSize := d2.out.Size
	rt := hostRewrite{addr: otad.addr}
	answer := func(platform string) (ota.UpdateResponse, error) {
		body := strings.Replace(string(updatesBody(deltaApp)), `"platform":"ios"`, `"platform":"`+platform+`"`, 1)
		status, raw, err := load.Do(otad.addr, load.Request{Method: "POST", Path: "/updates", ContentType: "application/json", Body: []byte(body)})
		if err != nil || status != 200 {
			return ota.UpdateResponse{}, fmt.Errorf("update check: %d %v", status, err)
		}
		var r ota.UpdateResponse
		if err := json.Unmarshal(raw, &r); err != nil || len(r.Manifest) == 0 {
			return r, fmt.Errorf("update check of %s answered no manifest: %.300s", platform, raw)
		}
		return r, nil
	}
	install := func(platform string, ans ota.UpdateResponse, builtin, cacheFrom string) (deltatest.Result, error) {
		dev := &deltatest.Device{Platform: platform, Builtin: filepath.Join(root, "dev-builtin"), Cache: filepath.Join(root, "dev-cache"), HTTP: &http.Client{Transport: rt}}
		for _, d := range []string{dev.Builtin, dev.Cache} {
			if err := os.RemoveAll(d); err != nil {
				return deltatest.Result{}, err
			}
			if err := os.MkdirAll(d, 0o755); err != nil {
				return deltatest.Result{}, err
			}
		}
		if builtin != "" {
			if err := os.CopyFS(dev.Builtin, os.DirFS(builtin)); err != nil {
				return deltatest.Result{}, err
			}
		}
		if cacheFrom != "" {
			// The device installed cacheFrom's release as a delta before:
			// its cache holds every file it fetched then.
			if err := fillCache(dev, cacheFrom); err != nil {
				return deltatest.Result{}, err
			}
		}
		dest := filepath.Join(root, "dev-bundle")
		if err := os.RemoveAll(dest); err != nil {
			return deltatest.Result{}, err
		}
		r, err := dev.Install(ctx, ans, dest)
		if err != nil {
			return r, err
		}
		if diff, err := deltatest.SameTree(v2, dest); err != nil || diff != "" {
			return r, fmt.Errorf("the %s device ended with another bundle: %s %v", platform, diff, err)
		}
		return r, nil
	}
	pct := func(n int64) float64 { return 100 * float64(n) / float64(zipSize) }
	answers := map[string]ota.UpdateResponse{}
	for _, platform := range []string{"android", "ios"} {
		ans, err := answer(platform)
		if err != nil {
			return err
		}
		answers[platform] = ans
		r, err := install(platform, ans, v1, "")
		name := map[string]string{"android": "Android", "ios": "iOS"}[platform]
		target := fmt.Sprintf("bytes an %s device on the built-in 1.0.1 downloads for 1.0.2, delta vs zip", name)
		if err != nil {
			b.miss(target, "< 1 %", err)
			continue
		}
		b.add(row{
			target:    target,
			measured:  fmt.Sprintf("%s (%d files fetched, %d built in)", fmtKB(r.Downloaded), r.Fetched, r.FromBuiltin),
			reference: "zip " + fmtMB(zipSize),
			ratio:     fmt.Sprintf("%.2f %%", pct(r.Downloaded)),
			threshold: "< 1 %",
			ok:        pct(r.Downloaded) < 1,
		})
	}
	// What the per-platform manifest is worth, and the devices it costs.
	if r, err := install("ios", answers["android"], v1, ""); err == nil {
		b.notef("delta: an iOS device sent the Android manifest (every file ≥ 8 KiB as .br, as Capgo serves it) would download %s, %.1f %% of the zip: iOS looks built-in files up with .br on, so it reuses only the %d raw ones",
			fmtKB(r.Downloaded), pct(r.Downloaded), r.FromBuiltin)
	} else {
		b.notef("delta: iOS with the Android manifest: %v", err)
	}
	for _, platform := range []string{"android", "ios"} {
		fresh, err := install(platform, answers[platform], "", "")
		if err != nil {
			b.notef("delta: %s with nothing built in: %v", platform, err)
			continue
		}
		cached, err := install(platform, answers[platform], "", v1)
		if err != nil {
			b.notef("delta: %s with 1.0.1 cached: %v", platform, err)
			continue
		}
		b.notef("delta: %s, nothing built in or cached (a fresh install of another native build): %s, %.1f %% of the zip; with 1.0.1 in its cache (installed as a delta) and nothing built in: %s, %.2f %%",
			platform, fmtMB(fresh.Downloaded), pct(fresh.Downloaded), fmtKB(cached.Downloaded), pct(cached.Downloaded))
	}

	// /updates: a manifest answer against a zip answer of the same
	// release, on the same otad. Devices send Accept-Encoding: gzip
	// (OkHttp and URLSession add it), so the manifest goes gzipped.
	gzipHeader := map[string]string{"Accept-Encoding": "gzip"}
	reqDelta := load.Request{Method: "POST", Path: "/updates", ContentType: "application/json", Body: updatesBody(deltaApp), Header: gzipHeader}
	reqZip := load.Request{Method: "POST", Path: "/updates", ContentType: "application/json", Body: updatesBody(zipApp), Header: gzipHeader}
	_, plainBody, _ := load.Do(otad.addr, load.Request{Method: "POST", Path: "/updates", ContentType: "application/json", Body: updatesBody(deltaApp)})
	_, gzBody, _ := load.Do(otad.addr, reqDelta)
	_, zipBody, _ := load.Do(otad.addr, reqZip)
	b.notef("delta: the iOS manifest answer of 1.0.2 is %s of JSON, %s gzipped (prepared once per release); the zip answer %d bytes",
		fmtKB(int64(len(plainBody))), fmtKB(int64(len(gzBody))), len(zipBody))
	target := "/updates req/s, 64 conns, manifest answers vs zip answers"
	r, err := b.alternate(ctx, otad.addr, otad.addr, 64, reqDelta, reqZip)
	if err != nil {
		b.miss(target, "≥ 0.90", err)
	} else {
		b.add(row{
			target:    target,
			measured:  fmt.Sprintf("%.0f req/s (p99 %s, %s a answer)", r.aRPS, fmtDur(r.a.P99), fmtKB(int64(len(gzBody)))),
			reference: fmt.Sprintf("%.0f req/s (p99 %s, %d B a answer)", r.bRPS, fmtDur(r.b.P99), len(zipBody)),
			ratio:     fmt.Sprintf("%.2f", r.ratio),
			threshold: "≥ 0.90",
			ok:        r.ratio >= 0.90,
			note: fmt.Sprintf("%.0f MB/s of answers against %.1f MB/s: the answer is %d× bigger, and the bytes bound it (the next row)",
				r.aRPS*float64(len(gzBody))/1e6, r.bRPS*float64(len(zipBody))/1e6, len(gzBody)/max(1, len(zipBody))),
		})
	}
	// The same bytes from a handler that only writes them: what is left
	// is the cost of the answer's size, not of building it.
	bodyFile := filepath.Join(root, "manifest-answer.gz")
	if err := os.WriteFile(bodyFile, gzBody, 0o644); err != nil {
		return err
	}
	ref, err := startProc(ctx, "refserver-echo-manifest", filepath.Join(b.cfg.bin, "refserver"),
		[]string{"echo", "--body", bodyFile, "--addr-file", filepath.Join(root, "refserver.addr")}, nil, filepath.Join(root, "refserver.addr"))
	if err != nil {
		return err
	}
	defer ref.stop()
	target = "/updates req/s, 64 conns, manifest answers vs echo of the same bytes"
	r, err = b.alternate(ctx, otad.addr, ref.addr, 64, reqDelta, reqDelta)
	if err != nil {
		b.miss(target, "≥ 0.90", err)
	} else {
		b.add(row{
			target:    target,
			measured:  fmt.Sprintf("%.0f req/s (p99 %s)", r.aRPS, fmtDur(r.a.P99)),
			reference: fmt.Sprintf("%.0f req/s (p99 %s) echo", r.bRPS, fmtDur(r.b.P99)),
			ratio:     fmt.Sprintf("%.2f", r.ratio),
			threshold: "≥ 0.90 (encoded once per release)",
			ok:        r.ratio >= 0.90,
		})
	}
	return nil
}

// deployOutput is the part of otactl deploy web -o json the phase reads.
type deployOutput struct {
	Size  int64 `json:"size"`
	Delta struct {
		Files         int   `json:"files"`
		Uploaded      int   `json:"uploaded"`
		UploadedBytes int64 `json:"uploaded_bytes"`
		Reused        int   `json:"reused"`
	} `json:"delta"`
}

// writeProject makes dir a Capacitor project whose webDir is www.
func writeProject(dir, app string) error {
	cfg := fmt.Sprintf(`{"appId":%q,"appName":"bench","webDir":"www"}`, app)
	if err := os.WriteFile(filepath.Join(dir, "capacitor.config.json"), []byte(cfg), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"bench","version":"1.0.0"}`), 0o644)
}

type changedFile struct {
	name string
	size int64
}

// makeDeltaPair copies web, a tree bench/cmd/mkbundle wrote, into v1 and
// v2 and makes v2 its next release (webbundle.Next): the 40 KiB entry
// chunk gets new content under a new hashed name and index.html names it,
// as a rebuild after a one-line fix does.
func makeDeltaPair(web, v1, v2 string) (changedFile, error) {
	for _, dir := range []string{v1, v2} {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return changedFile{}, err
		}
		if err := os.CopyFS(dir, os.DirFS(web)); err != nil {
			return changedFile{}, err
		}
	}
	_, _, entry, err := webbundle.Next(v2)
	if err != nil {
		return changedFile{}, fmt.Errorf("make the next release of %s (a tree of bench/cmd/mkbundle): %w", web, err)
	}
	fi, err := os.Stat(filepath.Join(v2, filepath.FromSlash(entry)))
	if err != nil {
		return changedFile{}, err
	}
	return changedFile{entry, fi.Size()}, nil
}

// fillCache puts every file of dir into the device's download cache, as
// the plugin leaves it after installing that release as a delta.
func fillCache(dev *deltatest.Device, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dev.Cache, sha256Hex(b)+"_"+filepath.Base(p)), b, 0o644)
	})
}

// hostRewrite sends every request to addr: the answers carry the public
// URL otad is configured with, which does not resolve here.
type hostRewrite struct{ addr string }

func (h hostRewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = "http", h.addr, ""
	return http.DefaultTransport.RoundTrip(r)
}

func fmtKB(n int64) string { return fmt.Sprintf("%.1f KB", float64(n)/1e3) }

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
