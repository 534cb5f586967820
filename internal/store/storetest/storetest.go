// Package storetest is the conformance suite every store.Store
// implementation runs, so the embedded store and any later one (PostgreSQL)
// behave the same to the server. It uses the interface only.
//
// An implementation's test calls Run with a function that opens a new,
// empty store for each subtest and closes it in t.Cleanup.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// Run runs every conformance test against stores made by open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f *fixture)
	}{
		{"Users", testUsers},
		{"PublishNew", testPublishNew},
		{"PublishIdempotent", testPublishIdempotent},
		{"PublishConflict", testPublishConflict},
		{"PublishDeletedName", testPublishDeletedName},
		{"PublishKinds", testPublishKinds},
		{"PublishInvalid", testPublishInvalid},
		{"Rollback", testRollback},
		{"RollbackNamed", testRollbackNamed},
		{"Promote", testPromote},
		{"DeleteRelease", testDeleteRelease},
		{"DeleteReleaseKeepsServedBundle", testDeleteKeepsServed},
		{"UpdateChannel", testUpdateChannel},
		{"Reads", testReads},
		{"History", testHistory},
		{"HistoryLimit", testHistoryLimit},
		{"Overrides", testOverrides},
		{"Stats", testStats},
		{"LoadState", testLoadState},
		{"ReferencedBlobs", testReferencedBlobs},
		{"Backup", testBackup},
		{"CanceledContext", testCanceled},
		{"Rollout", testRollout},
		{"Halt", testHalt},
		{"Health", testHealth},
		{"Offers", testOffers},
		{"OfferChecks", testOfferChecks},
		{"Adoption", testAdoption},
		{"Lead", testLead},
		{"Ramp", testRamp},
		{"Protected", testProtected},
		{"SafetyPolicy", testSafetyPolicy},
		{"Tokens", testTokens},
		{"Webhooks", testWebhooks},
		{"BundleFields", testBundleFields},
		{"Signature", testSignature},
		{"DeltaFiles", testDeltaFiles},
		{"DeltaManifest", testDeltaManifest},
		{"DeltaState", testDeltaState},
		{"DeltaReferences", testDeltaReferences},
		{"DeltaSigned", testDeltaSigned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			f := &fixture{t: t, s: open(t), now: &start}
			tt.fn(t, f)
		})
	}
}

// fixture is a store under test with a clock that moves one second per
// write, so every timestamp is distinct and predictable.
type fixture struct {
	t   *testing.T
	s   store.Store
	now *time.Time
}

// sub returns the fixture for a subtest: same store and clock, failures
// reported to t.
func (f *fixture) sub(t *testing.T) *fixture { return &fixture{t: t, s: f.s, now: f.now} }

const actor = "alice"

func (f *fixture) tick() time.Time {
	*f.now = f.now.Add(time.Second)
	return *f.now
}

// Sum is the hex SHA-256 of s: a stand-in for a bundle's checksum.
func Sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func (f *fixture) publish(app, channel, kind, version, sum string) (ota.UploadResult, error) {
	return f.s.Publish(f.t.Context(), store.PublishInput{
		Bundle: ota.Bundle{
			AppID: app, Version: version, Kind: kind, SHA256: sum, Size: int64(len(version)) * 100,
			UploadedBy: actor, Notes: "notes " + version, MinNative: "1.0.0",
		},
		Channel: channel,
		Actor:   actor,
		Time:    f.tick(),
	})
}

// web publishes a web bundle whose checksum derives from its version.
func (f *fixture) web(app, channel, version string) ota.UploadResult {
	f.t.Helper()
	res, err := f.publish(app, channel, ota.KindWeb, version, Sum(app+version))
	if err != nil {
		f.t.Fatalf("publish %s %s %s: %v", app, channel, version, err)
	}
	return res
}

func (f *fixture) apk(app, channel, version string) ota.UploadResult {
	f.t.Helper()
	res, err := f.publish(app, channel, ota.KindAPK, version, Sum("apk"+app+version))
	if err != nil {
		f.t.Fatalf("publish apk %s %s %s: %v", app, channel, version, err)
	}
	return res
}

func (f *fixture) channel(app, name string) ota.Channel {
	f.t.Helper()
	c, err := f.s.GetChannel(f.t.Context(), app, name)
	if err != nil {
		f.t.Fatalf("get channel %s/%s: %v", app, name, err)
	}
	return c
}

func (f *fixture) app(id string) ota.App {
	f.t.Helper()
	a, err := f.s.GetApp(f.t.Context(), id)
	if err != nil {
		f.t.Fatalf("get app %s: %v", id, err)
	}
	return a
}

func (f *fixture) bundle(app, kind, version string) ota.Bundle {
	f.t.Helper()
	b, err := f.s.GetBundle(f.t.Context(), app, kind, version)
	if err != nil {
		f.t.Fatalf("get bundle %s %s %s: %v", app, kind, version, err)
	}
	return b
}

// events returns the whole history matching app and channel, newest first.
func (f *fixture) events(app, channel string) []ota.Event {
	f.t.Helper()
	var all []ota.Event
	var before uint64
	for {
		page, next, err := f.s.History(f.t.Context(), store.HistoryQuery{AppID: app, Channel: channel, Before: before, Limit: 500})
		if err != nil {
			f.t.Fatalf("history %s/%s before %d: %v", app, channel, before, err)
		}
		all = append(all, page...)
		if next == 0 {
			return all
		}
		before = next
	}
}

// last returns the newest event of the app.
func (f *fixture) last(app string) ota.Event {
	f.t.Helper()
	evs := f.events(app, "")
	if len(evs) == 0 {
		f.t.Fatalf("history of %s is empty", app)
	}
	return evs[0]
}

func (f *fixture) countEvents() int {
	f.t.Helper()
	return len(f.events("", ""))
}

// wantErr fails unless err matches want (nil: no error).
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("%s: unexpected error %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("%s: error %v; want one wrapping %q", what, err, want)
	}
}

func versions(rs []ota.Release) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Version
	}
	return out
}

// checkEvent compares the fields of ev that a test pins down.
func checkEvent(t *testing.T, ev ota.Event, want ota.Event) {
	t.Helper()
	got := fmt.Sprintf("type=%s app=%s channel=%s version=%s from=%s to=%s actor=%s",
		ev.Type, ev.AppID, ev.Channel, ev.Version, ev.From, ev.To, ev.Actor)
	exp := fmt.Sprintf("type=%s app=%s channel=%s version=%s from=%s to=%s actor=%s",
		want.Type, want.AppID, want.Channel, want.Version, want.From, want.To, actor)
	if got != exp {
		t.Errorf("event = %s; want %s", got, exp)
	}
	if want.SHA256 != "" && ev.SHA256 != want.SHA256 {
		t.Errorf("event sha256 = %s; want %s", ev.SHA256, want.SHA256)
	}
	if want.Note != "" && ev.Note != want.Note {
		t.Errorf("event note = %q; want %q", ev.Note, want.Note)
	}
	if ev.Seq == 0 || ev.Time.IsZero() {
		t.Errorf("event seq=%d time=%v; want both set", ev.Seq, ev.Time)
	}
}

