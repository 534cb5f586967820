package bolt_test

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/internal/store/storetest"
	"github.com/otaship/ota/pkg/ota"
)

// TestEncryptedBundle stores an encrypted bundle's keys and reads them
// back through every path: the bundle APIs and, after a reopen, the lean
// start-up decoder.
func TestEncryptedBundle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ota.db")
	s := bolttest.Open(t, path, bolt.Options{})
	enc := &ota.BundleEncryption{
		SessionKey:        "MDEyMzQ1Njc4OWFiY2RlZg==:" + strings.Repeat("QUJD", 86) + "RA==",
		EncryptedChecksum: strings.Repeat("0f", 256),
		KeyID:             "MIIBCgKCAQEAqJikYizo",
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		b := ota.Bundle{AppID: "com.example.app", Version: v, Kind: ota.KindWeb, SHA256: storetest.Sum(v), Size: 42}
		if v == "1.0.1" {
			b.Encryption = enc
		}
		if _, err := s.Publish(t.Context(), store.PublishInput{Bundle: b, Channel: "stable", Actor: "alice", Time: epoch}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(where string, b ota.Bundle) {
		t.Helper()
		want := enc
		if b.Version == "1.0.0" {
			want = nil
		}
		if !reflect.DeepEqual(b.Encryption, want) {
			t.Errorf("%s: %s has encryption %+v, want %+v", where, b.Version, b.Encryption, want)
		}
	}
	got, err := s.GetBundle(t.Context(), "com.example.app", ota.KindWeb, "1.0.1")
	if err != nil {
		t.Fatal(err)
	}
	check("GetBundle", got)
	list, err := s.ListBundles(t.Context(), "com.example.app")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range list {
		check("ListBundles", b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = bolttest.Open(t, path, bolt.Options{})
	st, err := s.LoadState(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Bundles) != 2 {
		t.Fatalf("state has %d bundles, want 2", len(st.Bundles))
	}
	for _, b := range st.Bundles {
		check("LoadState", b)
	}
	for _, c := range st.Channels {
		if c.ActiveBundle != nil {
			check("LoadState active bundle", *c.ActiveBundle)
		}
	}
}
