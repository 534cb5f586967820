package storetest

import (
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// testDeltaSigned checks what a signed delta release keeps for
// @capawesome/capacitor-live-update: each file's signature in its
// manifest (read back by Manifest and by the device state) and the
// manifest file's signature with the bundle, which goes and comes with the
// manifest.
func testDeltaSigned(t *testing.T, f *fixture) {
	ctx := t.Context()
	files := deltaFiles("a", map[string]int{"index.html": 0, "assets/app.js": 0})
	for i := range files {
		files[i].Signature = sigA
	}
	publish := func(files []ota.ManifestFile, manifestSig string) ota.UploadResult {
		t.Helper()
		res, err := f.s.Publish(ctx, store.PublishInput{
			Bundle: ota.Bundle{AppID: "a", Version: "1.0.0", Kind: ota.KindWeb, SHA256: Sum("a1.0.0"), Size: 1000,
				Signature: sigA, ManifestSignature: manifestSig},
			Channel: "stable", Actor: actor, Time: f.tick(), Manifest: files,
		})
		if err != nil {
			t.Fatalf("publish: %v", err)
		}
		return res
	}
	res := publish(files, sigB)
	if res.Bundle.ManifestSignature != sigB {
		t.Errorf("publish result manifest signature = %q, want %q", res.Bundle.ManifestSignature, sigB)
	}
	check := func(step, wantManifestSig, wantFileSig string) {
		t.Helper()
		if b := f.bundle("a", ota.KindWeb, "1.0.0"); b.ManifestSignature != wantManifestSig || b.Signature != sigA {
			t.Errorf("%s: GetBundle signatures = %q, %q; want %q, %q", step, b.Signature, b.ManifestSignature, sigA, wantManifestSig)
		}
		got, err := f.s.Manifest(ctx, "a", "1.0.0")
		if err != nil || len(got) != 2 {
			t.Fatalf("%s: manifest = %v, %v", step, got, err)
		}
		for _, mf := range got {
			if mf.Signature != wantFileSig {
				t.Errorf("%s: file %s signature = %q, want %q", step, mf.Path, mf.Signature, wantFileSig)
			}
		}
		st, err := f.s.LoadAppState(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Manifests {
			for _, mf := range m.Files {
				if mf.Signature != wantFileSig {
					t.Errorf("%s: state file %s signature = %q, want %q", step, mf.Path, mf.Signature, wantFileSig)
				}
			}
		}
	}
	check("published", sigB, sigA)
	// A retry keeps the stored manifest and its signature.
	publish(deltaFiles("a", map[string]int{"index.html": 0, "assets/app.js": 0}), "")
	check("unsigned retry", sigB, sigA)

	// Deleted and brought back by an unsigned upload of the same bytes:
	// the old manifest went, and its signature with it.
	f.web("a", "stable", "1.1.0")
	if _, err := f.s.DeleteRelease(ctx, "a", "stable", "1.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	publish(deltaFiles("a", map[string]int{"index.html": 0, "assets/app.js": 0}), "")
	check("brought back unsigned", "", "")
}
