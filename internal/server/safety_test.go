package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// simDevice is one simulated phone speaking the plugin's wire protocol
// over real HTTP.
type simDevice struct {
	id      string
	running string
	failing bool // reports update_fail for any new bundle, as a broken build would
}

func (d *simDevice) info() ota.DeviceInfo {
	f, tr := false, true
	return ota.DeviceInfo{
		Platform: "android", DeviceID: d.id, AppID: testApp, VersionBuild: "1.0.0", VersionCode: "1",
		VersionName: d.running, PluginVersion: "8.51.14", IsEmulator: &f, IsProd: &tr,
	}
}

func simPost(t testing.TB, client *http.Client, url string, v any) []byte {
	t.Helper()
	body, err := json.Marshal(v)
	if err != nil {
		t.Error(err)
		return nil
	}
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Errorf("POST %s: %v", url, err)
		return nil
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Errorf("read %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("POST %s: status %d: %s", url, resp.StatusCode, buf.String())
	}
	return buf.Bytes()
}

// poll asks for an update and, when offered one, installs it: a set stat,
// then update_fail (the plugin's rollback when notifyAppReady never
// comes) for a failing device, app_launch_ready for a healthy one. It
// returns the answer.
func (d *simDevice) poll(t testing.TB, client *http.Client, base string) ota.UpdateResponse {
	var r ota.UpdateResponse
	if err := json.Unmarshal(simPost(t, client, base+"/updates", d.info()), &r); err != nil {
		t.Errorf("device %s: decode update answer: %v", d.id, err)
		return r
	}
	if r.Error != "" || r.Version == "" {
		return r
	}
	target, old := r.Version, d.running
	ev := func(action, version string) ota.StatsEvent {
		info := d.info()
		info.VersionName = version
		return ota.StatsEvent{DeviceInfo: info, Action: action, OldVersionName: old}
	}
	if d.failing && target != ota.VersionBuiltin {
		simPost(t, client, base+"/stats", []ota.StatsEvent{ev("set", target), ev("app_launch_timeout", target), ev("update_fail", target)})
		return r // the plugin rolled back: still on the old bundle
	}
	d.running = target
	simPost(t, client, base+"/stats", []ota.StatsEvent{ev("set", target), ev("app_launch_ready", target)})
	return r
}

// fleet makes n devices on version, every failEvery-th one failing at
// positions 0..failing-1 of each ten.
func fleet(n int, version string, failingPerTen int) []*simDevice {
	ds := make([]*simDevice, n)
	for i := range ds {
		ds[i] = &simDevice{id: fmt.Sprintf("dev-%04d-%08x", i, i*2654435761), running: version, failing: i%10 < failingPerTen}
	}
	return ds
}

