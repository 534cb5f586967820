package storetest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/store/bolt"
	"github.com/otaship/ota/internal/store/storecopy"
	"github.com/otaship/ota/pkg/ota"
)

// Fill gives s some of every kind of record (app "fill", user "carol",
// token "t1", webhook "w1"), with times from start on: for tests of code
// that copies or backs up a whole store.
func Fill(t *testing.T, s store.Store, start time.Time) {
	t.Helper()
	(&fixture{t: t, s: s, now: &start}).fillAll()
}

// ReadAll is every record of s as indented JSON, for comparing stores.
func ReadAll(t *testing.T, s store.Store) string {
	t.Helper()
	return readAll(t, s)
}

// fillAll gives the store some of every kind of record, next to whatever
// the test published.
func (f *fixture) fillAll() {
	t, ctx := f.t, f.t.Context()
	t.Helper()
	f.web("fill", "stable", "1.0.0")
	f.web("fill", "stable", "1.1.0")
	f.apk("fill", ota.APKChannel, "1.0.0")
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := f.s.Rollback(ctx, "fill", "stable", "", actor, f.tick())
	must("rollback", err)
	// A bundle with every field set, in a staged rollout on a channel
	// with a policy of its own.
	full := ota.Bundle{AppID: "fill", Version: "2.0.0", Kind: ota.KindWeb, SHA256: Sum("fill full")}
	v := reflect.ValueOf(&full).Elem()
	for i := 0; i < v.NumField(); i++ {
		switch name := v.Type().Field(i).Name; name {
		case "AppID", "Version", "Kind", "SHA256", "UploadedAt", "URL", "Deleted", "Files":
		default:
			fill(t, name, v.Field(i), i)
		}
	}
	_, err = f.s.Publish(ctx, store.PublishInput{Bundle: full, Channel: "beta", Actor: actor, Time: f.tick(), Rollout: 20})
	must("staged publish", err)
	off := false
	_, err = f.s.UpdateChannel(ctx, "fill", "beta", ota.ChannelPolicyPatch{IOS: &off, AllowSelfSet: ptr(true)}, actor, f.tick())
	must("policy", err)
	must("override", f.s.SetOverride(ctx, store.DeviceOverride{AppID: "fill", DeviceID: "Dev-1", Channel: "stable"}, actor, f.tick()))
	must("a device's own pin", f.s.SetOverride(ctx, store.DeviceOverride{AppID: "fill", DeviceID: "dev-2", Channel: "beta", ByDevice: true},
		"device:dev-2", f.tick()))
	now := f.tick()
	must("user", f.s.CreateUser(ctx, store.User{Name: "carol", PasswordHash: []byte("hash"), CreatedAt: now, UpdatedAt: now}))
	must("token", f.s.CreateToken(ctx, store.CIToken{ID: "t1", Name: "ci", SecretHash: []byte{9}, AppID: "fill",
		CreatedBy: actor, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	must("webhook", f.s.CreateWebhook(ctx, store.StoredWebhook{Secret: "s", Webhook: ota.Webhook{ID: "w1", URL: "https://x.example/", CreatedAt: now}}))
	for i := range 3 {
		must("delivery", f.s.AppendDelivery(ctx, ota.WebhookDelivery{WebhookID: "w1", EventID: "1", EventType: ota.EventUpload,
			Attempt: i + 1, Time: f.tick(), Status: 500}, 10))
	}
	must("health", f.s.SaveHealth(ctx, []store.VersionHealth{{AppID: "fill", Version: "1.0.0", Installed: []string{"d1", "d2"},
		Failed: map[string][]string{"d3": {"update_fail", "set_fail"}}, UpdatedAt: f.tick()}}))
	var stats []store.StoredStat
	for i := range 5 {
		stats = append(stats, store.StoredStat{Received: now.Add(time.Duration(i) * time.Second), Event: ota.StatsEvent{
			DeviceInfo: ota.DeviceInfo{AppID: "fill", DeviceID: "d1", VersionName: "1.0.0", Platform: "ios"}, Action: "set"},
			Unverified: i == 4})
	}
	must("stats", f.s.AppendStats(ctx, stats))
	// Delta releases: two, the second sharing a file with the first, the
	// records of their files, and an encrypted one.
	f.delta("fill", "delta", "3.0.0", deltaFiles("fill", map[string]int{"index.html": 0, "assets/app.js": 0}), 0)
	f.delta("fill", "delta", "3.1.0", deltaFiles("fill", map[string]int{"index.html": 1, "assets/app.js": 0}), 0)
	f.delta("fill", "secret", "4.0.0", []ota.ManifestFile{{Path: "index.html", SHA256: Sum("plain"), Size: 5,
		Raw: Sum("cipher"), RawSize: 16, FileHash: "ab"}}, 0)
	for _, m := range []string{"3.0.0", "3.1.0"} {
		files, err := f.s.Manifest(ctx, "fill", m)
		must("manifest", err)
		for _, mf := range files {
			_, err := f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "fill", SHA256: mf.SHA256, Size: mf.Size, Br: mf.Br, BrSize: mf.BrSize, CreatedAt: now})
			must("delta file", err)
		}
	}
	_, err = f.s.PutDeltaFile(ctx, store.DeltaFile{AppID: "fill", SHA256: Sum("cipher"), Size: 16, Encrypted: true, CreatedAt: now})
	must("encrypted delta file", err)
	must("offers", f.s.SaveOffers(ctx, []store.DeviceOffer{
		{Device: 1<<63 + 7, AppID: "fill", Channel: "stable", Version: "1.1.0", Previous: "1.0.0", PreviousChannel: "stable",
			First: now, Last: now.Add(time.Minute), Count: 4},
		{Device: 42, AppID: "fill", Channel: "beta", Version: "2.0.0", First: now, Last: now, Count: 1},
	}))
}

// checkBackup holds every store's Backup to one format: a file of the
// embedded store (store/bolt), which otad backup archives and otad
// restore unpacks, holding every record the store holds.
func (f *fixture) checkBackup(raw []byte) {
	t := f.t
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	copied, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatalf("the backup does not open as the embedded store's file: %v", err)
	}
	defer copied.Close()
	want, got := readAll(t, f.s), readAll(t, copied)
	if want != got {
		t.Errorf("the backup holds other records than the store:\n%s\nwant\n%s", got, want)
	}
}

// readAll is every record of s as JSON.
func readAll(t *testing.T, s store.Store) string {
	t.Helper()
	r, err := storecopy.Read(t.Context(), s)
	if err != nil {
		t.Fatalf("read every record: %v", err)
	}
	raw, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}
