package capawesome_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/bundle"
	"github.com/otaship/ota/internal/capawesome/device"
	"github.com/otaship/ota/pkg/ota"
)

var platforms = []device.Platform{device.Android, device.IOS}

func ptrTo[T any](v T) *T { return &v }

// TestDeviceFollowsChannel drives simulated devices of both platforms
// through a channel's life over HTTPS: first update from the built-in
// bundle, up to date, a newer release, a rollback to a bundle still on
// disk (set without a download), and the files they end up running.
func TestDeviceFollowsChannel(t *testing.T) {
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			e := newEnv(t)
			e.deploy("production", "1.0.1", deployOpts{})
			d := e.device(p, deviceID)
			ctx := t.Context()

			res, err := d.Sync(ctx)
			if err != nil {
				t.Fatalf("first sync: %v", err)
			}
			if res.Status != http.StatusOK || res.Next != "1.0.1" || !res.Downloaded {
				t.Fatalf("first sync = %+v, want 1.0.1 downloaded", res)
			}
			if res.Latest.ChannelName != "production" {
				t.Errorf("channelName = %q, want production", res.Latest.ChannelName)
			}
			d.Restart()
			if b, err := d.ReadFile("index.html"); err != nil || !strings.Contains(string(b), "1.0.1") {
				t.Fatalf("running index.html = %q, %v", b, err)
			}

			res, err = d.Sync(ctx)
			if err != nil || res.Status != http.StatusNotFound || res.Latest != nil || res.Next != "" {
				t.Fatalf("sync on the active bundle = %+v, %v; want a 404 (no update)", res, err)
			}

			e.deploy("production", "1.0.2", deployOpts{})
			res, err = d.Sync(ctx)
			if err != nil || res.Next != "1.0.2" || !res.Downloaded {
				t.Fatalf("sync after 1.0.2 = %+v, %v", res, err)
			}
			d.Restart()

			if _, err := e.admin.Rollback(ctx, testApp, "production", ""); err != nil {
				t.Fatal(err)
			}
			res, err = d.Sync(ctx)
			if err != nil || res.Next != "1.0.1" || res.Downloaded {
				t.Fatalf("sync after the rollback = %+v, %v; want 1.0.1 set from disk", res, err)
			}
			d.Restart()
			if b, _ := d.ReadFile("app.js"); !strings.Contains(string(b), "1.0.1") {
				t.Errorf("after the rollback app.js = %q", b)
			}
		})
	}
}

// TestDeviceVerifiesSignature: a device with a publicKey installs a
// bundle signed with the team's key, and refuses one that is unsigned or
// signed with another key; a device without one checks the checksum.
func TestDeviceVerifiesSignature(t *testing.T) {
	other, err := bundle.GenerateSigningKey()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			e := newEnv(t)
			ctx := t.Context()
			e.deploy("production", "1.0.1", deployOpts{})
			d := e.device(p, deviceID)
			d.PublicKey = &signKey(t).PublicKey
			if _, err := d.Sync(ctx); !errors.Is(err, device.ErrSignatureMissing) {
				t.Fatalf("unsigned bundle: sync error %v, want %v", err, device.ErrSignatureMissing)
			}
			e.deploy("production", "1.0.2", deployOpts{sign: other})
			if _, err := d.Sync(ctx); !errors.Is(err, device.ErrSignatureFailed) {
				t.Fatalf("bundle signed with another key: sync error %v, want %v", err, device.ErrSignatureFailed)
			}
			b := e.deploy("production", "1.0.3", deployOpts{sign: signKey(t)})
			res, err := d.Sync(ctx)
			if err != nil || res.Next != "1.0.3" {
				t.Fatalf("signed bundle: %+v, %v", res, err)
			}
			if res.Latest.Signature != b.Signature || res.Latest.Checksum != b.SHA256 {
				t.Errorf("answer has signature %q checksum %q, want the bundle's", res.Latest.Signature, res.Latest.Checksum)
			}
			// Without a key the signature is not looked at.
			plain := e.device(p, "plain-device")
			if res, err := plain.Sync(ctx); err != nil || res.Next != "1.0.3" {
				t.Fatalf("device without a key: %+v, %v", res, err)
			}
		})
	}
}

