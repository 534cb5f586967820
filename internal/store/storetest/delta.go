package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Delta releases: delta file records, manifests stored with bundles, and
// what they keep from being collected.

// deltaFiles makes a manifest of the named files, each with a content
// derived from app, name and rev (so a file keeps its SHA-256 across
// releases until its rev changes), a raw form and, for names ending in
// ".js", a Brotli form.
func deltaFiles(app string, files map[string]int) []ota.ManifestFile {
	out := make([]ota.ManifestFile, 0, len(files))
	for name, rev := range files {
		sum := Sum(app + name + string(rune('a'+rev)))
		f := ota.ManifestFile{Path: name, SHA256: sum, Size: int64(len(name)) * 1000, Raw: sum, RawSize: int64(len(name)) * 1000}
		if len(name) > 3 && name[len(name)-3:] == ".js" {
			f.Br, f.BrSize = Sum("br"+sum), int64(len(name))*300
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b ota.ManifestFile) int { return strings.Compare(a.Path, b.Path) })
	return out
}

func (f *fixture) delta(app, channel, version string, files []ota.ManifestFile, rollout int) ota.UploadResult {
	f.t.Helper()
	res, err := f.s.Publish(f.t.Context(), store.PublishInput{
		Bundle:   ota.Bundle{AppID: app, Version: version, Kind: ota.KindWeb, SHA256: Sum(app + version), Size: 1000},
		Channel:  channel,
		Actor:    actor,
		Time:     f.tick(),
		Rollout:  rollout,
		Manifest: files,
	})
	if err != nil {
		f.t.Fatalf("publish delta %s %s %s: %v", app, channel, version, err)
	}
	return res
}

func testDeltaFiles(t *testing.T, f *fixture) {
	ctx := t.Context()
	// Files come before the app's first release.
	sum := Sum("index")
	created, err := f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "new.app", SHA256: sum, Size: 10, CreatedAt: f.tick()})
	if err != nil || !created {
		t.Fatalf("put delta file of an app not created yet = %v, %v; want created", created, err)
	}
	if apps, err := f.s.ListApps(ctx); err != nil || len(apps) != 0 {
		t.Errorf("apps after a delta file = %v, %v; want none: a file does not create its app", apps, err)
	}
	created, err = f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "new.app", SHA256: sum, Size: 10, CreatedAt: f.tick()})
	if err != nil || created {
		t.Errorf("put the same delta file again = %v, %v; want not created", created, err)
	}
	// A later upload may add the Brotli form; it never replaces one.
	br := Sum("index.br")
	if _, err := f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "new.app", SHA256: sum, Size: 10, Br: br, BrSize: 4, CreatedAt: f.tick()}); err != nil {
		t.Fatalf("add a Brotli form: %v", err)
	}
	if _, err := f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "new.app", SHA256: sum, Size: 10, Br: Sum("other"), BrSize: 5, CreatedAt: f.tick()}); err != nil {
		t.Fatalf("put another Brotli form: %v", err)
	}
	enc := Sum("ciphertext")
	if _, err := f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "new.app", SHA256: enc, Size: 32, Encrypted: true, CreatedAt: f.tick()}); err != nil {
		t.Fatalf("put an encrypted form: %v", err)
	}

	got, err := f.s.DeltaFiles(ctx, "new.app", []string{sum, enc, Sum("absent"), ""})
	if err != nil {
		t.Fatalf("delta files: %v", err)
	}
	if len(got) != 2 {
		t.Fatalf("delta files = %v; want the two stored", got)
	}
	if d := got[sum]; d.SHA256 != sum || d.Size != 10 || d.Br != br || d.BrSize != 4 || d.Encrypted || d.AppID != "new.app" {
		t.Errorf("plain record = %+v; want size 10 with the first Brotli form", d)
	}
	if d := got[enc]; !d.Encrypted || d.Size != 32 || d.Br != "" {
		t.Errorf("encrypted record = %+v", d)
	}
	// Apps do not see each other's files.
	if other, err := f.s.DeltaFiles(ctx, "other.app", []string{sum}); err != nil || len(other) != 0 {
		t.Errorf("another app's delta files = %v, %v; want none", other, err)
	}
}

