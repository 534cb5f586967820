package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

// devicePost sends a device request to the test server.
func devicePost(t *testing.T, e *testEnv, path string, v any) {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(e.srv.URL+path, "application/json", bytes.NewReader(b))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %v %v", path, resp, err)
	}
	resp.Body.Close()
}

func checkOf(device, running string) map[string]any {
	return map[string]any{"platform": "android", "device_id": device, "app_id": testAppID, "version_build": "0.9.0",
		"version_name": running, "plugin_version": "8.51.14", "is_prod": true, "is_emulator": false}
}

// TestAdoptionAgainstTraffic: otactl adoption and otactl device over real
// device traffic: 30 devices on the built-in bundle check, 20 of them
// install 1.0.0 and check again on it.
func TestAdoptionAgainstTraffic(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web", "1.0.0")
	for i := range 30 {
		devicePost(t, e, "/updates", checkOf(fmt.Sprintf("dev-%02d", i), "builtin"))
	}
	for i := range 20 {
		d := fmt.Sprintf("dev-%02d", i)
		set := checkOf(d, "1.0.0")
		set["action"] = "set"
		devicePost(t, e, "/stats", []any{set})
		devicePost(t, e, "/updates", checkOf(d, "1.0.0"))
	}
	r := e.mustRun("adoption")
	for _, want := range []string{"DAY", "DEVICES", "1.0.0", "BUILTIN", "30", "20 (67%)", "10 (33%)", "█", "▓", "█ 1.0.0  ▓ builtin"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("adoption lacks %q:\n%s", want, r.stdout)
		}
	}
	var rep ota.AdoptionReport
	if err := json.Unmarshal([]byte(e.mustRun("adoption", "stable", "--since", "2d", "-o", "json").stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Channel != "stable" || len(rep.Days) != 1 || rep.Days[0].Devices != 30 || rep.Days[0].Versions[0].Version != "1.0.0" ||
		rep.Days[0].Versions[0].Devices != 20 || rep.Days[0].Versions[1].Version != ota.VersionBuiltin {
		t.Errorf("adoption -o json = %+v", rep)
	}
	if r := e.run("", "adoption", "--since", "soon"); r.code != 2 {
		t.Errorf("a bad --since: exit %d (%s)", r.code, r.err)
	}
	// One device's story.
	r = e.mustRun("device", "dev-25")
	for _, want := range []string{"Device dev-25 of " + testAppID, "running builtin on channel stable", "native 0.9.0, plugin 8.51.14, android",
		"offered     1.0.0 on channel stable, 1 times", "said nothing about it", "Its next check", "answer: offer 1.0.0 from channel stable"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("device story lacks %q:\n%s", want, r.stdout)
		}
	}
	r = e.mustRun("device", "dev-03")
	for _, want := range []string{"running 1.0.0", "reported installing it, checked while running it", "set", "no_new_version_available"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("story of an updated device lacks %q:\n%s", want, r.stdout)
		}
	}
	if r := e.mustRun("device", "never-seen"); !strings.Contains(r.stdout, "remembers no update check") {
		t.Errorf("story of an unknown device:\n%s", r.stdout)
	}
}

// TestRampAndProtectedFlags: the ramp flags and the protected scope reach
// the server, and status shows the schedule.
func TestRampAndProtectedFlags(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web", "1.0.0")
	e.mustRun("deploy", "web", "1.1.0", "--rollout", "5")
	for _, bad := range [][]string{
		{"rollout", "stable", "--ramp", "5,25"}, {"rollout", "stable", "--ramp", "5,100"},
		{"rollout", "stable", "50", "--ramp", "5,100", "--every", "1h"}, {"rollout", "stable", "--ramp", "5,x,100", "--every", "1h"},
	} {
		if r := e.run("", bad...); r.code != 2 {
			t.Errorf("otactl %s: exit %d (%s)", strings.Join(bad, " "), r.code, r.err)
		}
	}
	r := e.mustRun("rollout", "stable", "--ramp", "5,25,50,100", "--every", "2h", "--min-devices", "20")
	if !strings.Contains(r.stdout, "ramp to 25% at") {
		t.Errorf("rollout --ramp:\n%s", r.stdout)
	}
	if r := e.mustRun("status"); !strings.Contains(r.stdout, "ramp to 25% at") || !strings.Contains(r.stdout, "then 25%, 50%, 100%") {
		t.Errorf("status lacks the ramp:\n%s", r.stdout)
	}
	r = e.mustRun("channel", "set", "stable", "--protected", "--stalled-window", "1h", "--stalled-polls", "4", "--halt-on-stalled=false")
	for _, want := range []string{"protected=true", "stalled_window_seconds=3600", "stalled_polls=4", "ignore_stalled=true", "protected:", "after 1h0m0s and 4 checks"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("channel set lacks %q:\n%s", want, r.stdout)
		}
	}
	// A CI token without the protected scope may not deploy there; one
	// with it may; both may roll back.
	plain := strings.TrimSpace(e.mustRun("token", "create", "--name", "ci").stdout)
	prot := strings.TrimSpace(e.mustRun("token", "create", "--name", "release", "--protected").stdout)
	e.env["OTACTL_TOKEN"] = plain
	if r := e.run("", "rollout", "stable", "50"); r.code == 0 || !strings.Contains(r.err, "protected") {
		t.Errorf("a plain token's rollout step on a protected channel: exit %d\n%s", r.code, r.err)
	}
	e.mustRun("rollout", "stable", "pause")
	e.env["OTACTL_TOKEN"] = prot
	e.mustRun("rollout", "stable", "resume")
	e.env["OTACTL_TOKEN"] = plain
	e.mustRun("rollback", "stable")
}
