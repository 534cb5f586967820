package update

import (
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// FuzzDecide feeds arbitrary device fields to the decision: it must never
// panic, and every answer must be one the plugin reads correctly (§2).
func FuzzDecide(f *testing.F) {
	f.Add("ios", deviceID, appID, "1.0.0", "1.0.0", "", "", "8.51.14", false, true)
	f.Add("android", deviceID, appID, "1.2", "builtin", "beta", "", "6.1.0", true, false)
	f.Add("", "", "", "1.0.0", "", "", "stable", "", false, true)
	f.Add("electron", "X", appID, "unknown", "1.0.1", "internal", "beta", "5.0.0", false, false)
	snaps := []*Snapshot{Build(fixtureState(), testURL), nil}
	// A second fixture where production reverts to builtin and has rules.
	st := fixtureState()
	c := channelOf(&st, "production")
	c.Active, c.ActiveBundle = ota.VersionBuiltin, nil
	b := channelOf(&st, "beta")
	b.Policy.DisableAutoUpdate = ota.DisableVersionNumber
	snaps = append(snaps, Build(st, testURL))

	f.Fuzz(func(t *testing.T, platform, device, app, build, name, defCh, ch, plugin string, emu, prod bool) {
		req := ota.UpdateRequest{
			Platform: platform, DeviceID: device, AppID: app, VersionBuild: build, VersionName: name,
			DefaultChannel: defCh, Channel: ch, PluginVersion: plugin, IsEmulator: &emu, IsProd: &prod,
		}
		for _, s := range snaps {
			d := Decide(s, &req, appID)
			r := d.Response
			switch {
			case r.Error != "":
				if r.Message == "" || r.Kind != KindOf(r.Error) || r.URL != "" || r.SessionKey != nil {
					t.Fatalf("malformed refusal %+v", r)
				}
			case r.Version == ota.VersionBuiltin:
				if r.Kind != "" || r.Message != "" || r.URL != "" {
					t.Fatalf("malformed builtin answer %+v", r)
				}
			default:
				if r.Version == "" || r.URL == "" || r.SessionKey == nil || *r.SessionKey != "" || r.Kind != "" || r.Message != "" {
					t.Fatalf("malformed success %+v", r)
				}
			}
			e := Explain(s, &req, appID)
			if e.Response.Error != r.Error || e.Response.Version != r.Version || len(e.Steps) == 0 {
				t.Fatalf("Explain disagrees: %+v vs %+v", e.Response, r)
			}
		}
	})
}