func testUsers(t *testing.T, f *fixture) {
	ctx := t.Context()
	now := f.tick()
	if err := f.s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: []byte("h1"), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("create bob: %v", err)
	}
	if err := f.s.CreateUser(ctx, store.User{Name: "al", PasswordHash: []byte("h0"), CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatalf("create al: %v", err)
	}
	tests := []struct {
		name string
		run  func() error
		want error
	}{
		{"create existing", func() error { return f.s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: []byte("x")}) }, store.ErrConflict},
		{"create empty name", func() error { return f.s.CreateUser(ctx, store.User{PasswordHash: []byte("x")}) }, store.ErrInvalid},
		{"get missing", func() error { _, err := f.s.GetUser(ctx, "carol"); return err }, store.ErrNotFound},
		{"set password missing", func() error { _, err := f.s.SetPassword(ctx, "carol", []byte("x"), now); return err }, store.ErrNotFound},
		{"delete missing", func() error { return f.s.DeleteUser(ctx, "carol") }, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.run(), tt.want) })
	}

	u, err := f.s.GetUser(ctx, "bob")
	if err != nil {
		t.Fatalf("get bob: %v", err)
	}
	if string(u.PasswordHash) != "h1" || u.TokenGeneration != 0 || !u.CreatedAt.Equal(now) {
		t.Errorf("bob = %+v; want hash h1, generation 0, created %v", u, now)
	}
	later := f.tick()
	u, err = f.s.SetPassword(ctx, "bob", []byte("h2"), later)
	if err != nil {
		t.Fatalf("set password: %v", err)
	}
	if string(u.PasswordHash) != "h2" || u.TokenGeneration != 1 || !u.UpdatedAt.Equal(later) || !u.CreatedAt.Equal(now) {
		t.Errorf("after set password bob = %+v; want hash h2, generation 1, updated %v", u, later)
	}
	if u, err = f.s.GetUser(ctx, "bob"); err != nil || u.TokenGeneration != 1 || string(u.PasswordHash) != "h2" || u.ID == "" {
		t.Errorf("stored bob = %+v, %v; want generation 1 and hash h2", u, err)
	}
	users, err := f.s.ListUsers(ctx)
	if err != nil {
		t.Fatalf("list users: %v", err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if !slices.Equal(names, []string{"al", "bob"}) {
		t.Errorf("users = %v; want [al bob]", names)
	}
	first := u.ID
	if first == "" || users[0].ID == "" || users[0].ID == first {
		t.Errorf("user ids %q and %q; want two distinct random ones", users[0].ID, first)
	}
	if err := f.s.DeleteUser(ctx, "bob"); err != nil {
		t.Fatalf("delete bob: %v", err)
	}
	if _, err := f.s.GetUser(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("get deleted bob: %v; want ErrNotFound", err)
	}
	// Created again under the same name, bob is another user: his tokens
	// name the old id.
	if err := f.s.CreateUser(ctx, store.User{Name: "bob", PasswordHash: []byte("h3")}); err != nil {
		t.Fatalf("create bob again: %v", err)
	}
	again, err := f.s.GetUser(ctx, "bob")
	if err != nil {
		t.Fatalf("get bob again: %v", err)
	}
	if again.ID == "" || again.ID == first || again.TokenGeneration != 0 {
		t.Errorf("bob created again = %+v; want a new id (old %q) at generation 0", again, first)
	}
	// A given id is kept.
	if err := f.s.CreateUser(ctx, store.User{ID: "fixed-id-1", Name: "carol", PasswordHash: []byte("h")}); err != nil {
		t.Fatalf("create carol: %v", err)
	}
	if c, err := f.s.GetUser(ctx, "carol"); err != nil || c.ID != "fixed-id-1" {
		t.Errorf("carol = %+v, %v; want id fixed-id-1", c, err)
	}
}

func testPublishNew(t *testing.T, f *fixture) {
	const app = "com.example.app"
	res := f.web(app, "stable", "1.0.0")
	when := *f.now
	if !res.Created || res.Previous != "" || res.Channel != "stable" {
		t.Errorf("first publish = created %t previous %q channel %q; want true, \"\", stable", res.Created, res.Previous, res.Channel)
	}
	b := res.Bundle
	if b.AppID != app || b.Version != "1.0.0" || b.Kind != ota.KindWeb || b.SHA256 != Sum(app+"1.0.0") ||
		b.Size != 500 || b.UploadedBy != actor || !b.UploadedAt.Equal(when) || b.Notes != "notes 1.0.0" ||
		b.MinNative != "1.0.0" || b.Deleted || b.URL != "" {
		t.Errorf("bundle = %+v; want the published fields", b)
	}
	if got := f.bundle(app, ota.KindWeb, "1.0.0"); got.SHA256 != b.SHA256 || !got.UploadedAt.Equal(when) {
		t.Errorf("stored bundle = %+v; want %+v", got, b)
	}
	a := f.app(app)
	if a.DefaultChannel != "stable" || !a.CreatedAt.Equal(when) {
		t.Errorf("app = %+v; want default stable, created %v", a, when)
	}
	c := f.channel(app, "stable")
	if c.ID <= 0 || c.Kind != ota.KindWeb || !c.Public || c.Active != "1.0.0" || c.Policy != ota.DefaultChannelPolicy() ||
		!slices.Equal(versions(c.Releases), []string{"1.0.0"}) || !c.Releases[0].DeployedAt.Equal(when) || !c.UpdatedAt.Equal(when) {
		t.Errorf("channel = %+v; want web, public, active 1.0.0, default policy, one release", c)
	}
	if c.ActiveBundle == nil || c.ActiveBundle.Version != "1.0.0" || c.ActiveBundle.SHA256 != b.SHA256 {
		t.Errorf("active bundle = %+v; want 1.0.0", c.ActiveBundle)
	}
	checkEvent(t, f.last(app), ota.Event{Type: ota.EventUpload, AppID: app, Channel: "stable", Version: "1.0.0", To: "1.0.0", SHA256: b.SHA256})

	res = f.web(app, "stable", "1.1.0")
	if !res.Created || res.Previous != "1.0.0" {
		t.Errorf("second publish = created %t previous %q; want true, 1.0.0", res.Created, res.Previous)
	}
	c = f.channel(app, "stable")
	if c.Active != "1.1.0" || !slices.Equal(versions(c.Releases), []string{"1.0.0", "1.1.0"}) {
		t.Errorf("channel = active %s releases %v; want 1.1.0 [1.0.0 1.1.0]", c.Active, versions(c.Releases))
	}
	checkEvent(t, f.last(app), ota.Event{Type: ota.EventUpload, AppID: app, Channel: "stable", Version: "1.1.0", From: "1.0.0", To: "1.1.0"})

	// A second channel gets its own id and is not public.
	f.web(app, "beta", "1.2.0")
	beta := f.channel(app, "beta")
	if beta.ID == c.ID || beta.ID <= 0 || beta.Public {
		t.Errorf("beta id=%d public=%t; want a positive id other than %d, not public", beta.ID, beta.Public, c.ID)
	}
	if n := f.countEvents(); n != 3 {
		t.Errorf("history has %d events; want 3", n)
	}
}

func testPublishIdempotent(t *testing.T, f *fixture) {
	tests := []struct {
		name         string
		channel      string
		version      string
		wantActive   string
		wantRel      []string
		wantEvent    string // "" = no new event
		wantPrevious string
	}{
		// Each case starts from stable = [1.0.0 2.0.0] active 2.0.0 and
		// beta = [3.0.0] in an app of its own.
		{"retry of the active version", "stable", "2.0.0", "2.0.0", []string{"1.0.0", "2.0.0"}, "", "2.0.0"},
		{"older version on the same channel", "stable", "1.0.0", "1.0.0", []string{"1.0.0", "2.0.0"}, ota.EventActivate, "2.0.0"},
		{"same bytes to another channel", "beta", "1.0.0", "1.0.0", []string{"3.0.0", "1.0.0"}, ota.EventActivate, "3.0.0"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			app := fmt.Sprintf("demo%d", i)
			f.web(app, "stable", "1.0.0")
			f.web(app, "stable", "2.0.0")
			f.web(app, "beta", "3.0.0")
			before := len(f.events(app, ""))
			res, err := f.publish(app, tt.channel, ota.KindWeb, tt.version, Sum(app+tt.version))
			if err != nil {
				t.Fatalf("republish: %v", err)
			}
			if res.Created || res.Previous != tt.wantPrevious || res.Bundle.SHA256 != Sum(app+tt.version) {
				t.Errorf("result = created %t previous %q; want false, %q", res.Created, res.Previous, tt.wantPrevious)
			}
			c := f.channel(app, tt.channel)
			if c.Active != tt.wantActive || !slices.Equal(versions(c.Releases), tt.wantRel) {
				t.Errorf("channel = active %s releases %v; want %s %v", c.Active, versions(c.Releases), tt.wantActive, tt.wantRel)
			}
			after := f.events(app, "")
			switch {
			case tt.wantEvent == "" && len(after) != before:
				t.Errorf("history grew from %d to %d events; want no new event", before, len(after))
			case tt.wantEvent != "":
				if len(after) != before+1 {
					t.Fatalf("history grew from %d to %d events; want one more", before, len(after))
				}
				checkEvent(t, after[0], ota.Event{Type: tt.wantEvent, AppID: app, Channel: tt.channel,
					Version: tt.version, From: tt.wantPrevious, To: tt.version, SHA256: Sum(app + tt.version)})
			}
		})
	}
}