func testDeltaManifest(t *testing.T, f *fixture) {
	ctx := t.Context()
	m1 := deltaFiles("a", map[string]int{"index.html": 0, "assets/app.js": 0, "assets/logo.png": 0})
	res := f.delta("a", "stable", "1.0.0", m1, 0)
	if res.Bundle.Files != 3 || !res.Created {
		t.Errorf("publish result = %+v; want a created bundle with 3 files", res.Bundle)
	}
	got, err := f.s.Manifest(ctx, "a", "1.0.0")
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if len(got) != 3 {
		t.Fatalf("manifest = %+v; want 3 files", got)
	}
	for i := range got {
		if got[i].Known {
			t.Errorf("file %s of the first release is Known", got[i].Path)
		}
		want := m1[i]
		if got[i] != want {
			t.Errorf("file %d = %+v; want %+v", i, got[i], want)
		}
	}
	if b, err := f.s.GetBundle(ctx, "a", ota.KindWeb, "1.0.0"); err != nil || b.Files != 3 {
		t.Errorf("bundle record = %+v, %v; want Files 3", b, err)
	}

	// The second release changes app.js and index.html: the others are
	// Known, and stay Known after the first release is gone.
	m2 := deltaFiles("a", map[string]int{"index.html": 1, "assets/app.js": 1, "assets/logo.png": 0, "assets/new.css": 0})
	f.delta("a", "stable", "1.1.0", m2, 0)
	got, err = f.s.Manifest(ctx, "a", "1.1.0")
	if err != nil {
		t.Fatalf("manifest of 1.1.0: %v", err)
	}
	known := map[string]bool{}
	for _, mf := range got {
		known[mf.Path] = mf.Known
	}
	if want := map[string]bool{"index.html": false, "assets/app.js": false, "assets/logo.png": true, "assets/new.css": false}; !mapsEqual(known, want) {
		t.Errorf("Known of 1.1.0's files = %v; want %v", known, want)
	}

	// A retry with another manifest keeps the stored one.
	res = f.delta("a", "stable", "1.1.0", m1, 0)
	if res.Created || res.Bundle.Files != 4 {
		t.Errorf("retry = %+v; want not created, 4 files", res.Bundle)
	}
	if again, _ := f.s.Manifest(ctx, "a", "1.1.0"); len(again) != 4 {
		t.Errorf("manifest after a retry has %d files; want the stored 4", len(again))
	}

	// A zip-only bundle has no manifest; neither has an unknown one.
	f.web("a", "beta", "2.0.0")
	_, err = f.s.Manifest(ctx, "a", "2.0.0")
	wantErr(t, "manifest of a zip-only bundle", err, store.ErrNotFound)
	_, err = f.s.Manifest(ctx, "a", "9.9.9")
	wantErr(t, "manifest of an unknown bundle", err, store.ErrNotFound)
	_, err = f.s.Manifest(ctx, "nope", "1.0.0")
	wantErr(t, "manifest of an unknown app", err, store.ErrNotFound)
	// A zip-only bundle published again with a manifest becomes a delta
	// release.
	res = f.delta("a", "beta", "2.0.0", deltaFiles("a", map[string]int{"index.html": 2}), 0)
	if res.Bundle.Files != 1 {
		t.Errorf("zip-only bundle published with a manifest: Files = %d; want 1", res.Bundle.Files)
	}

	// Deleting drops the manifest; publishing the bytes again brings the
	// new upload's manifest, whose files were seen before.
	if _, err := f.s.DeleteRelease(ctx, "a", "stable", "1.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete 1.0.0: %v", err)
	}
	_, err = f.s.Manifest(ctx, "a", "1.0.0")
	wantErr(t, "manifest of a deleted bundle", err, store.ErrNotFound)
	res = f.delta("a", "stable", "1.0.0", m1[:2], 0)
	if res.Bundle.Files != 2 {
		t.Errorf("deleted bundle published again: Files = %d; want 2", res.Bundle.Files)
	}
	back, err := f.s.Manifest(ctx, "a", "1.0.0")
	if err != nil || len(back) != 2 {
		t.Fatalf("manifest of the bundle brought back = %v, %v", back, err)
	}
	for _, mf := range back {
		// Both files were first published by 1.0.0 itself.
		if mf.Known {
			t.Errorf("file %s of 1.0.0 is Known in 1.0.0's own manifest", mf.Path)
		}
	}
}

func testDeltaState(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.delta("a", "stable", "1.0.0", deltaFiles("a", map[string]int{"index.html": 0}), 0)
	f.delta("a", "stable", "1.1.0", deltaFiles("a", map[string]int{"index.html": 1}), 0)
	f.delta("a", "stable", "1.2.0", deltaFiles("a", map[string]int{"index.html": 2}), 10)
	f.web("a", "beta", "2.0.0")
	st, err := f.s.LoadAppState(ctx, "a")
	if err != nil {
		t.Fatalf("load app state: %v", err)
	}
	var versions []string
	for _, m := range st.Manifests {
		if m.AppID != "a" || len(m.Files) != 1 {
			t.Errorf("state manifest %+v", m)
		}
		versions = append(versions, m.Version)
	}
	slices.Sort(versions)
	// The active version and the rollout's previous one; not the older
	// release, not the zip-only one.
	if want := []string{"1.1.0", "1.2.0"}; !slices.Equal(versions, want) {
		t.Errorf("state manifests = %v; want %v", versions, want)
	}
	for _, b := range st.Bundles {
		want := 1
		if b.Version == "2.0.0" {
			want = 0
		}
		if b.Files != want {
			t.Errorf("state bundle %s has Files %d; want %d", b.Version, b.Files, want)
		}
	}
	all, err := f.s.LoadState(ctx)
	if err != nil || len(all.Manifests) != 2 {
		t.Errorf("whole state manifests = %v, %v; want 2", all.Manifests, err)
	}
}

