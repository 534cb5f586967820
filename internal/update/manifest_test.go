package update

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/download"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

func testFileURL(app, blob string) download.Link {
	return download.Link{URL: fileURLOf(blob)}
}

func fileURLOf(blob string) string { return "https://ota.example.com/api/ota/file/" + blob }

// deltaState is the fixture with production's 1.0.1 a delta release of
// three files: index.html (raw only, new), app.js (Brotli form, new) and
// vendor.js (Brotli form, Known from an earlier release).
func deltaState() store.State {
	st := fixtureState()
	files := []ota.ManifestFile{
		{Path: "index.html", SHA256: sha('i'), Size: 100, Raw: sha('i'), RawSize: 100},
		{Path: "assets/app.js", SHA256: sha('j'), Size: 40000, Raw: sha('j'), RawSize: 40000, Br: sha('J'), BrSize: 9000},
		{Path: "assets/vendor.js", SHA256: sha('v'), Size: 90000, Raw: sha('v'), RawSize: 90000, Br: sha('V'), BrSize: 20000, Known: true},
	}
	for i := range st.Bundles {
		if st.Bundles[i].Version == "1.0.1" {
			st.Bundles[i].Files = len(files)
		}
	}
	st.Manifests = []store.Manifest{{AppID: appID, Version: "1.0.1", Files: files}}
	return st
}

func TestSupportsManifest(t *testing.T) {
	for _, tt := range []struct {
		v    string
		want bool
	}{
		{"8.51.14", true}, {"8.2.0", true}, {"9.0.0", true}, {"8.0.0-beta.1", true},
		{"7.0.38", true}, {"7.0.37", false}, {"7.0.35", false}, {"7.30.1", true},
		{"6.25.0", true}, {"6.24.9", false}, {"6.14.28", false}, {"6.50.2", true},
		{"5.10.0", true}, {"5.9.5", false}, {"5.50.1", true},
		{"4.99.0", false}, {"", false}, {"garbage", false}, {"7", false}, {"8", true},
	} {
		if got := SupportsManifest(tt.v); got != tt.want {
			t.Errorf("SupportsManifest(%q) = %v; want %v", tt.v, got, tt.want)
		}
	}
}

func TestManifestEntries(t *testing.T) {
	files := deltaState().Manifests[0].Files
	android, asizes, _, ok := ManifestEntries(appID, files, PlatformAndroid, testFileURL)
	if !ok {
		t.Fatal("android manifest not built")
	}
	ios, isizes, _, ok := ManifestEntries(appID, files, PlatformIOS, testFileURL)
	if !ok {
		t.Fatal("iOS manifest not built")
	}
	want := map[Platform][]ota.ManifestEntry{
		PlatformAndroid: {
			{FileName: "index.html", FileHash: sha('i'), DownloadURL: fileURLOf(sha('i'))},
			{FileName: "assets/app.js.br", FileHash: sha('j'), DownloadURL: fileURLOf(sha('J'))},
			{FileName: "assets/vendor.js.br", FileHash: sha('v'), DownloadURL: fileURLOf(sha('V'))},
		},
		// iOS reuses built-in files only under their plain name: the
		// known file goes raw, the new one still Brotli.
		PlatformIOS: {
			{FileName: "index.html", FileHash: sha('i'), DownloadURL: fileURLOf(sha('i'))},
			{FileName: "assets/app.js.br", FileHash: sha('j'), DownloadURL: fileURLOf(sha('J'))},
			{FileName: "assets/vendor.js", FileHash: sha('v'), DownloadURL: fileURLOf(sha('v'))},
		},
	}
	for p, got := range map[Platform][]ota.ManifestEntry{PlatformAndroid: android, PlatformIOS: ios} {
		for i := range got {
			if got[i] != want[p][i] {
				t.Errorf("%s entry %d = %+v; want %+v", platformName(p), i, got[i], want[p][i])
			}
		}
	}
	if asizes[1] != 9000 || asizes[2] != 20000 || isizes[2] != 90000 || isizes[0] != 100 {
		t.Errorf("sizes android %v iOS %v", asizes, isizes)
	}

	// A file really named x.br can only be sent Brotli; without that form
	// the release is not sent as a manifest at all.
	bad := append([]ota.ManifestFile{}, files...)
	bad = append(bad, ota.ManifestFile{Path: "data.br", SHA256: sha('d'), Size: 10, Raw: sha('d'), RawSize: 10})
	if _, _, _, ok := ManifestEntries(appID, bad, PlatformIOS, testFileURL); ok {
		t.Error("a .br file without its Brotli form was listed")
	}
	bad[len(bad)-1].Br, bad[len(bad)-1].BrSize, bad[len(bad)-1].Known = sha('D'), 14, true
	e, _, _, ok := ManifestEntries(appID, bad, PlatformIOS, testFileURL)
	if !ok || e[len(e)-1].FileName != "data.br.br" {
		t.Errorf("a known .br file for iOS = %+v, %v; want data.br.br", e[len(e)-1], ok)
	}
}