func testPublishConflict(t *testing.T, f *fixture) {
	first := f.web("demo", "stable", "1.0.0")
	before := f.countEvents()
	other := Sum("other bytes")
	_, err := f.publish("demo", "stable", ota.KindWeb, "1.0.0", other)
	wantErr(t, "publish other bytes", err, store.ErrConflict)
	msg := err.Error()
	for _, want := range []string{"1.0.0", first.Bundle.SHA256[:12], other[:12]} {
		if !strings.Contains(msg, want) {
			t.Errorf("conflict message %q does not name %q", msg, want)
		}
	}
	// Same version to another channel with other bytes: still a conflict.
	_, err = f.publish("demo", "beta", ota.KindWeb, "1.0.0", other)
	wantErr(t, "publish other bytes to beta", err, store.ErrConflict)
	if _, err := f.s.GetChannel(t.Context(), "demo", "beta"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("failed publish created channel beta: %v", err)
	}
	if b := f.bundle("demo", ota.KindWeb, "1.0.0"); b.SHA256 != first.Bundle.SHA256 {
		t.Errorf("stored sha256 = %s; want the first %s", b.SHA256, first.Bundle.SHA256)
	}
	if n := f.countEvents(); n != before {
		t.Errorf("history has %d events after conflicts; want %d", n, before)
	}
	// The same version name of the other kind is another bundle.
	if _, err := f.publish("demo", "apk", ota.KindAPK, "1.0.0", other); err != nil {
		t.Errorf("apk 1.0.0 next to web 1.0.0: %v", err)
	}
}

func testPublishDeletedName(t *testing.T, f *fixture) {
	f.web("demo", "stable", "1.0.0")
	f.web("demo", "stable", "1.1.0")
	if _, err := f.s.DeleteRelease(t.Context(), "demo", "stable", "1.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if b := f.bundle("demo", ota.KindWeb, "1.0.0"); !b.Deleted {
		t.Fatalf("bundle 1.0.0 not marked deleted")
	}
	_, err := f.publish("demo", "stable", ota.KindWeb, "1.0.0", Sum("new bytes"))
	wantErr(t, "reuse a deleted name with other bytes", err, store.ErrConflict)

	res, err := f.publish("demo", "stable", ota.KindWeb, "1.0.0", Sum("demo1.0.0"))
	if err != nil {
		t.Fatalf("republish deleted bundle with its bytes: %v", err)
	}
	if res.Created || res.Bundle.Deleted || res.Previous != "1.1.0" {
		t.Errorf("revive = created %t deleted %t previous %q; want false false 1.1.0", res.Created, res.Bundle.Deleted, res.Previous)
	}
	if b := f.bundle("demo", ota.KindWeb, "1.0.0"); b.Deleted {
		t.Errorf("revived bundle still marked deleted")
	}
	c := f.channel("demo", "stable")
	if c.Active != "1.0.0" || !slices.Equal(versions(c.Releases), []string{"1.1.0", "1.0.0"}) {
		t.Errorf("channel = active %s releases %v; want 1.0.0 [1.1.0 1.0.0]", c.Active, versions(c.Releases))
	}
	checkEvent(t, f.last("demo"), ota.Event{Type: ota.EventActivate, AppID: "demo", Channel: "stable", Version: "1.0.0", From: "1.1.0", To: "1.0.0"})
}

func testPublishKinds(t *testing.T, f *fixture) {
	// An app whose first bundle is an APK has no default channel yet.
	f.apk("demo", ota.APKChannel, "1.0.0")
	if a := f.app("demo"); a.DefaultChannel != "" {
		t.Errorf("default channel after an apk = %q; want none", a.DefaultChannel)
	}
	if c := f.channel("demo", ota.APKChannel); c.Kind != ota.KindAPK || c.Active != "1.0.0" || c.Public {
		t.Errorf("apk channel = kind %s active %s public %t; want apk 1.0.0 false", c.Kind, c.Active, c.Public)
	}
	f.web("demo", "beta", "1.0.0")
	if a := f.app("demo"); a.DefaultChannel != "beta" {
		t.Errorf("default channel = %q; want beta, the first web channel", a.DefaultChannel)
	}
	f.web("demo", "stable", "1.0.0")
	if a := f.app("demo"); a.DefaultChannel != "beta" {
		t.Errorf("default channel = %q after a second web channel; want beta kept", a.DefaultChannel)
	}

	tests := []struct {
		name, channel, kind string
	}{
		{"web into an apk channel", ota.APKChannel, ota.KindWeb},
		{"apk into a web channel", "beta", ota.KindAPK},
		{"unknown kind", "beta", "ipa"},
		{"empty kind", "beta", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.countEvents()
			_, err := f.publish("demo", tt.channel, tt.kind, "9.9.9", Sum("x"))
			wantErr(t, tt.name, err, store.ErrInvalid)
			if _, err := f.s.GetBundle(t.Context(), "demo", ota.KindWeb, "9.9.9"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("refused publish stored a bundle: %v", err)
			}
			if n := f.countEvents(); n != before {
				t.Errorf("refused publish added %d events", n-before)
			}
		})
	}
}

func testPublishInvalid(t *testing.T, f *fixture) {
	long := strings.Repeat("x", 100000)
	tests := []struct {
		name                          string
		app, channel, version, sha256 string
	}{
		{"empty app", "", "stable", "1.0.0", Sum("a")},
		{"empty channel", "demo", "", "1.0.0", Sum("a")},
		{"empty version", "demo", "stable", "", Sum("a")},
		{"empty sha256", "demo", "stable", "1.0.0", ""},
		{"builtin version", "demo", "stable", ota.VersionBuiltin, Sum("a")},
		{"huge app id", long, "stable", "1.0.0", Sum("a")},
		{"huge version", "demo", "stable", long, Sum("a")},
		{"nul in channel", "demo", "sta\x00ble", "1.0.0", Sum("a")},
		{"invalid utf-8 version", "demo", "stable", "1.0.\x99", Sum("a")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			_, err := f.publish(tt.app, tt.channel, ota.KindWeb, tt.version, tt.sha256)
			wantErr(t, tt.name, err, store.ErrInvalid)
		})
	}
	if apps, err := f.s.ListApps(t.Context()); err != nil || len(apps) != 0 {
		t.Errorf("apps after refused publishes = %v, %v; want none", apps, err)
	}
}