// TestAutoHaltEndToEnd: 200 devices poll and report concurrently over
// HTTP; 30% of them report update_fail for 1.1.0. otad halts the release
// and re-points the channel to 1.0.0, and no failing device is offered
// 1.1.0 after its report.
func TestAutoHaltEndToEnd(t *testing.T) {
	env := newTestEnv(t)
	ts := httptest.NewServer(env.srv.Handler())
	defer ts.Close()
	env.publish(testApp, "production", "1.0.0", nil)
	env.publish(testApp, "production", "1.1.0", nil)

	devices := fleet(200, "1.0.0", 3)
	var (
		mu      sync.Mutex
		offered = map[string]int{} // offers of 1.1.0 per failing device
	)
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := ts.Client()
			for range 3 {
				r := d.poll(t, client, ts.URL)
				if d.failing && r.Version == "1.1.0" && r.Error == "" {
					mu.Lock()
					offered[d.id]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for id, n := range offered {
		if n > 1 {
			t.Errorf("failing device %s was offered 1.1.0 %d times; want at most once", id, n)
		}
	}

	ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/production", nil))
	if ch.Active != "1.0.0" || ch.Rollout == nil || !ch.Rollout.Halted || ch.Rollout.Target != "1.1.0" {
		t.Fatalf("channel after the failures: active %q rollout %+v; want 1.0.0 with 1.1.0 halted", ch.Active, ch.Rollout)
	}
	if !strings.Contains(ch.Rollout.Reason, "≥ 0.20") {
		t.Errorf("halt reason %q does not name the threshold", ch.Rollout.Reason)
	}
	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history", nil))
	halts := 0
	for _, ev := range page.Events {
		if ev.Type == ota.EventHalt {
			halts++
			if ev.Actor != "otad" || ev.From != "1.1.0" || ev.To != "1.0.0" || !strings.HasPrefix(ev.Note, "failure rate 0.") {
				t.Errorf("halt event %+v; want otad re-pointing 1.1.0 → 1.0.0 with the failure rate", ev)
			}
		}
	}
	if halts != 1 {
		t.Errorf("%d halt events; want exactly 1", halts)
	}

	// After the halt nobody is offered 1.1.0; devices that got it go back.
	for _, d := range devices {
		r := d.poll(t, ts.Client(), ts.URL)
		if r.Version == "1.1.0" && r.Error == "" {
			t.Fatalf("device %s (failing %v) offered 1.1.0 after the halt", d.id, d.failing)
		}
		if d.running != "1.0.0" {
			t.Fatalf("device %s runs %s after the halt; want 1.0.0", d.id, d.running)
		}
	}
}

// TestFailureMemoryEndToEnd: with auto-halt held back by min_devices, the
// devices that reported update_fail are never offered the version again,
// also after a restart and after an operator re-points the channel to it;
// then a lower min_devices halts on the next report.
func TestFailureMemoryEndToEnd(t *testing.T) {
	env := newTestEnv(t)
	ts := httptest.NewServer(env.srv.Handler())
	defer ts.Close()
	env.publish(testApp, "production", "1.0.0", nil)
	rec := env.do(http.MethodPatch, "/api/v1/apps/"+testApp+"/channels/production", map[string]any{"min_devices": 1000})
	wantStatus(t, rec, http.StatusOK, "")
	env.publish(testApp, "production", "1.1.0", nil)

	devices := fleet(200, "1.0.0", 3)
	var wg sync.WaitGroup
	for _, d := range devices {
		wg.Add(1)
		go func() { defer wg.Done(); d.poll(t, ts.Client(), ts.URL) }()
	}
	wg.Wait()
	check := func(when string) {
		t.Helper()
		for _, d := range devices {
			r := d.poll(t, ts.Client(), ts.URL)
			if d.failing && r.Version == "1.1.0" && r.Error == "" {
				t.Fatalf("%s: failing device %s offered 1.1.0 again", when, d.id)
			}
		}
	}
	check("before any halt")

	sum := decode[ota.StatsSummary](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health?channel=production", nil))
	if len(sum.Versions) == 0 || sum.Versions[0].Version != "1.1.0" || sum.Versions[0].Installed != 200 ||
		sum.Versions[0].Failed != 60 || sum.Versions[0].Failures["update_fail"] != 60 {
		t.Fatalf("health = %+v; want 1.1.0 installed by 200, failed on 60 (update_fail)", sum.Versions)
	}

	// The explain endpoint tells why.
	var failing *simDevice
	for _, d := range devices {
		if d.failing {
			failing = d
			break
		}
	}
	info := failing.info()
	ex := decode[ota.ExplainResponse](t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/explain", info))
	if ex.Channel != "production" || !strings.Contains(strings.Join(ex.Steps, "\n"), "failed on it") {
		t.Errorf("explain = %+v; want the failure memory named", ex)
	}

	// Restart: the failure memory comes back from the store.
	if err := env.srv.FlushHealth(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts.Close()
	env.reopen()
	ts = httptest.NewServer(env.srv.Handler())
	defer ts.Close()
	check("after a restart")

	// A lower threshold halts on the next report.
	// A lower threshold halts at once: the rate is already above it.
	rec = env.do(http.MethodPatch, "/api/v1/apps/"+testApp+"/channels/production", map[string]any{"min_devices": 50})
	wantStatus(t, rec, http.StatusOK, "")
	ch := decode[ota.Channel](t, rec)
	if ch.Active != "1.0.0" || ch.Rollout == nil || !ch.Rollout.Halted {
		t.Fatalf("after lowering min_devices: active %q rollout %+v; want halted back to 1.0.0", ch.Active, ch.Rollout)
	}
	if want := "failure rate 0.30 (60/200 devices) ≥ 0.20"; ch.Rollout.Reason != want {
		t.Errorf("reason %q; want %q", ch.Rollout.Reason, want)
	}

	// The operator insists on 1.1.0: failing devices still never get it.
	rec = env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollback", ota.RollbackRequest{To: "1.1.0"})
	wantStatus(t, rec, http.StatusOK, "")
	rec = env.do(http.MethodPatch, "/api/v1/apps/"+testApp+"/channels/production", map[string]any{"auto_halt": false})
	wantStatus(t, rec, http.StatusOK, "")
	check("after re-pointing to 1.1.0")
}

// TestRolloutEndToEnd stages 1.1.0 at 10%, grows it to 50% and completes
// it over the admin API, checking shares and that devices keep what they got.
func TestRolloutEndToEnd(t *testing.T) {
	env := newTestEnv(t)
	ts := httptest.NewServer(env.srv.Handler())
	defer ts.Close()
	env.publish(testApp, "production", "1.0.0", nil)
	b := env.publish(testApp, "staging", "1.1.0", nil)
	ctx := context.Background()
	if _, err := env.store.Publish(ctx, store.PublishInput{
		Bundle:  ota.Bundle{AppID: testApp, Version: "1.1.0", Kind: ota.KindWeb, SHA256: b.SHA256, Size: b.Size},
		Channel: "production", Actor: testUser, Time: env.clock.Now(), Rollout: 10,
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.refreshApp(ctx, testApp); err != nil {
		t.Fatal(err)
	}
	devices := fleet(400, "1.0.0", 0)
	got := map[string]bool{}
	round := func(wantLo, wantHi int) {
		t.Helper()
		n := 0
		for _, d := range devices {
			d.poll(t, ts.Client(), ts.URL)
			if d.running == "1.1.0" {
				n++
				got[d.id] = true
			} else if got[d.id] {
				t.Fatalf("device %s lost 1.1.0", d.id)
			}
		}
		if n < wantLo || n > wantHi {
			t.Errorf("%d of %d devices run 1.1.0; want %d to %d", n, len(devices), wantLo, wantHi)
		}
	}
	round(15, 70) // 10% of 400, with room for chance

	for _, tc := range []struct {
		req    ota.RolloutRequest
		status int
	}{
		{ota.RolloutRequest{Action: "set", Percent: 5}, http.StatusUnprocessableEntity}, // only grows
		{ota.RolloutRequest{Action: "set", Percent: 101}, http.StatusBadRequest},
		{ota.RolloutRequest{Action: "jump"}, http.StatusBadRequest},
		{ota.RolloutRequest{Action: "set", Percent: 50}, http.StatusOK},
	} {
		rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollout", tc.req)
		wantStatus(t, rec, tc.status, "")
	}
	round(160, 240)
	rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollout", ota.RolloutRequest{Action: "pause"})
	wantStatus(t, rec, http.StatusOK, "")
	round(160, 240) // nobody new, nobody loses it
	rec = env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollout", ota.RolloutRequest{Action: "complete"})
	wantStatus(t, rec, http.StatusOK, "")
	round(400, 400)
	// A channel without a staged rollout refuses rollout changes.
	rec = env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/staging/rollout", ota.RolloutRequest{Action: "pause"})
	wantStatus(t, rec, http.StatusUnprocessableEntity, "")

	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?channel=production", nil))
	rollouts := 0
	for _, ev := range page.Events {
		if ev.Type == ota.EventRollout {
			rollouts++
		}
	}
	if rollouts != 3 {
		t.Errorf("%d rollout events; want 3 (50%%, pause, complete)", rollouts)
	}
}

// TestBuiltinEndToEnd: rollback --to builtin sends devices running a
// bundle back to the one in the app.
func TestBuiltinEndToEnd(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "production", "1.0.1", nil)
	rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollback", ota.RollbackRequest{To: ota.VersionBuiltin})
	wantStatus(t, rec, http.StatusOK, "")
	d := &simDevice{id: "d1", running: "1.0.1"} // native 1.0.0 with bundle 1.0.1
	rec = env.do(http.MethodPost, "/updates", d.info(), "Authorization", "")
	if r := decode[ota.UpdateResponse](t, rec); r.Version != ota.VersionBuiltin || r.Error != "" || r.URL != "" {
		t.Fatalf("answer %s; want {\"version\":\"builtin\"}", rec.Body.String())
	}
}

func TestUploadSafetyFields(t *testing.T) {
	env := newTestEnv(t)
	path := "/api/v1/apps/" + testApp + "/bundles"
	zip := func(v string) []byte { return zipOf(map[string]string{"index.html": "<html>" + v + "</html>"}) }
	wantStatus(t, env.upload(path, zip("1.0.0"), "version", "1.0.0", "channel", "production"), http.StatusCreated, "")

	rec := env.upload(path, zip("1.1.0"), "version", "1.1.0", "channel", "production", "rollout", "10",
		"native", `{"capacitor":"7.1.0","plugins":["@capacitor/camera@7.0.1"]}`, "forced", "camera ships in the next APK")
	wantStatus(t, rec, http.StatusCreated, "")
	res := decode[ota.UploadResult](t, rec)
	if n := res.Bundle.Native; n == nil || n.Capacitor != "7.1.0" || len(n.Plugins) != 1 {
		t.Errorf("uploaded bundle native = %+v", n)
	}
	ch := decode[ota.Channel](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/production", nil))
	if r := ch.Rollout; r == nil || r.Target != "1.1.0" || r.Previous != "1.0.0" || r.Percent != 10 {
		t.Errorf("rollout after upload = %+v", r)
	}
	page := decode[ota.HistoryPage](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history", nil))
	if ev := page.Events[0]; ev.Type != ota.EventUpload || ev.Note != "native check overridden: camera ships in the next APK; rollout 10%" {
		t.Errorf("upload event = %+v", ev)
	}

	for _, tc := range []struct {
		name   string
		fields []string
	}{
		{"rollout above 100", []string{"rollout", "101"}},
		{"rollout zero", []string{"rollout", "0"}},
		{"rollout not a number", []string{"rollout", "half"}},
		{"native not JSON", []string{"native", "camera"}},
		{"native with unknown keys", []string{"native", `{"capacitor":"7","extra":1}`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields := append([]string{"version", "2.0.0", "channel", "production"}, tc.fields...)
			wantStatus(t, env.upload(path, zip("2.0.0"), fields...), http.StatusBadRequest, ota.ErrCodeBadRequest)
		})
	}
}

// TestPruneHealth: the health of a version no channel serves is forgotten
// once nobody reported on it for the retention period, in memory and in
// the store; what a channel serves, and what was reported lately, stays.
func TestPruneHealth(t *testing.T) {
	env := newTestEnv(t)
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		env.publish(testApp, "production", v, nil)
	}
	env.publish(testApp, "beta", "2.0.0", nil)
	report := func(version, device string) {
		t.Helper()
		env.offered(testApp, "production", version, device)
		ev := confRequest(map[string]any{"action": "update_fail", "version_name": version, "device_id": device})
		wantStatus(t, env.device(http.MethodPost, "/stats", []any{ev}), http.StatusOK, "")
	}
	report("1.0.0", "d1") // old, not served: pruned
	report("1.2.0", "d2") // old, production's active version: kept
	report("2.0.0", "d3") // old, beta's active version: kept
	env.clock.Advance(healthRetention / 2)
	report("1.1.0", "d4") // not served, but reported within the period: kept
	env.clock.Advance(healthRetention/2 + time.Hour)

	n, err := env.srv.PruneHealth(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("PruneHealth = %d, %v; want 1 version pruned", n, err)
	}
	want := map[string]int{"1.0.0": 0, "1.1.0": 1, "1.2.0": 1, "2.0.0": 1}
	for v, failed := range want {
		if _, got, _ := env.srv.health.counts(testApp, v); got != failed {
			t.Errorf("after pruning, %s has %d failed devices; want %d", v, got, failed)
		}
	}
	hs, err := env.store.LoadHealth(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var stored []string
	for _, h := range hs {
		stored = append(stored, h.Version)
	}
	slices.Sort(stored)
	if !slices.Equal(stored, []string{"1.1.0", "1.2.0", "2.0.0"}) {
		t.Errorf("stored health of %v; want 1.1.0, 1.2.0 and 2.0.0", stored)
	}
	// Nothing more to prune; a restart does not bring 1.0.0 back.
	if n, err := env.srv.PruneHealth(context.Background()); err != nil || n != 0 {
		t.Errorf("second PruneHealth = %d, %v; want 0", n, err)
	}
	env.reopen()
	if _, got, _ := env.srv.health.counts(testApp, "1.0.0"); got != 0 {
		t.Errorf("1.0.0's health came back after a restart")
	}
	if _, got, _ := env.srv.health.counts(testApp, "1.2.0"); got != 1 {
		t.Errorf("1.2.0's health was lost across a restart")
	}
}