func TestDecideDelta(t *testing.T) {
	snap := Build(deltaState(), testURL, WithFileURLs(testFileURL))
	zipURL := "https://ota.example.com/api/ota/bundle/" + sha('1') + ".zip"
	for _, tt := range []struct {
		name, platform, plugin string
		wantNames              []string // nil: the zip only
	}{
		{"iOS v8", "ios", "8.51.14", []string{"index.html", "assets/app.js.br", "assets/vendor.js"}},
		{"Android v8", "android", "8.51.14", []string{"index.html", "assets/app.js.br", "assets/vendor.js.br"}},
		{"electron gets Android's", "electron", "8.0.0", []string{"index.html", "assets/app.js.br", "assets/vendor.js.br"}},
		{"v7 with .br support", "android", "7.0.38", []string{"index.html", "assets/app.js.br", "assets/vendor.js.br"}},
		{"v7 that Brotli-decodes every file", "android", "7.0.37", nil},
		{"v6 before 6.25", "ios", "6.24.0", nil},
		{"v5 before 5.10", "ios", "5.9.5", nil},
		{"unreadable plugin version", "ios", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := baseRequest()
			req.Platform, req.PluginVersion = tt.platform, tt.plugin
			d := Decide(snap, &req, "")
			r := d.Response
			if r.Version != "1.0.1" || r.URL != zipURL || r.Checksum != sha('1') || r.SessionKey == nil || *r.SessionKey != "" {
				t.Fatalf("answer = %+v; want 1.0.1 with its zip url and checksum, even for a manifest", r)
			}
			var names []string
			for _, e := range r.Manifest {
				names = append(names, e.FileName)
			}
			if strings.Join(names, ",") != strings.Join(tt.wantNames, ",") {
				t.Errorf("manifest = %v; want %v", names, tt.wantNames)
			}
			// The prepared body is the answer, as c.JSON would write it.
			if want := answerJSON(t, &r); string(d.Body) != want {
				t.Errorf("body = %s; want %s", d.Body, want)
			}
			if tt.wantNames == nil {
				if d.Gzip != nil {
					t.Error("a zip answer has a gzip body")
				}
				return
			}
			zr, err := gzip.NewReader(bytes.NewReader(d.Gzip))
			if err != nil {
				t.Fatalf("gzip body: %v", err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(plain, d.Body) {
				t.Errorf("gzip body decodes to %d bytes (%v); want the body", len(plain), err)
			}
		})
	}
	// Explain says which manifest it sent.
	req := baseRequest()
	d := Explain(snap, &req, "")
	if last := d.Steps[len(d.Steps)-1]; !strings.Contains(last, "delta release: 3 files, the iOS manifest") {
		t.Errorf("last step %q", last)
	}
	req.PluginVersion = "7.0.30"
	d = Explain(snap, &req, "")
	if !strings.Contains(strings.Join(d.Steps, "\n"), "cannot install manifests") {
		t.Errorf("steps do not say why the zip was offered: %q", d.Steps)
	}

	// The snapshot exposes the manifests for other answers.
	av := snap.App(appID)
	if len(av.Manifests["1.0.1"]) != 3 || av.FileLink(sha('x')).URL != fileURLOf(sha('x')) {
		t.Errorf("app view manifests %v, file url %q", av.Manifests, av.FileLink(sha('x')).URL)
	}
	if e, sizes, ok := av.ManifestAnswer("1.0.1", PlatformIOS); !ok || len(e) != 3 || sizes[2] != 90000 {
		t.Errorf("ManifestAnswer = %v %v %v", e, sizes, ok)
	}
	if _, _, ok := av.ManifestAnswer("1.1.0", PlatformIOS); ok {
		t.Error("ManifestAnswer of a zip-only release")
	}
	// Without file URLs a delta release is offered as its zip.
	plain := Build(deltaState(), testURL)
	if d := Decide(plain, &req, ""); d.Response.Manifest != nil {
		t.Errorf("a snapshot without file URLs sent a manifest")
	}
}

func answerJSON(t *testing.T, r *ota.UpdateResponse) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b) + "\n"
}

