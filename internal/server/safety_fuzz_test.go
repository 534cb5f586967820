package server

import (
	"strings"
	"testing"
	"time"

	downloads "github.com/otaship/ota/internal/download"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/internal/update"
	"github.com/otaship/ota/pkg/ota"
)

// FuzzCheckSafetyFields feeds arbitrary rollout, native and forced upload
// fields: they are refused with a 400 or accepted within bounds, never a
// panic.
func FuzzCheckSafetyFields(f *testing.F) {
	f.Add("10", `{"capacitor":"7.0.0","plugins":["@capacitor/app@7.0.0"]}`, "ships next week")
	f.Add("100%", "", "")
	f.Add("0", "{}", "")
	f.Add("-5", `{"capacitor":1}`, "")
	f.Add("", `{"plugins":null}`, strings.Repeat("x", 5000))
	f.Fuzz(func(t *testing.T, rollout, native, forced string) {
		for _, kind := range []string{ota.KindWeb, ota.KindAPK} {
			var in store.PublishInput
			err := checkSafetyFields(map[string]string{"rollout": rollout, "native": native, "forced": forced}, kind, &in)
			if err != nil {
				if ae, ok := toAPIError(err); !ok || ae.Status != 400 {
					t.Fatalf("error %v is not a 400", err)
				}
				continue
			}
			if in.Rollout < 0 || in.Rollout > 100 || (in.Rollout != 0 && kind != ota.KindWeb) {
				t.Fatalf("accepted rollout %d for %s", in.Rollout, kind)
			}
			if native != "" && in.Bundle.Native == nil {
				t.Fatalf("accepted native %q without a fingerprint", native)
			}
		}
	})
}

// FuzzHealthRecord feeds arbitrary stats events to the health tracker: a
// device is remembered as failed only after a failure that loops, counts
// stay consistent, and a repeated batch changes nothing.
func FuzzHealthRecord(f *testing.F) {
	f.Add("update_fail", "1.0.0", "dev-1", "8.0.0")
	f.Add("set", "1.0.0", "dev-1", "")
	f.Add("download_fail", "1.0.0:assets/a.js", "dev-2", "6.14.0")
	f.Add("download_manifest_file_fail", "1.0.0:x", "", "7.0.0")
	f.Add("checksum_fail", "2.0.0", "dev-3", "not-semver")
	snap := update.Build(store.State{
		Apps:    []ota.App{{ID: testApp}},
		Bundles: []ota.Bundle{{AppID: testApp, Version: "1.0.0", Kind: ota.KindWeb, SHA256: strings.Repeat("a", 64)}},
	}, func(*ota.Bundle) downloads.Link { return downloads.Link{URL: "https://ota.example.com/b.zip"} })
	f.Fuzz(func(t *testing.T, action, version, device, plugin string) {
		h := newHealthTracker(10, 0)
		ev := ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: testApp, DeviceID: device, VersionName: version, PluginVersion: plugin}, Action: action}
		batch := []ota.StatsEvent{ev, ev}
		touched := h.record(snap, batch, nil, time.Unix(0, 0))
		v := update.EventVersion(version)
		if len(touched) > 1 || (len(touched) == 1 && (v != "1.0.0" || device == "")) {
			t.Fatalf("touched %v for version %q device %q", touched, version, device)
		}
		if h.FailedOn(testApp, v, device) != (len(touched) == 1 && loopActions[action]) {
			t.Fatalf("FailedOn = %v after %q", h.FailedOn(testApp, v, device), action)
		}
		devices, failed, _ := h.counts(testApp, v)
		if failed > devices || devices > 1 {
			t.Fatalf("counts devices=%d failed=%d after one device", devices, failed)
		}
		if again := h.record(snap, batch, nil, time.Unix(1, 0)); len(again) != 0 {
			t.Fatalf("a repeated batch changed %v", again)
		}
	})
}