func testRollback(t *testing.T, f *fixture) {
	ctx := t.Context()
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		f.web("demo", "stable", v)
	}
	steps := []struct {
		name     string
		from, to string
		want     error
	}{
		{"to the release before", "1.2.0", "1.1.0", nil},
		{"walks further back", "1.1.0", "1.0.0", nil},
		{"nothing before the first", "1.0.0", "", store.ErrNoPrevious},
	}
	for _, st := range steps {
		before := f.countEvents()
		got, err := f.s.Rollback(ctx, "demo", "stable", "", actor, f.tick())
		wantErr(t, st.name, err, st.want)
		if st.want != nil {
			if n := f.countEvents(); n != before {
				t.Errorf("%s: failed rollback added an event", st.name)
			}
			continue
		}
		if got != (ota.ChannelChange{AppID: "demo", Channel: "stable", From: st.from, To: st.to}) {
			t.Errorf("%s: rollback = %+v; want %s → %s", st.name, got, st.from, st.to)
		}
		c := f.channel("demo", "stable")
		if c.Active != st.to || c.ActiveBundle == nil || c.ActiveBundle.Version != st.to {
			t.Errorf("%s: active = %s (%+v); want %s", st.name, c.Active, c.ActiveBundle, st.to)
		}
		if !slices.Equal(versions(c.Releases), []string{"1.0.0", "1.1.0", "1.2.0"}) {
			t.Errorf("%s: releases = %v; rollback must not change them", st.name, versions(c.Releases))
		}
		checkEvent(t, f.last("demo"), ota.Event{Type: ota.EventRollback, AppID: "demo", Channel: "stable",
			Version: st.to, From: st.from, To: st.to, SHA256: Sum("demo" + st.to)})
	}

	errs := []struct {
		name, app, channel, to string
		want                   error
	}{
		{"unknown app", "nope", "stable", "", store.ErrNotFound},
		{"unknown channel", "demo", "nope", "", store.ErrNotFound},
		{"unknown version", "demo", "stable", "9.9.9", store.ErrNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			_, err := f.s.Rollback(ctx, tt.app, tt.channel, tt.to, actor, f.tick())
			wantErr(t, tt.name, err, tt.want)
			if tt.want == store.ErrNotFound && !strings.Contains(err.Error(), "nope") && !strings.Contains(err.Error(), "9.9.9") {
				t.Errorf("message %q does not name what is missing", err)
			}
		})
	}

	// An empty channel has nothing to roll back to.
	f.web("demo", "beta", "2.0.0")
	if _, err := f.s.DeleteRelease(ctx, "demo", "beta", "2.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err := f.s.Rollback(ctx, "demo", "beta", "", actor, f.tick())
	wantErr(t, "rollback of an empty channel", err, store.ErrNoPrevious)
}

func testRollbackNamed(t *testing.T, f *fixture) {
	ctx := t.Context()
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		f.web("demo", "stable", v)
	}
	f.web("demo", "beta", "2.0.0")
	f.apk("demo", ota.APKChannel, "5.0.0")
	f.apk("demo", ota.APKChannel, "5.1.0")
	f.web("demo", "gone", "3.0.0")
	if _, err := f.s.DeleteRelease(ctx, "demo", "gone", "3.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}

	tests := []struct {
		name, channel, to string
		wantFrom          string
		wantActive        string
		want              error
		wantNoEvent       bool
	}{
		{"named older release", "stable", "1.0.0", "1.2.0", "1.0.0", nil, false},
		{"same version again changes nothing", "stable", "1.0.0", "1.0.0", "1.0.0", nil, true},
		{"a bundle released on another channel", "stable", "2.0.0", "1.0.0", "2.0.0", nil, false},
		{"before a version not in releases is the last release", "stable", "", "2.0.0", "1.2.0", nil, false},
		{"builtin on a web channel", "stable", ota.VersionBuiltin, "1.2.0", ota.VersionBuiltin, nil, false},
		{"from builtin back to the last release", "stable", "", ota.VersionBuiltin, "1.2.0", nil, false},
		{"builtin on an apk channel", ota.APKChannel, ota.VersionBuiltin, "", "5.1.0", store.ErrInvalid, false},
		{"apk version on a web channel", "stable", "5.0.0", "", "1.2.0", store.ErrNotFound, false},
		{"web version on an apk channel", ota.APKChannel, "1.0.0", "", "5.1.0", store.ErrNotFound, false},
		{"deleted bundle", "stable", "3.0.0", "", "1.2.0", store.ErrNotFound, false},
		{"apk rollback", ota.APKChannel, "", "5.1.0", "5.0.0", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.countEvents()
			got, err := f.s.Rollback(ctx, "demo", tt.channel, tt.to, actor, f.tick())
			wantErr(t, tt.name, err, tt.want)
			c := f.channel("demo", tt.channel)
			if c.Active != tt.wantActive {
				t.Errorf("active = %s; want %s", c.Active, tt.wantActive)
			}
			after := f.countEvents()
			if tt.want != nil || tt.wantNoEvent {
				if after != before {
					t.Errorf("history grew by %d; want no event", after-before)
				}
				return
			}
			if got.From != tt.wantFrom || got.To != tt.wantActive {
				t.Errorf("rollback = %+v; want %s → %s", got, tt.wantFrom, tt.wantActive)
			}
			if after != before+1 {
				t.Errorf("history grew by %d; want 1", after-before)
			}
			checkEvent(t, f.last("demo"), ota.Event{Type: ota.EventRollback, AppID: "demo", Channel: tt.channel,
				Version: tt.wantActive, From: tt.wantFrom, To: tt.wantActive})
			if tt.wantActive == ota.VersionBuiltin && c.ActiveBundle != nil {
				t.Errorf("builtin channel has active bundle %+v; want none", c.ActiveBundle)
			}
		})
	}
}

func testPromote(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "beta", "1.0.0")
	f.web("demo", "beta", "1.1.0")
	f.apk("demo", ota.APKChannel, "7.0.0")
	f.web("demo", "empty", "0.1.0")
	if _, err := f.s.DeleteRelease(ctx, "demo", "empty", "0.1.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}

	tests := []struct {
		name, version, from, to string
		wantFrom, wantTo        string
		wantReleases            []string
		want                    error
	}{
		{"what beta serves to a new channel", "", "beta", "production", "", "1.1.0", []string{"1.1.0"}, nil},
		{"retry changes nothing", "", "beta", "production", "1.1.0", "1.1.0", []string{"1.1.0"}, nil},
		{"a named older version", "1.0.0", "beta", "production", "1.1.0", "1.0.0", []string{"1.1.0", "1.0.0"}, nil},
		{"back again appends a release", "", "beta", "production", "1.0.0", "1.1.0", []string{"1.1.0", "1.0.0", "1.1.0"}, nil},
		{"apk to a new apk channel", "", ota.APKChannel, "apk-prod", "", "7.0.0", []string{"7.0.0"}, nil},
		{"web into an apk channel", "", "beta", ota.APKChannel, "", "", nil, store.ErrInvalid},
		{"same channel", "", "beta", "beta", "", "", nil, store.ErrInvalid},
		{"source serves nothing", "", "empty", "production", "", "", nil, store.ErrInvalid},
		{"unknown version", "9.9.9", "beta", "production", "", "", nil, store.ErrNotFound},
		{"deleted version", "0.1.0", "empty", "production", "", "", nil, store.ErrNotFound},
		{"unknown source channel", "", "nope", "production", "", "", nil, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.countEvents()
			got, err := f.s.Promote(ctx, "demo", tt.version, tt.from, tt.to, actor, f.tick())
			wantErr(t, tt.name, err, tt.want)
			after := f.countEvents()
			if tt.want != nil {
				if after != before {
					t.Errorf("failed promote added %d events", after-before)
				}
				return
			}
			if got != (ota.ChannelChange{AppID: "demo", Channel: tt.to, From: tt.wantFrom, To: tt.wantTo}) {
				t.Errorf("promote = %+v; want %s → %s on %s", got, tt.wantFrom, tt.wantTo, tt.to)
			}
			c := f.channel("demo", tt.to)
			if c.Active != tt.wantTo || !slices.Equal(versions(c.Releases), tt.wantReleases) {
				t.Errorf("%s = active %s releases %v; want %s %v", tt.to, c.Active, versions(c.Releases), tt.wantTo, tt.wantReleases)
			}
			if tt.wantFrom == tt.wantTo {
				if after != before {
					t.Errorf("no-op promote added %d events", after-before)
				}
				return
			}
			checkEvent(t, f.last("demo"), ota.Event{Type: ota.EventPromote, AppID: "demo", Channel: tt.to,
				Version: tt.wantTo, From: tt.wantFrom, To: tt.wantTo, Note: "from " + tt.from})
		})
	}
	if c := f.channel("demo", "apk-prod"); c.Kind != ota.KindAPK {
		t.Errorf("apk-prod kind = %s; want apk", c.Kind)
	}
	if c := f.channel("demo", "production"); c.Kind != ota.KindWeb || c.Public {
		t.Errorf("production = kind %s public %t; want web, not public (beta came first)", c.Kind, c.Public)
	}
	_, err := f.s.Promote(ctx, "nope", "", "beta", "production", actor, f.tick())
	wantErr(t, "promote in an unknown app", err, store.ErrNotFound)
}

