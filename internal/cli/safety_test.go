package cli

import (
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/otaship/ota/pkg/ota"
)

func TestExplainStatsRollout(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web", "1.0.0", "--min-native", "1.4.0")

	r := e.mustRun("explain", "--channel", "stable", "--native", "1.4.0", "--device", "dev-1")
	if !strings.Contains(r.stdout, "Answer: bundle 1.0.0 from channel stable") || !strings.Contains(r.stdout, " 1. ") {
		t.Errorf("explain printed:\n%s", r.stdout)
	}
	r = e.mustRun("explain", "--native", "1.2.0", "-o", "json")
	var ex ota.ExplainResponse
	if err := json.Unmarshal([]byte(r.stdout), &ex); err != nil {
		t.Fatalf("explain -o json = %q: %v", r.stdout, err)
	}
	if ex.Response.Error != ota.UpdIncompatibleNative || ex.Response.Kind != ota.KindBlocked || len(ex.Steps) == 0 {
		t.Errorf("explain for native 1.2.0 = %+v; want blocked incompatible_native_version with steps", ex)
	}
	if r := e.run("", "explain", "--channel", "stable"); r.code != ExitUsage || !strings.Contains(r.err, "--native is required") {
		t.Errorf("explain without --native: exit %d stderr %q", r.code, r.err)
	}
	// In a project with android/, its versionName is the default.
	writeFile(t, filepath.Join(e.project, "android", "app", "build.gradle"), "android {\n defaultConfig {\n  versionName \"1.4.2\"\n }\n}\n")
	r = e.mustRun("explain", "--channel", "stable")
	if !strings.Contains(r.err, "native version 1.4.2 (versionName in android/app/build.gradle") ||
		!strings.Contains(r.stdout, `native "1.4.2"`) || !strings.Contains(r.stdout, "Answer: bundle 1.0.0 from channel stable") {
		t.Errorf("explain with the default native version: stdout\n%s\nstderr %s", r.stdout, r.err)
	}
	// A channel that does not exist: the answer says what the step says.
	r = e.mustRun("explain", "--channel", "nope", "--native", "1.4.0")
	if !strings.Contains(r.stdout, `refused: the requested channel "nope" does not exist`) ||
		!strings.Contains(r.stdout, `Answer: no_channel (failed): no default channel or override: channel "nope" does not exist`) {
		t.Errorf("explain for a missing channel printed:\n%s", r.stdout)
	}

	r = e.mustRun("stats", "stable")
	if !strings.Contains(r.stdout, "No device reported") {
		t.Errorf("stats with no reports printed:\n%s", r.stdout)
	}
	r = e.mustRun("stats", "-o", "json", "--window", "24h")
	var sum ota.StatsSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || sum.AppID != testAppID {
		t.Errorf("stats -o json = %q (%v)", r.stdout, err)
	}
	if r := e.run("", "stats", "nosuch"); r.code != ExitError || !strings.Contains(r.err, "nosuch") {
		t.Errorf("stats of a missing channel: exit %d stderr %q", r.code, r.err)
	}

	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"rollout", "stable", "50"}, ExitError, "no staged rollout"},
		{[]string{"rollout", "stable", "150"}, ExitUsage, "percent"},
		{[]string{"rollout", "stable", "later"}, ExitUsage, "pause"},
		{[]string{"rollout", "stable"}, ExitUsage, ""},
	} {
		r := e.run("", tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.err) {
			t.Errorf("otactl %s: exit %d stderr %q; want exit %d mentioning %q", strings.Join(tc.args, " "), r.code, r.err, tc.code, tc.err)
		}
	}
}

func TestRolloutSummary(t *testing.T) {
	tests := []struct {
		ch   ota.Channel
		want string
	}{
		{ota.Channel{Active: "1.0.0"}, "1.0.0 to every device"},
		{ota.Channel{Active: "1.1.0", Rollout: &ota.Rollout{Target: "1.1.0", Previous: "1.0.0", Percent: 10}}, "1.1.0 to 10% of devices; the others keep 1.0.0"},
		{ota.Channel{Active: "1.1.0", Rollout: &ota.Rollout{Target: "1.1.0", Previous: "1.0.0", Percent: 10, Paused: true}}, "1.1.0 to 10% of devices, paused; the others keep 1.0.0"},
		{ota.Channel{Active: "1.0.0", Rollout: &ota.Rollout{Target: "1.1.0", Previous: "1.0.0", Percent: 10, Halted: true, Reason: "failure rate 0.31"}},
			"rollout of 1.1.0 HALTED at 10% (failure rate 0.31); serving 1.0.0"},
		{ota.Channel{Active: "1.2.0", Rollout: &ota.Rollout{Target: "1.1.0", Percent: 10}}, "1.2.0 to every device"},
		{ota.Channel{Active: "1.1.0", Rollout: &ota.Rollout{Target: "1.1.0", Percent: 100}}, "1.1.0 to every device (rollout complete)"},
	}
	for _, tt := range tests {
		if got := rolloutSummary(tt.ch); got != tt.want {
			t.Errorf("rolloutSummary(%+v) = %q; want %q", tt.ch.Rollout, got, tt.want)
		}
	}
}