// TestSameReleaseAndCohortForBothPlugins: a Capgo device (POST /updates)
// and a Capawesome device with the same device id get the same release,
// through a staged rollout, a device override and a failure report.
func TestSameReleaseAndCohortForBothPlugins(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.deploy("production", "1.0.1", deployOpts{})
	e.deploy("production", "2.0.0", deployOpts{rollout: 30})
	e.deploy("beta", "3.0.0", deployOpts{})

	same := func(id string) string {
		t.Helper()
		capgo := e.capgo(id, "1.0.0", "")
		for _, p := range platforms {
			d := e.device(p, id)
			res, err := d.Sync(ctx)
			if err != nil {
				t.Fatalf("%s %s: %v", p, id, err)
			}
			got := ""
			if res.Latest != nil {
				got = res.Latest.BundleID
			}
			if got != capgo.Version {
				t.Fatalf("device %s: capgo gets %q (%s), %s gets %q", id, capgo.Version, capgo.Error, p, got)
			}
		}
		return capgo.Version
	}
	in, out := 0, 0
	wasIn := map[string]bool{}
	for i := range 60 {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012d", i*7919, i)
		switch v := same(id); v {
		case "2.0.0":
			in++
			wasIn[id] = true
		case "1.0.1":
			out++
		default:
			t.Fatalf("offered %q", v)
		}
	}
	if in == 0 || out == 0 {
		t.Fatalf("%d devices in the 30%% cohort, %d outside; the test needs both", in, out)
	}
	// Growing the rollout only adds devices, for both plugins alike.
	if _, err := e.admin.SetRollout(ctx, testApp, "production", ota.RolloutRequest{Action: "set", Percent: 60}); err != nil {
		t.Fatal(err)
	}
	in60 := 0
	for i := range 60 {
		id := fmt.Sprintf("%08x-0000-4000-8000-%012d", i*7919, i)
		if v := same(id); v == "2.0.0" {
			in60++
		} else if wasIn[id] {
			t.Errorf("device %s left the cohort when it grew", id)
		}
	}
	if in60 <= in {
		t.Errorf("%d devices in the 60%% cohort, %d in the 30%% one", in60, in)
	}
	if _, err := e.admin.SetRollout(ctx, testApp, "production", ota.RolloutRequest{Action: "complete"}); err != nil {
		t.Fatal(err)
	}
	if v := same(deviceID); v != "2.0.0" {
		t.Errorf("rollout complete: offered %q", v)
	}
	// A device override sends the device to beta on both plugins.
	if err := e.admin.SetOverride(ctx, testApp, deviceID, "beta"); err != nil {
		t.Fatal(err)
	}
	if v := same(deviceID); v != "3.0.0" {
		t.Errorf("with the override: offered %q", v)
	}
	if err := e.admin.DeleteOverride(ctx, testApp, deviceID); err != nil {
		t.Fatal(err)
	}
	// A failure the other plugin reported for this device keeps 2.0.0
	// from it on both plugins.
	stat := map[string]any{"platform": "android", "device_id": deviceID, "app_id": testApp, "version_build": "1.0.0",
		"version_name": "2.0.0", "old_version_name": "1.0.0", "plugin_version": "8.51.14", "action": "update_fail"}
	if code := postJSON(t, e, "/stats", stat); code != http.StatusOK {
		t.Fatalf("POST /stats = %d", code)
	}
	if v := same(deviceID); v != "1.0.1" {
		t.Errorf("after update_fail of 2.0.0: offered %q, want the fallback 1.0.1", v)
	}
}

// TestNativeRange: a bundle built for newer native versions is not
// offered to a device on an older one (it keeps the earlier release).
func TestNativeRange(t *testing.T) {
	e := newEnv(t)
	e.deploy("production", "1.0.1", deployOpts{})
	e.deploy("production", "2.0.0", deployOpts{min: "2.0.0"})
	for _, p := range platforms {
		old := e.device(p, deviceID)
		if res, err := old.Sync(t.Context()); err != nil || res.Next != "1.0.1" {
			t.Errorf("%s native 1.0.0: %+v, %v; want 1.0.1", p, res, err)
		}
		cur := e.device(p, deviceID)
		cur.AppVersionName = "2.1.0"
		if res, err := cur.Sync(t.Context()); err != nil || res.Next != "2.0.0" {
			t.Errorf("%s native 2.1.0: %+v, %v; want 2.0.0", p, res, err)
		}
	}
}

// TestSelfSetChannel: a device that names a self-settable channel
// (setChannel) gets it; one naming a private channel gets nothing, with
// no fallback to the default.
func TestSelfSetChannel(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	e.deploy("production", "1.0.1", deployOpts{})
	e.deploy("beta", "1.1.0", deployOpts{})
	e.deploy("internal", "2.0.0", deployOpts{})
	if _, err := e.admin.PatchChannel(ctx, testApp, "beta", ota.ChannelPolicyPatch{AllowSelfSet: ptrTo(true)}); err != nil {
		t.Fatal(err)
	}
	for _, p := range platforms {
		d := e.device(p, deviceID)
		d.Channel = "beta"
		if res, err := d.Sync(ctx); err != nil || res.Next != "1.1.0" || res.Latest.ChannelName != "beta" {
			t.Errorf("%s on beta: %+v, %v", p, res, err)
		}
		d = e.device(p, deviceID)
		d.Channel = "internal"
		if res, err := d.Sync(ctx); err != nil || res.Status != http.StatusNotFound {
			t.Errorf("%s on internal: %+v, %v; want 404", p, res, err)
		}
	}
}