func testDeleteRelease(t *testing.T, f *fixture) {
	ctx := t.Context()
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		f.web("demo", "stable", v)
	}
	f.web("demo", "beta", "1.1.0")

	tests := []struct {
		name, channel, version string
		wantFrom, wantTo       string
		wantReleases           []string
		wantDeleted            bool
		want                   error
	}{
		{"active walks back to the previous", "stable", "1.2.0", "1.2.0", "1.1.0", []string{"1.0.0", "1.1.0"}, true, nil},
		{"not released here", "stable", "1.2.0", "", "", nil, false, store.ErrNotFound},
		{"never uploaded", "stable", "9.9.9", "", "", nil, false, store.ErrNotFound},
		{"inactive release goes, active stays", "stable", "1.0.0", "1.1.0", "1.1.0", []string{"1.1.0"}, true, nil},
		{"bundle still on beta is kept", "stable", "1.1.0", "1.1.0", "", []string{}, false, nil},
		{"last channel of the bundle", "beta", "1.1.0", "1.1.0", "", []string{}, true, nil},
		{"unknown channel", "nope", "1.1.0", "", "", nil, false, store.ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.countEvents()
			got, err := f.s.DeleteRelease(ctx, "demo", tt.channel, tt.version, actor, f.tick())
			wantErr(t, tt.name, err, tt.want)
			if tt.want != nil {
				if n := f.countEvents(); n != before {
					t.Errorf("failed delete added %d events", n-before)
				}
				return
			}
			if got != (ota.ChannelChange{AppID: "demo", Channel: tt.channel, From: tt.wantFrom, To: tt.wantTo}) {
				t.Errorf("delete = %+v; want %s → %s", got, tt.wantFrom, tt.wantTo)
			}
			c := f.channel("demo", tt.channel)
			if c.Active != tt.wantTo || !slices.Equal(versions(c.Releases), tt.wantReleases) {
				t.Errorf("channel = active %q releases %v; want %q %v", c.Active, versions(c.Releases), tt.wantTo, tt.wantReleases)
			}
			if tt.wantTo == "" && c.ActiveBundle != nil {
				t.Errorf("empty channel has active bundle %+v", c.ActiveBundle)
			}
			if b := f.bundle("demo", ota.KindWeb, tt.version); b.Deleted != tt.wantDeleted {
				t.Errorf("bundle deleted = %t; want %t", b.Deleted, tt.wantDeleted)
			}
			checkEvent(t, f.last("demo"), ota.Event{Type: ota.EventDelete, AppID: "demo", Channel: tt.channel,
				Version: tt.version, From: tt.wantFrom, To: tt.wantTo, SHA256: Sum("demo" + tt.version)})
		})
	}
	_, err := f.s.DeleteRelease(ctx, "nope", "stable", "1.0.0", actor, f.tick())
	wantErr(t, "delete in an unknown app", err, store.ErrNotFound)
}

// testDeleteKeepsServed: a channel pointed at a bundle by a named rollback
// serves it without listing it; deleting the bundle's last release elsewhere
// must not mark it deleted, or its bytes would be collected under devices.
func testDeleteKeepsServed(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	f.web("demo", "beta", "2.0.0")
	if _, err := f.s.Rollback(ctx, "demo", "stable", "2.0.0", actor, f.tick()); err != nil {
		t.Fatalf("rollback to 2.0.0: %v", err)
	}
	if _, err := f.s.DeleteRelease(ctx, "demo", "beta", "2.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if b := f.bundle("demo", ota.KindWeb, "2.0.0"); b.Deleted {
		t.Errorf("bundle served by stable was marked deleted")
	}
	refs, err := f.s.ReferencedBlobs(ctx)
	if err != nil {
		t.Fatalf("referenced blobs: %v", err)
	}
	if !refs[Sum("demo2.0.0")] {
		t.Errorf("blob of 2.0.0 not referenced while stable serves it")
	}
}

func testUpdateChannel(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	f.web("demo", "beta", "1.0.0")
	f.apk("demo", ota.APKChannel, "1.0.0")
	yes, no := true, false
	str := func(s string) *string { return &s }

	tests := []struct {
		name        string
		channel     string
		patch       ota.ChannelPolicyPatch
		want        error
		wantEvents  []string // newest first
		wantDefault string
		check       func(p ota.ChannelPolicy) bool
	}{
		{"no change records nothing", "beta", ota.ChannelPolicyPatch{IOS: &yes}, nil, nil, "stable",
			func(p ota.ChannelPolicy) bool { return p == ota.DefaultChannelPolicy() }},
		{"flags and mode", "beta", ota.ChannelPolicyPatch{IOS: &no, AllowSelfSet: &yes, DisableAutoUpdate: str(ota.DisableMajor), AllowEmulator: &no},
			nil, []string{ota.EventPolicy}, "stable",
			func(p ota.ChannelPolicy) bool {
				return !p.IOS && p.AllowSelfSet && p.DisableAutoUpdate == ota.DisableMajor && !p.AllowEmulator && p.Android && p.AllowProd
			}},
		{"every mode is accepted", "beta", ota.ChannelPolicyPatch{DisableAutoUpdate: str(ota.DisableVersionNumber)}, nil, []string{ota.EventPolicy}, "stable",
			func(p ota.ChannelPolicy) bool { return p.DisableAutoUpdate == ota.DisableVersionNumber && !p.IOS }},
		{"bad mode", "beta", ota.ChannelPolicyPatch{DisableAutoUpdate: str("always"), IOS: &yes}, store.ErrInvalid, nil, "stable",
			func(p ota.ChannelPolicy) bool { return !p.IOS }},
		{"make default", "beta", ota.ChannelPolicyPatch{Default: &yes}, nil, []string{ota.EventDefault}, "beta", nil},
		{"policy and default together", "stable", ota.ChannelPolicyPatch{Default: &yes, Android: &no}, nil, []string{ota.EventDefault, ota.EventPolicy}, "stable",
			func(p ota.ChannelPolicy) bool { return !p.Android }},
		{"default false on another channel changes nothing", "beta", ota.ChannelPolicyPatch{Default: &no}, nil, nil, "stable", nil},
		{"default false on the default clears it", "stable", ota.ChannelPolicyPatch{Default: &no}, nil, []string{ota.EventDefault}, "", nil},
		{"apk channel cannot be default", ota.APKChannel, ota.ChannelPolicyPatch{Default: &yes}, store.ErrInvalid, nil, "", nil},
		{"a cleared default stays cleared on publish", "", ota.ChannelPolicyPatch{}, nil, nil, "", nil},
		{"unknown channel", "nope", ota.ChannelPolicyPatch{IOS: &no}, store.ErrNotFound, nil, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			if tt.channel == "" {
				f.web("demo", "beta", "1.1.0")
				f.web("demo", "gamma", "1.1.0")
				if a := f.app("demo"); a.DefaultChannel != tt.wantDefault {
					t.Errorf("default channel after publishes = %q; want %q", a.DefaultChannel, tt.wantDefault)
				}
				return
			}
			before := f.countEvents()
			got, err := f.s.UpdateChannel(ctx, "demo", tt.channel, tt.patch, actor, f.tick())
			wantErr(t, tt.name, err, tt.want)
			evs := f.events("demo", "")
			if n := len(evs) - before; n != len(tt.wantEvents) {
				t.Fatalf("history grew by %d; want %d", n, len(tt.wantEvents))
			}
			for i, typ := range tt.wantEvents {
				if evs[i].Type != typ || evs[i].Channel != tt.channel || evs[i].Actor != actor {
					t.Errorf("event %d = %+v; want %s on %s", i, evs[i], typ, tt.channel)
				}
			}
			if a := f.app("demo"); a.DefaultChannel != tt.wantDefault {
				t.Errorf("default channel = %q; want %q", a.DefaultChannel, tt.wantDefault)
			}
			if tt.want != nil {
				return
			}
			stored := f.channel("demo", tt.channel)
			if got.Public != (tt.channel == tt.wantDefault) || stored.Public != got.Public {
				t.Errorf("public = %t (stored %t); want %t", got.Public, stored.Public, tt.channel == tt.wantDefault)
			}
			if got.Policy != stored.Policy {
				t.Errorf("returned policy %+v differs from stored %+v", got.Policy, stored.Policy)
			}
			if tt.check != nil && !tt.check(stored.Policy) {
				t.Errorf("policy = %+v; not what the patch asked", stored.Policy)
			}
			if got.ActiveBundle == nil || got.Active != "1.0.0" {
				t.Errorf("returned channel lacks its active bundle: %+v", got)
			}
		})
	}
	// The policy event says what changed.
	evs := f.events("demo", "beta")
	for _, ev := range evs {
		if ev.Type == ota.EventPolicy && ev.Note != "" && strings.Contains(ev.Note, "disable_auto_update=major") {
			return
		}
	}
	t.Errorf("no policy event of beta notes disable_auto_update=major: %+v", evs)
}

