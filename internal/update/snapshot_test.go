package update

import (
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// TestPendingWithApp: a pending snapshot answers nothing for an app until
// WithApp loads it, and loading one app leaves the others pending and the
// older snapshot unchanged.
func TestPendingWithApp(t *testing.T) {
	url := func(b *ota.Bundle) download.Link { return download.Link{URL: "https://ota.test/" + b.SHA256} }
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

// TestRelink: renewing a snapshot's links gives every offer (the active
// bundle's and the fallbacks') the new URL and Renew time, in the answer
// and its prepared body, leaves the older snapshot as it was, keeps
// unloaded apps unloaded and changes nothing else about the decision.
func TestRelink(t *testing.T) {
	gen := "1"
	renew := time.Date(2025, 1, 1, 0, 30, 0, 0, time.UTC)
	url := func(b *ota.Bundle) download.Link {
		return download.Link{URL: "https://bucket.test/" + b.SHA256 + "?sig=" + gen, Renew: renew}
	}
	st := fixtureState()
	// A staged rollout, so that devices outside the cohort get a fallback.
	channelOf(&st, "production").Rollout = &ota.Rollout{Target: "1.0.1", Previous: "0.9.0", Percent: 0}
	channelOf(&st, "production").Releases = []ota.Release{{Version: "0.9.0"}, {Version: "1.0.1"}}
	s1 := Build(st, url)
	s1.Unloaded = map[string]struct{}{"other.app": {}}
	req := baseRequest()
	d1 := Decide(s1, &req, "")
	if d1.Response.Version != "0.9.0" || d1.Bundle == nil || d1.Bundle.Version != "0.9.0" || !d1.URLRenew.Equal(renew) {
		t.Fatalf("before Relink: %+v (bundle %v, renew %v)", d1.Response, d1.Bundle, d1.URLRenew)
	}

	gen, renew = "2", renew.Add(time.Hour)
	s2 := s1.Relink(url)
	d2 := Decide(s2, &req, "")
	if !strings.HasSuffix(d2.Response.URL, "?sig=2") || !strings.Contains(string(d2.Body), "sig=2") || !d2.URLRenew.Equal(renew) {
		t.Errorf("fallback after Relink: url %s, body %s, renew %v", d2.Response.URL, d2.Body, d2.URLRenew)
	}
	cv := s2.App(appID).Channels["production"]
	if !strings.HasSuffix(cv.URL, "?sig=2") || !cv.URLRenew.Equal(renew) || !strings.HasSuffix(cv.Success.URL, "?sig=2") {
		t.Errorf("active offer after Relink: %s %v", cv.URL, cv.URLRenew)
	}
	beta := baseRequest()
	beta.DefaultChannel = "beta"
	if d := Decide(s2, &beta, ""); d.Response.Version != "1.1.0" || !strings.HasSuffix(d.Response.URL, "?sig=2") {
		t.Errorf("beta after Relink: %+v", d.Response)
	}
	if d := Decide(s1, &req, ""); !strings.HasSuffix(d.Response.URL, "?sig=1") {
		t.Errorf("Relink changed the older snapshot: %s", d.Response.URL)
	}
	if !s2.IsUnloaded("other.app") {
		t.Error("Relink loaded or dropped an unloaded app")
	}
	// The same decisions, channel by channel, in the same order.
	a1, a2 := s1.App(appID), s2.App(appID)
	if len(a1.List) != len(a2.List) {
		t.Fatalf("Relink changed the channels: %d, %d", len(a1.List), len(a2.List))
	}
	for i := range a1.List {
		c1, c2 := a1.List[i], a2.List[i]
		if c1.Channel.Name != c2.Channel.Name || c2 != a2.Channels[c2.Channel.Name] || c1.Staged != c2.Staged || c1.Builtin != c2.Builtin {
			t.Errorf("channel %d: %s staged %v → %s staged %v", i, c1.Channel.Name, c1.Staged, c2.Channel.Name, c2.Staged)
		}
	}
	if a2.Bundles["0.9.0"] != a1.Bundles["0.9.0"] {
		t.Error("Relink copied the bundles instead of sharing them")
	}
	var nilSnap *Snapshot
	if nilSnap.Relink(url) != nil {
		t.Error("Relink of nil")
	}
}
