package bolt_test

import (
	"errors"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/bolt/bolttest"
	"github.com/otaship/ota/pkg/ota"
)

// FuzzPublish feeds odd names to Publish and checks the round trip: the
// store never panics, refuses with ErrInvalid or ErrConflict only, and what
// it accepts reads back unchanged.
func FuzzPublish(f *testing.F) {
	f.Add("com.example.app", "stable", "1.0.0", "web", "ab12")
	f.Add("a", "apk", "1.0.0", "apk", "ab12")
	f.Add("", "", "", "", "")
	f.Add("app\x00", "chan/nel", "../../1", "web", "AB12")
	f.Add("ü🙂", "builtin", "builtin", "web", "x")
	s := bolttest.New(f, bolt.Options{})
	f.Fuzz(func(t *testing.T, app, channel, version, kind, sum string) {
		res, err := s.Publish(t.Context(), store.PublishInput{
			Bundle:  ota.Bundle{AppID: app, Version: version, Kind: kind, SHA256: sum},
			Channel: channel, Actor: "fuzz",
		})
		if err != nil {
			if !errors.Is(err, store.ErrInvalid) && !errors.Is(err, store.ErrConflict) {
				t.Fatalf("publish %q %q %q %q: unexpected error %v", app, channel, version, kind, err)
			}
			return
		}
		b, err := s.GetBundle(t.Context(), app, kind, version)
		if err != nil {
			t.Fatalf("get published bundle: %v", err)
		}
		if b.AppID != app || b.Version != version || b.Kind != kind || b.SHA256 != res.Bundle.SHA256 || b.Deleted {
			t.Fatalf("bundle read back = %+v; published %+v", b, res.Bundle)
		}
		c, err := s.GetChannel(t.Context(), app, channel)
		if err != nil {
			t.Fatalf("get channel: %v", err)
		}
		if c.Active != version || c.Kind != kind {
			t.Fatalf("channel = active %q kind %q; want %q %q", c.Active, c.Kind, version, kind)
		}
	})
}