func testDeltaReferences(t *testing.T, f *fixture) {
	ctx := t.Context()
	m1 := deltaFiles("a", map[string]int{"index.html": 0, "assets/app.js": 0})
	m2 := deltaFiles("a", map[string]int{"index.html": 1, "assets/app.js": 0})
	f.delta("a", "stable", "1.0.0", m1, 0)
	f.delta("a", "stable", "1.1.0", m2, 0)
	early := f.tick()
	orphan := Sum("orphan")
	for _, d := range []store.DeltaFile{
		{AppID: "a", SHA256: m1[0].SHA256, Size: 1, Br: m1[0].Br, BrSize: 1, CreatedAt: early}, // app.js, named by both
		{AppID: "a", SHA256: m1[1].SHA256, Size: 1, CreatedAt: early},                          // index.html of 1.0.0
		{AppID: "a", SHA256: orphan, Size: 1, Br: Sum("orphan.br"), BrSize: 1, CreatedAt: early},
		{AppID: "b", SHA256: Sum("young"), Size: 1, CreatedAt: early.Add(2 * time.Hour)},
	} {
		if _, err := f.s.PutDeltaFile(ctx, d); err != nil {
			t.Fatalf("put delta file: %v", err)
		}
	}
	// An encrypted release names its forms' blobs; its files' SHA-256 are
	// those of plaintext stored nowhere.
	enc := []ota.ManifestFile{{Path: "index.html", SHA256: Sum("plain"), Size: 5, Raw: Sum("cipher"), RawSize: 16, Br: Sum("cipher.br"), BrSize: 16, FileHash: "ab"}}
	f.delta("e", "stable", "1.0.0", enc, 0)
	refs, err := f.s.ReferencedBlobs(ctx)
	if err != nil {
		t.Fatalf("referenced blobs: %v", err)
	}
	for _, k := range []string{m1[0].SHA256, m1[0].Br, m1[1].SHA256, m2[1].SHA256, orphan, Sum("orphan.br"), Sum("young"), Sum("a1.0.0"), Sum("a1.1.0"), Sum("cipher"), Sum("cipher.br")} {
		if !refs[k] {
			t.Errorf("blob %s… not referenced", k[:12])
		}
	}
	if refs[Sum("plain")] {
		t.Error("the plaintext SHA-256 of an encrypted file is listed as a blob: a backup would look for it")
	}

	// Once 1.0.0 is deleted, its index.html is named by nothing but its
	// record; pruning old unnamed records frees it, keeps named and young
	// ones.
	if _, err := f.s.DeleteRelease(ctx, "a", "stable", "1.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	n, err := f.s.PruneDeltaFiles(ctx, early.Add(time.Hour))
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if n != 2 {
		t.Errorf("pruned %d records; want 2 (1.0.0's index.html and the orphan)", n)
	}
	left, err := f.s.DeltaFiles(ctx, "a", []string{m1[0].SHA256, m1[1].SHA256, orphan})
	if err != nil {
		t.Fatalf("delta files: %v", err)
	}
	if _, ok := left[m1[0].SHA256]; !ok || len(left) != 1 {
		t.Errorf("records left = %v; want only app.js, which 1.1.0 names", left)
	}
	if young, _ := f.s.DeltaFiles(ctx, "b", []string{Sum("young")}); len(young) != 1 {
		t.Errorf("a record younger than the cut was pruned")
	}
	refs, err = f.s.ReferencedBlobs(ctx)
	if err != nil {
		t.Fatalf("referenced blobs: %v", err)
	}
	for _, k := range []string{m1[1].SHA256, orphan, Sum("orphan.br"), Sum("a1.0.0")} {
		if refs[k] {
			t.Errorf("blob %s… still referenced after its release was deleted and its record pruned", k[:12])
		}
	}
	if !refs[m2[1].SHA256] || !refs[m1[0].Br] {
		t.Errorf("blobs of the live release lost their reference")
	}
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