func testReads(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("b.app", "stable", "1.0.0")
	f.web("a.app", "stable", "1.0.0")
	f.web("a.app", "beta", "2.0.0")
	f.apk("a.app", ota.APKChannel, "2.0.0")

	apps, err := f.s.ListApps(ctx)
	if err != nil {
		t.Fatalf("list apps: %v", err)
	}
	if len(apps) != 2 || apps[0].ID != "a.app" || apps[1].ID != "b.app" {
		t.Errorf("apps = %+v; want a.app, b.app", apps)
	}
	chans, err := f.s.ListChannels(ctx, "a.app")
	if err != nil {
		t.Fatalf("list channels: %v", err)
	}
	var names []string
	for _, c := range chans {
		names = append(names, c.Name)
		if c.AppID != "a.app" || c.ActiveBundle == nil || c.ActiveBundle.Kind != c.Kind {
			t.Errorf("channel %s = %+v; want app a.app and an active bundle of its kind", c.Name, c)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{ota.APKChannel, "beta", "stable"}) {
		t.Errorf("channels = %v; want apk, beta, stable", names)
	}
	bundles, err := f.s.ListBundles(ctx, "a.app")
	if err != nil {
		t.Fatalf("list bundles: %v", err)
	}
	var got []string
	for _, b := range bundles {
		got = append(got, b.Kind+" "+b.Version)
	}
	if !slices.Equal(got, []string{"web 1.0.0", "web 2.0.0", "apk 2.0.0"}) {
		t.Errorf("bundles = %v; want upload order web 1.0.0, web 2.0.0, apk 2.0.0", got)
	}

	errs := []struct {
		name string
		run  func() error
		want error
	}{
		{"get unknown app", func() error { _, err := f.s.GetApp(ctx, "nope"); return err }, store.ErrNotFound},
		{"channels of unknown app", func() error { _, err := f.s.ListChannels(ctx, "nope"); return err }, store.ErrNotFound},
		{"unknown channel", func() error { _, err := f.s.GetChannel(ctx, "a.app", "nope"); return err }, store.ErrNotFound},
		{"bundles of unknown app", func() error { _, err := f.s.ListBundles(ctx, "nope"); return err }, store.ErrNotFound},
		{"unknown bundle", func() error { _, err := f.s.GetBundle(ctx, "a.app", ota.KindWeb, "9.9.9"); return err }, store.ErrNotFound},
		{"bundle of other kind", func() error { _, err := f.s.GetBundle(ctx, "b.app", ota.KindAPK, "1.0.0"); return err }, store.ErrNotFound},
		{"bundle of bad kind", func() error { _, err := f.s.GetBundle(ctx, "a.app", "zip", "1.0.0"); return err }, store.ErrInvalid},
		{"empty app id", func() error { _, err := f.s.GetApp(ctx, ""); return err }, store.ErrInvalid},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) { wantErr(t, tt.name, tt.run(), tt.want) })
	}
}

func testHistory(t *testing.T, f *fixture) {
	ctx := t.Context()
	// 12 events, interleaved over two apps and channels.
	for i := range 4 {
		f.web("a", "stable", fmt.Sprintf("1.%d.0", i))
		f.web("a", "beta", fmt.Sprintf("2.%d.0", i))
		f.web("b", "stable", fmt.Sprintf("3.%d.0", i))
	}
	all := f.events("", "")
	if len(all) != 12 {
		t.Fatalf("history has %d events; want 12", len(all))
	}
	for i, ev := range all {
		if i > 0 && ev.Seq >= all[i-1].Seq {
			t.Fatalf("history not newest first at %d: seq %d after %d", i, ev.Seq, all[i-1].Seq)
		}
		if i > 0 && all[i-1].Seq-ev.Seq != 1 {
			t.Errorf("seq jumps from %d to %d; want steps of one", all[i-1].Seq, ev.Seq)
		}
	}
	if all[0].AppID != "b" || all[0].Version != "3.3.0" {
		t.Errorf("newest = %+v; want b 3.3.0", all[0])
	}

	tests := []struct {
		name       string
		app, ch    string
		limit      int
		wantLen    int
		wantFilter func(ota.Event) bool
	}{
		{"all in pages of 5", "", "", 5, 12, func(ota.Event) bool { return true }},
		{"app a in pages of 3", "a", "", 3, 8, func(e ota.Event) bool { return e.AppID == "a" }},
		{"app a beta in pages of 3", "a", "beta", 3, 4, func(e ota.Event) bool { return e.AppID == "a" && e.Channel == "beta" }},
		{"app b stable in one page", "b", "stable", 4, 4, func(e ota.Event) bool { return e.AppID == "b" }},
		{"page size 1", "a", "stable", 1, 4, func(e ota.Event) bool { return e.Channel == "stable" && e.AppID == "a" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			var got []ota.Event
			var before uint64
			pages := 0
			for {
				page, next, err := f.s.History(ctx, store.HistoryQuery{AppID: tt.app, Channel: tt.ch, Before: before, Limit: tt.limit})
				if err != nil {
					t.Fatalf("history page %d: %v", pages, err)
				}
				pages++
				if len(page) > tt.limit {
					t.Fatalf("page %d has %d events; limit %d", pages, len(page), tt.limit)
				}
				if next != 0 && (len(page) == 0 || next != page[len(page)-1].Seq) {
					t.Fatalf("next = %d; want the last returned seq", next)
				}
				got = append(got, page...)
				if next == 0 {
					break
				}
				before = next
				if pages > 100 {
					t.Fatal("paging does not end")
				}
			}
			if len(got) != tt.wantLen {
				t.Fatalf("paged %d events; want %d", len(got), tt.wantLen)
			}
			if wantPages := (tt.wantLen + tt.limit - 1) / tt.limit; pages != wantPages {
				t.Errorf("took %d pages; want %d (next must be 0 on the last page)", pages, wantPages)
			}
			var want []ota.Event
			for _, ev := range all {
				if tt.wantFilter(ev) {
					want = append(want, ev)
				}
			}
			if !slices.EqualFunc(got, want, func(a, b ota.Event) bool { return a.Seq == b.Seq }) {
				t.Errorf("paged seqs differ from the filtered full history")
			}
		})
	}

	// Before is exclusive.
	mid := all[5].Seq
	page, _, err := f.s.History(ctx, store.HistoryQuery{Before: mid, Limit: 2})
	if err != nil {
		t.Fatalf("history before %d: %v", mid, err)
	}
	if len(page) != 2 || page[0].Seq != mid-1 || page[1].Seq != mid-2 {
		t.Errorf("history before %d = %v; want %d, %d", mid, page, mid-1, mid-2)
	}
	if page, next, err := f.s.History(ctx, store.HistoryQuery{Before: all[len(all)-1].Seq}); err != nil || len(page) != 0 || next != 0 {
		t.Errorf("history before the first = %v, %d, %v; want empty, 0", page, next, err)
	}
	// A channel with no events yet gives an empty page.
	if _, err := f.s.UpdateChannel(ctx, "a", "stable", ota.ChannelPolicyPatch{}, actor, f.tick()); err != nil {
		t.Fatalf("empty patch: %v", err)
	}

	errs := []struct {
		name string
		q    store.HistoryQuery
		want error
	}{
		{"channel without app", store.HistoryQuery{Channel: "stable"}, store.ErrInvalid},
		{"unknown app", store.HistoryQuery{AppID: "nope"}, store.ErrNotFound},
		{"unknown channel", store.HistoryQuery{AppID: "a", Channel: "nope"}, store.ErrNotFound},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			_, _, err := f.s.History(ctx, tt.q)
			wantErr(t, tt.name, err, tt.want)
		})
	}
}

