package update

import (
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// TestPendingWithApp: a pending snapshot answers nothing for an app until
// WithApp loads it, and loading one app leaves the others pending and the
// older snapshot unchanged.
func TestPendingWithApp(t *testing.T) {
	url := func(b *ota.Bundle) string { return "https://ota.test/" + b.SHA256 }
	s0 := Pending([]string{"a", "b"})
	if s0.App("a") != nil || !s0.IsUnloaded("a") || !s0.IsUnloaded("b") || s0.IsUnloaded("c") {
		t.Fatalf("pending snapshot: %+v", s0)
	}
	st := store.State{
		Apps:     []ota.App{{ID: "a"}},
		Channels: []ota.Channel{{AppID: "a", Name: "stable", Kind: ota.KindWeb, Active: "1.0.0"}},
		Bundles:  []ota.Bundle{{AppID: "a", Version: "1.0.0", Kind: ota.KindWeb, SHA256: "ab"}},
	}
	s1 := s0.WithApp("a", st, url)
	if s1.IsUnloaded("a") || s1.App("a") == nil || s1.App("a").Channels["stable"].URL != "https://ota.test/ab" {
		t.Fatalf("after WithApp(a): unloaded=%v view=%+v", s1.Unloaded, s1.App("a"))
	}
	if !s1.IsUnloaded("b") || s1.App("b") != nil {
		t.Fatalf("WithApp(a) touched b: %+v", s1.Unloaded)
	}
	if !s0.IsUnloaded("a") || s0.App("a") != nil {
		t.Fatalf("WithApp changed the snapshot it copied")
	}
	// An app gone from the store: loading it drops it for good.
	s2 := s1.WithApp("b", store.State{}, url)
	if s2.IsUnloaded("b") || s2.App("b") != nil || len(s2.Unloaded) != 0 {
		t.Fatalf("after loading a removed app: unloaded=%v", s2.Unloaded)
	}
	var nilSnap *Snapshot
	if nilSnap.IsUnloaded("a") {
		t.Fatalf("a nil snapshot has unloaded apps")
	}
}