func TestDeployNativeCheckAndRollout(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web", "1.0.0")
	writeFile(t, filepath.Join(e.project, "out", "app.apk"), "PK\x03\x04prebuilt")
	e.mustRun("deploy", "apk", "1.0.0", "--apk", "out/app.apk")

	// The web project now uses a native plugin the APK does not ship.
	writeFile(t, filepath.Join(e.project, "package.json"),
		`{"name":"capapp","version":"1.1.0","scripts":{"generate":"node scripts/generate.js"},"dependencies":{"@capacitor/camera":"^7.0.0"}}`)
	writeFile(t, filepath.Join(e.project, "node_modules", "@capacitor", "camera", "package.json"),
		`{"name":"@capacitor/camera","version":"7.0.1","capacitor":{"android":{"src":"android"}}}`)
	e.generate("2")
	r := e.run("", "deploy", "web", "1.1.0", "--skip-build", "--rollout", "10")
	if r.code != ExitError || !strings.Contains(r.err, "@capacitor/camera@7.0.1, which the APK lacks") || !strings.Contains(r.err, "--force") {
		t.Fatalf("deploy needing a missing plugin: exit %d stderr %q", r.code, r.err)
	}
	r = e.mustRun("deploy", "web", "1.1.0", "--skip-build", "--rollout", "10", "--force")
	if !strings.Contains(r.err, "warning: uploading despite native differences with APK 1.0.0") {
		t.Errorf("forced deploy did not warn: %q", r.err)
	}

	var page ota.HistoryPage
	if err := json.Unmarshal([]byte(e.mustRun("history", "-o", "json").stdout), &page); err != nil {
		t.Fatal(err)
	}
	if ev := page.Events[0]; ev.Version != "1.1.0" || !strings.HasPrefix(ev.Note, "native check overridden: APK 1.0.0: needs native plugin @capacitor/camera@7.0.1") ||
		!strings.HasSuffix(ev.Note, "; rollout 10%") {
		t.Errorf("upload event = %+v", ev)
	}
	if r := e.mustRun("status"); !strings.Contains(r.stdout, "stable: 1.1.0 to 10% of devices; the others keep 1.0.0") {
		t.Errorf("status does not show the rollout:\n%s", r.stdout)
	}
	if r := e.mustRun("rollout", "stable", "50"); r.stdout != "stable: 1.1.0 to 50% of devices; the others keep 1.0.0\n" {
		t.Errorf("rollout 50 printed %q", r.stdout)
	}
	if r := e.run("", "rollout", "stable", "20"); r.code != ExitError || !strings.Contains(r.err, "only grows") {
		t.Errorf("shrinking rollout: exit %d stderr %q", r.code, r.err)
	}
	if r := e.mustRun("rollout", "stable", "pause"); !strings.Contains(r.stdout, "paused") {
		t.Errorf("pause printed %q", r.stdout)
	}
	if r := e.mustRun("rollout", "stable", "complete"); r.stdout != "stable: 1.1.0 to every device (rollout complete)\n" {
		t.Errorf("complete printed %q", r.stdout)
	}
	if r := e.run("", "deploy", "web", "1.2.0", "--skip-build", "--rollout", "101"); r.code != ExitUsage {
		t.Errorf("--rollout 101: exit %d", r.code)
	}
}

// TestStatsFailures: per-file failures of a delta release count against
// it, and stats --failures names the files.
func TestStatsFailures(t *testing.T) {
	e := newTestEnv(t)
	e.mustRun("deploy", "web", "1.0.0", "--delta")
	ev := func(device, action, version string) map[string]any {
		return map[string]any{"platform": "ios", "device_id": device, "app_id": testAppID, "version_build": "1.0.0",
			"version_name": version, "plugin_version": "8.51.14", "action": action}
	}
	// The devices' update checks first: a report counts only for a
	// version the device was offered.
	for _, d := range []string{"d1", "d2"} {
		check := ev(d, "", "0.9.0")
		delete(check, "action")
		b, _ := json.Marshal(check)
		resp, err := http.Post(e.srv.URL+"/updates", "application/json", bytes.NewReader(b))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("update check: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	body, _ := json.Marshal([]map[string]any{
		ev("d1", "download_manifest_checksum_fail", "1.0.0:assets/app.js"),
		ev("d2", "download_manifest_checksum_fail", "1.0.0:assets/app.js"),
		ev("d2", "download_manifest_file_fail", "1.0.0:index.html"),
	})
	resp, err := http.Post(e.srv.URL+"/stats", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("post stats: %v %v", resp, err)
	}
	resp.Body.Close()

	r := e.mustRun("stats", "--failures")
	for _, want := range []string{
		"1.0.0 ",
		"download_manifest_checksum_fail=2 download_manifest_file_fail=1",
		"Failing files of 1.0.0:",
		"assets/app.js  ",
		"download_manifest_checksum_fail=2\n",
		"index.html",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stats --failures lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(e.mustRun("stats").stdout, "Failing files") {
		t.Error("stats without --failures lists the files")
	}
	r = e.mustRun("stats", "--failures", "-o", "json")
	var sum ota.StatsSummary
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil || len(sum.Versions) != 1 || len(sum.Versions[0].Files) != 2 ||
		sum.Versions[0].Files[0].File != "assets/app.js" || sum.Versions[0].Files[0].Devices != 2 {
		t.Errorf("stats --failures -o json = %s (%v)", r.stdout, err)
	}
}
