package storetest

import (
	"errors"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Signatures stand for the base64 SHA256withRSA signatures otactl makes
// for @capawesome/capacitor-live-update (ota.Bundle.Signature).
const (
	sigA = "c2lnbmVkIHdpdGgga2V5IEE="
	sigB = "c2lnbmVkIHdpdGgga2V5IEI="
)

// signed publishes a web bundle with a signature (maybe empty).
func (f *fixture) signed(app, channel, version, sig string) (ota.UploadResult, error) {
	return f.s.Publish(f.t.Context(), store.PublishInput{
		Bundle:  ota.Bundle{AppID: app, Version: version, Kind: ota.KindWeb, SHA256: Sum(app + version), Size: 1, Signature: sig},
		Channel: channel, Actor: actor, Time: f.tick(),
	})
}

// testSignature checks that a bundle's signature is kept and read back on
// every path devices and admins use, and the retry rules of Publish: a
// retry may sign an unsigned bundle, an unsigned retry keeps the
// signature, and another signature is a conflict.
func testSignature(t *testing.T, f *fixture) {
	ctx := t.Context()
	res, err := f.signed("a", "stable", "1.0.0", sigA)
	if err != nil {
		t.Fatalf("publish signed: %v", err)
	}
	if res.Bundle.Signature != sigA {
		t.Errorf("publish result signature = %q, want %q", res.Bundle.Signature, sigA)
	}
	if _, err := f.signed("a", "stable", "1.1.0", ""); err != nil {
		t.Fatalf("publish unsigned: %v", err)
	}
	// Where the signature must be found, by version.
	check := func(step string, want map[string]string) {
		t.Helper()
		for v, sig := range want {
			if b := f.bundle("a", ota.KindWeb, v); b.Signature != sig {
				t.Errorf("%s: GetBundle %s signature = %q, want %q", step, v, b.Signature, sig)
			}
		}
		list, err := f.s.ListBundles(ctx, "a")
		if err != nil {
			t.Fatalf("%s: list bundles: %v", step, err)
		}
		for _, b := range list {
			if sig, ok := want[b.Version]; ok && b.Signature != sig {
				t.Errorf("%s: ListBundles %s signature = %q, want %q", step, b.Version, b.Signature, sig)
			}
		}
		for _, load := range []struct {
			name string
			fn   func() (store.State, error)
		}{
			{"LoadState", func() (store.State, error) { return f.s.LoadState(ctx) }},
			{"LoadAppState", func() (store.State, error) { return f.s.LoadAppState(ctx, "a") }},
		} {
			st, err := load.fn()
			if err != nil {
				t.Fatalf("%s: %s: %v", step, load.name, err)
			}
			seen := 0
			for _, b := range st.Bundles {
				if sig, ok := want[b.Version]; ok && b.AppID == "a" {
					seen++
					if b.Signature != sig {
						t.Errorf("%s: %s bundle %s signature = %q, want %q", step, load.name, b.Version, b.Signature, sig)
					}
				}
			}
			if seen != len(want) {
				t.Errorf("%s: %s has %d of the %d bundles", step, load.name, seen, len(want))
			}
			for _, c := range st.Channels {
				if c.AppID != "a" || c.ActiveBundle == nil {
					continue
				}
				if sig, ok := want[c.Active]; ok && c.ActiveBundle.Signature != sig {
					t.Errorf("%s: %s channel %s active bundle signature = %q, want %q", step, load.name, c.Name, c.ActiveBundle.Signature, sig)
				}
			}
		}
	}
	check("after publishing", map[string]string{"1.0.0": sigA, "1.1.0": ""})

	// An unsigned retry keeps the signature; the same signature is a retry.
	for _, sig := range []string{"", sigA} {
		res, err := f.signed("a", "stable", "1.0.0", sig)
		if err != nil {
			t.Fatalf("retry of 1.0.0 with signature %q: %v", sig, err)
		}
		if res.Created || res.Bundle.Signature != sigA {
			t.Errorf("retry of 1.0.0 with signature %q = created %t, signature %q; want false, %q", sig, res.Created, res.Bundle.Signature, sigA)
		}
	}
	// A signed retry signs a bundle uploaded unsigned.
	res, err = f.signed("a", "stable", "1.1.0", sigB)
	if err != nil {
		t.Fatalf("signing 1.1.0 on retry: %v", err)
	}
	if res.Created || res.Bundle.Signature != sigB {
		t.Errorf("signing retry = created %t, signature %q; want false, %q", res.Created, res.Bundle.Signature, sigB)
	}
	check("after the retries", map[string]string{"1.0.0": sigA, "1.1.0": sigB})

	// Another signature is a conflict, and changes nothing.
	before := f.countEvents()
	_, err = f.signed("a", "beta", "1.0.0", sigB)
	wantErr(t, "publish with another signature", err, store.ErrConflict)
	if _, err := f.s.GetChannel(ctx, "a", "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused publish created channel beta: %v", err)
	}
	if n := f.countEvents(); n != before {
		t.Errorf("history has %d events after the conflict; want %d", n, before)
	}
	check("after the conflict", map[string]string{"1.0.0": sigA, "1.1.0": sigB})
}