// TestDecideDeltaRollout: a staged rollout's previous version keeps its
// manifest for the devices outside the cohort.
func TestDecideDeltaRollout(t *testing.T) {
	st := deltaState()
	// 1.1.0 is staged on production at 0 %: every device keeps 1.0.1.
	st.Bundles = append(st.Bundles, ota.Bundle{AppID: appID, Version: "1.2.0", Kind: ota.KindWeb, SHA256: sha('6'), Size: 10})
	ch := channelOf(&st, "production")
	ch.Active, ch.ActiveBundle = "1.2.0", nil
	ch.Releases = []ota.Release{{Version: "1.0.1"}, {Version: "1.2.0"}}
	ch.Rollout = &ota.Rollout{Target: "1.2.0", Previous: "1.0.1", Percent: 0}
	snap := Build(st, testURL, WithFileURLs(testFileURL))
	req := baseRequest()
	d := Decide(snap, &req, "")
	if d.Response.Version != "1.0.1" || len(d.Response.Manifest) != 3 {
		t.Errorf("device outside the cohort got %s with %d files; want 1.0.1's manifest", d.Response.Version, len(d.Response.Manifest))
	}
}

func TestDecideDeltaAllocs(t *testing.T) {
	snap := Build(deltaState(), testURL, WithFileURLs(testFileURL))
	req := baseRequest()
	if d := Decide(snap, &req, ""); len(d.Response.Manifest) != 3 {
		t.Fatalf("no manifest: %+v", d.Response)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = Decide(snap, &req, "") }); allocs > 0 {
		t.Errorf("Decide of a delta offer allocates %.0f times, want 0", allocs)
	}
}

// TestDecideDeltaRenew: with presigned links, a delta answer must stop
// being handed out when its earliest link (the zip's or a file's) must.
func TestDecideDeltaRenew(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	zip := func(b *ota.Bundle) download.Link {
		return download.Link{URL: "https://b/" + b.SHA256, Renew: t0.Add(time.Hour)}
	}
	file := func(app, blob string) download.Link {
		renew := t0.Add(2 * time.Hour)
		if blob == sha('J') {
			renew = t0.Add(30 * time.Minute) // app.js's Brotli form, signed earlier
		}
		return download.Link{URL: "https://f/" + blob, Renew: renew}
	}
	snap := Build(deltaState(), zip, WithFileURLs(file))
	req := baseRequest()
	if d := Decide(snap, &req, ""); !d.URLRenew.Equal(t0.Add(30*time.Minute)) || len(d.Response.Manifest) != 3 {
		t.Errorf("renew %v, %d files; want the earliest file link's", d.URLRenew, len(d.Response.Manifest))
	}
	// Relink prepares them again.
	re := snap.Relink(zip)
	if d := Decide(re, &req, ""); !d.URLRenew.Equal(t0.Add(30 * time.Minute)) {
		t.Errorf("after Relink with the same links: renew %v", d.URLRenew)
	}
	// Answers with expiring links are never cached.
	var c DeltaCache
	Build(deltaState(), zip, WithFileURLs(file), WithDeltaCache(&c))
	if len(c.apps[appID]) != 0 {
		t.Errorf("the cache keeps %d answers with presigned links", len(c.apps[appID]))
	}
}

// TestDeltaCache: a rebuild reuses a release's prepared answers instead of
// encoding them again, and forgets those no channel serves any more.
func TestDeltaCache(t *testing.T) {
	var c DeltaCache
	opts := []Option{WithFileURLs(testFileURL), WithDeltaCache(&c)}
	body := func(s *Snapshot) []byte {
		req := baseRequest()
		return Decide(s, &req, "").Body
	}
	s1 := Build(deltaState(), testURL, opts...)
	s2 := s1.WithApp(appID, deltaState(), testURL, opts...)
	if b1, b2 := body(s1), body(s2); len(b1) == 0 || &b1[0] != &b2[0] {
		t.Error("the rebuild encoded the manifest answer again")
	}
	// Another manifest for the release (a bundle published again after its
	// deletion, with other Known files) is built afresh.
	st := deltaState()
	st.Manifests[0].Files[0].Known = true
	s3 := s2.WithApp(appID, st, testURL, opts...)
	if b2, b3 := body(s2), body(s3); &b2[0] == &b3[0] {
		t.Error("a changed manifest reused the old answer")
	}
	// Once no channel serves a delta release, its answers go.
	plain := fixtureState()
	s2.WithApp(appID, plain, testURL, opts...)
	if len(c.apps[appID]) != 0 {
		t.Errorf("the cache keeps %d answers of a release no channel serves", len(c.apps[appID]))
	}
}