func testHistoryLimit(t *testing.T, f *fixture) {
	if testing.Short() {
		t.Skip("writes 520 events")
	}
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	f.web("demo", "beta", "1.0.0")
	for i := range 519 {
		ch := []string{"stable", "beta"}[i%2]
		o := store.DeviceOverride{AppID: "demo", DeviceID: fmt.Sprintf("dev-%d", i/2), Channel: ch}
		if err := f.s.SetOverride(ctx, o, actor, f.tick()); err != nil {
			t.Fatalf("override %d: %v", i, err)
		}
	}
	tests := []struct {
		limit, want int
	}{{0, 50}, {-1, 50}, {7, 7}, {500, 500}, {501, 500}, {100000, 500}}
	for _, tt := range tests {
		page, next, err := f.s.History(ctx, store.HistoryQuery{AppID: "demo", Limit: tt.limit})
		if err != nil {
			t.Fatalf("history limit %d: %v", tt.limit, err)
		}
		if len(page) != tt.want || next == 0 {
			t.Errorf("history limit %d = %d events, next %d; want %d and more", tt.limit, len(page), next, tt.want)
		}
	}
}

func testOverrides(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	f.web("demo", "beta", "1.1.0")
	set := func(dev, ch string) error {
		return f.s.SetOverride(ctx, store.DeviceOverride{AppID: "demo", DeviceID: dev, Channel: ch}, actor, f.tick())
	}
	tests := []struct {
		name, device, channel string
		want                  error
		wantEvent             bool
	}{
		{"pin", "ABC-123", "beta", nil, true},
		{"same pin again", "abc-123", "beta", nil, false},
		{"repin", "Abc-123", "stable", nil, true},
		{"unknown channel", "abc-123", "nope", store.ErrNotFound, false},
		{"empty device", "", "beta", store.ErrInvalid, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			before := f.countEvents()
			wantErr(t, tt.name, set(tt.device, tt.channel), tt.want)
			if n := f.countEvents() - before; n != map[bool]int{true: 1, false: 0}[tt.wantEvent] {
				t.Errorf("history grew by %d", n)
			}
			if tt.wantEvent {
				ev := f.last("demo")
				if ev.Type != ota.EventOverride || ev.Channel != tt.channel || ev.Actor != actor ||
					!strings.Contains(ev.Note, strings.ToLower(tt.device)) {
					t.Errorf("event = %+v; want device_override to %s naming the device", ev, tt.channel)
				}
			}
		})
	}
	err := f.s.SetOverride(ctx, store.DeviceOverride{AppID: "nope", DeviceID: "d", Channel: "beta"}, actor, f.tick())
	wantErr(t, "override in unknown app", err, store.ErrNotFound)

	st, err := f.s.LoadAppState(ctx, "demo")
	if err != nil {
		t.Fatalf("load app state: %v", err)
	}
	want := []store.DeviceOverride{{AppID: "demo", DeviceID: "abc-123", Channel: "stable"}}
	if !slices.Equal(st.Overrides, want) {
		t.Errorf("overrides = %+v; want %+v", st.Overrides, want)
	}
	before := f.countEvents()
	if err := f.s.DeleteOverride(ctx, "demo", "ABC-123", false, actor, f.tick()); err != nil {
		t.Fatalf("delete override: %v", err)
	}
	if ev := f.last("demo"); f.countEvents() != before+1 || ev.Type != ota.EventOverride || ev.From != "stable" || ev.To != "" || ev.Actor != actor {
		t.Errorf("event of the delete = %+v; want device_override from stable to nothing by %s", ev, actor)
	}
	wantErr(t, "delete again", f.s.DeleteOverride(ctx, "demo", "abc-123", false, actor, f.tick()), store.ErrNotFound)
	wantErr(t, "delete in unknown app", f.s.DeleteOverride(ctx, "nope", "abc-123", false, actor, f.tick()), store.ErrNotFound)
	if st, err := f.s.LoadAppState(ctx, "demo"); err != nil || len(st.Overrides) != 0 {
		t.Errorf("overrides after delete = %+v, %v; want none", st.Overrides, err)
	}
	testOverrideOwners(t, f)
}

// testOverrideOwners: a device replaces or removes only a pin it set
// itself; an admin's pin stands until an admin changes it, and every
// change is in the history.
func testOverrideOwners(t *testing.T, f *fixture) {
	ctx := t.Context()
	const dev, self = "legacy-1", "device:legacy-1"
	bySelf := func(ch string) error {
		return f.s.SetOverride(ctx, store.DeviceOverride{AppID: "demo", DeviceID: dev, Channel: ch, ByDevice: true}, self, f.tick())
	}
	pins := func() []store.DeviceOverride {
		st, err := f.s.LoadAppState(ctx, "demo")
		if err != nil {
			t.Fatalf("load app state: %v", err)
		}
		return st.Overrides
	}
	if err := bySelf("beta"); err != nil {
		t.Fatalf("device pins itself: %v", err)
	}
	if err := bySelf("stable"); err != nil {
		t.Fatalf("device moves its own pin: %v", err)
	}
	if got := pins(); len(got) != 1 || got[0] != (store.DeviceOverride{AppID: "demo", DeviceID: dev, Channel: "stable", ByDevice: true}) {
		t.Errorf("pins = %+v; want the device's own pin to stable", got)
	}
	if err := f.s.DeleteOverride(ctx, "demo", dev, true, self, f.tick()); err != nil {
		t.Fatalf("device removes its own pin: %v", err)
	}
	if err := f.s.SetOverride(ctx, store.DeviceOverride{AppID: "demo", DeviceID: dev, Channel: "beta"}, actor, f.tick()); err != nil {
		t.Fatalf("admin pins the device: %v", err)
	}
	before := f.countEvents()
	wantErr(t, "device replaces an admin's pin", bySelf("stable"), store.ErrConflict)
	wantErr(t, "device removes an admin's pin", f.s.DeleteOverride(ctx, "demo", dev, true, self, f.tick()), store.ErrConflict)
	if n := f.countEvents() - before; n != 0 {
		t.Errorf("refused device changes recorded %d events", n)
	}
	if got := pins(); len(got) != 1 || got[0] != (store.DeviceOverride{AppID: "demo", DeviceID: dev, Channel: "beta"}) {
		t.Errorf("pins = %+v; want the admin's pin to beta, unchanged", got)
	}
	// An admin taking over a device's pin on the same channel makes it
	// the admin's, with an event.
	if err := f.s.DeleteOverride(ctx, "demo", dev, false, actor, f.tick()); err != nil {
		t.Fatal(err)
	}
	if err := bySelf("beta"); err != nil {
		t.Fatal(err)
	}
	before = f.countEvents()
	if err := f.s.SetOverride(ctx, store.DeviceOverride{AppID: "demo", DeviceID: dev, Channel: "beta"}, actor, f.tick()); err != nil {
		t.Fatal(err)
	}
	if f.countEvents() != before+1 || len(pins()) != 1 || pins()[0].ByDevice {
		t.Errorf("after an admin pinned a self-pinned device to its channel: pins %+v, %d events", pins(), f.countEvents()-before)
	}
	wantErr(t, "device replaces it now", bySelf("stable"), store.ErrConflict)
}

func testStats(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	base := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	stat := func(app, action string, at time.Duration) store.StoredStat {
		return store.StoredStat{Received: base.Add(at), Event: ota.StatsEvent{
			DeviceInfo: ota.DeviceInfo{AppID: app, DeviceID: "dev-1", VersionName: "1.0.0", Platform: "android"},
			Action:     action,
		}}
	}
	// Out of order on purpose: Stats is ordered by receipt time.
	err := f.s.AppendStats(ctx, []store.StoredStat{
		stat("demo", "set", 2*time.Minute),
		stat("demo", "download_complete", time.Minute),
		stat("unknown.app", "set", time.Minute),
		stat("demo", "app_moved_to_foreground", 3*time.Minute),
	})
	if err != nil {
		t.Fatalf("append stats: %v", err)
	}
	if err := f.s.AppendStats(ctx, nil); err != nil {
		t.Fatalf("append no stats: %v", err)
	}
	tests := []struct {
		name  string
		since time.Time
		limit int
		want  []string
	}{
		{"all", time.Time{}, 0, []string{"download_complete", "set", "app_moved_to_foreground"}},
		{"since is inclusive", base.Add(2 * time.Minute), 0, []string{"set", "app_moved_to_foreground"}},
		{"limit", time.Time{}, 2, []string{"download_complete", "set"}},
		{"since after all", base.Add(time.Hour), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := f.sub(t)
			got, err := f.s.Stats(ctx, "demo", tt.since, tt.limit)
			if err != nil {
				t.Fatalf("stats: %v", err)
			}
			var actions []string
			for _, s := range got {
				actions = append(actions, s.Event.Action)
				if s.Event.DeviceID != "dev-1" || s.Event.Platform != "android" || s.Received.IsZero() {
					t.Errorf("stat = %+v; want its device fields and receipt time", s)
				}
			}
			if !slices.Equal(actions, tt.want) {
				t.Errorf("actions = %v; want %v", actions, tt.want)
			}
		})
	}
	_, err = f.s.Stats(ctx, "unknown.app", time.Time{}, 0)
	wantErr(t, "stats of an unknown app", err, store.ErrNotFound)
}

func testLoadState(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	f.web("a", "stable", "1.1.0")
	f.web("a", "beta", "2.0.0")
	f.apk("a", ota.APKChannel, "1.0.0")
	f.web("a", "old", "0.9.0")
	if _, err := f.s.DeleteRelease(ctx, "a", "old", "0.9.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := f.s.SetOverride(ctx, store.DeviceOverride{AppID: "a", DeviceID: "DEV", Channel: "beta"}, actor, f.tick()); err != nil {
		t.Fatalf("override: %v", err)
	}
	f.web("b", "production", "5.0.0")

	st, err := f.s.LoadState(ctx)
	if err != nil {
		t.Fatalf("load state: %v", err)
	}
	var apps []string
	for _, a := range st.Apps {
		apps = append(apps, a.ID+":"+a.DefaultChannel)
	}
	slices.Sort(apps)
	if !slices.Equal(apps, []string{"a:stable", "b:production"}) {
		t.Errorf("apps = %v; want a:stable b:production", apps)
	}
	var chans []string
	for _, c := range st.Channels {
		s := c.AppID + "/" + c.Name + "=" + c.Active
		if c.ActiveBundle != nil {
			s += "(" + c.ActiveBundle.SHA256[:6] + ")"
			if c.ActiveBundle.SHA256 != Sum(c.AppID+c.Active) && c.Kind == ota.KindWeb {
				t.Errorf("channel %s active bundle has sha %s", c.Name, c.ActiveBundle.SHA256)
			}
		}
		chans = append(chans, s)
	}
	slices.Sort(chans)
	wantChans := []string{
		"a/apk=1.0.0(" + Sum("apka1.0.0")[:6] + ")",
		"a/beta=2.0.0(" + Sum("a2.0.0")[:6] + ")",
		"a/old=",
		"a/stable=1.1.0(" + Sum("a1.1.0")[:6] + ")",
		"b/production=5.0.0(" + Sum("b5.0.0")[:6] + ")",
	}
	if !slices.Equal(chans, wantChans) {
		t.Errorf("channels = %v; want %v", chans, wantChans)
	}
	var bundles []string
	for _, b := range st.Bundles {
		bundles = append(bundles, b.AppID+"/"+b.Kind+"/"+b.Version)
	}
	slices.Sort(bundles)
	if want := []string{"a/web/1.0.0", "a/web/1.1.0", "a/web/2.0.0", "b/web/5.0.0"}; !slices.Equal(bundles, want) {
		t.Errorf("bundles = %v; want the non-deleted web bundles %v", bundles, want)
	}
	if want := []store.DeviceOverride{{AppID: "a", DeviceID: "dev", Channel: "beta"}}; !slices.Equal(st.Overrides, want) {
		t.Errorf("overrides = %+v; want %+v", st.Overrides, want)
	}

	one, err := f.s.LoadAppState(ctx, "b")
	if err != nil {
		t.Fatalf("load app state: %v", err)
	}
	if len(one.Apps) != 1 || one.Apps[0].ID != "b" || len(one.Channels) != 1 || len(one.Bundles) != 1 || len(one.Overrides) != 0 {
		t.Errorf("state of b = %+v; want only b's app, channel and bundle", one)
	}
	_, err = f.s.LoadAppState(ctx, "nope")
	wantErr(t, "state of unknown app", err, store.ErrNotFound)
}

func testReferencedBlobs(t *testing.T, f *fixture) {
	ctx := t.Context()
	refs, err := f.s.ReferencedBlobs(ctx)
	if err != nil || len(refs) != 0 {
		t.Fatalf("referenced blobs of an empty store = %v, %v; want none", refs, err)
	}
	f.web("a", "stable", "1.0.0")
	f.web("a", "stable", "1.1.0")
	f.apk("a", ota.APKChannel, "1.0.0")
	if _, err := f.s.DeleteRelease(ctx, "a", "stable", "1.0.0", actor, f.tick()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	refs, err = f.s.ReferencedBlobs(ctx)
	if err != nil {
		t.Fatalf("referenced blobs: %v", err)
	}
	want := map[string]bool{Sum("a1.1.0"): true, Sum("apka1.0.0"): true}
	if len(refs) != len(want) {
		t.Errorf("referenced = %v; want %v", refs, want)
	}
	for k := range want {
		if !refs[k] {
			t.Errorf("blob %s not referenced", k[:12])
		}
	}
}

func testBackup(t *testing.T, f *fixture) {
	f.web("a", "stable", "1.0.0")
	f.fillAll()
	var buf bytes.Buffer
	n, err := f.s.Backup(t.Context(), &buf)
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if n <= 0 || n != int64(buf.Len()) {
		t.Errorf("backup reported %d bytes, wrote %d", n, buf.Len())
	}
	f.checkBackup(buf.Bytes())
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.s.Backup(ctx, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("backup with a canceled context: %v; want context.Canceled", err)
	}
}

func testCanceled(t *testing.T, f *fixture) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := f.s.Publish(ctx, store.PublishInput{
		Bundle:  ota.Bundle{AppID: "a", Version: "1.0.0", Kind: ota.KindWeb, SHA256: Sum("x")},
		Channel: "stable", Actor: actor, Time: f.tick(),
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("publish with a canceled context: %v; want context.Canceled", err)
	}
	if apps, err := f.s.ListApps(t.Context()); err != nil || len(apps) != 0 {
		t.Errorf("apps after a canceled publish = %v, %v; want none", apps, err)
	}
}
