package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// watchDevice is a device of the ramp tests: healthy ones install what
// they are offered (set, app_launch_ready) and then poll on it; silent
// ones download it (download_complete) and keep polling on the old
// version without any failure report, as an app that hangs before
// notifyAppReady and is rolled back at its next cold start.
type watchDevice struct {
	simDevice
	silent bool
}

func (d *watchDevice) check(t testing.TB, client *http.Client, base string) {
	var r ota.UpdateResponse
	if err := json.Unmarshal(simPost(t, client, base+"/updates", d.info()), &r); err != nil || r.Error != "" || r.Version == "" {
		return
	}
	target, old := r.Version, d.running
	ev := func(action, version string) ota.StatsEvent {
		info := d.info()
		info.VersionName = version
		return ota.StatsEvent{DeviceInfo: info, Action: action, OldVersionName: old}
	}
	if d.silent {
		simPost(t, client, base+"/stats", []ota.StatsEvent{ev("download_complete", target)})
		return
	}
	d.running = target
	simPost(t, client, base+"/stats", []ota.StatsEvent{ev("download_complete", target), ev("set", target), ev("app_launch_ready", target)})
}

// rampEnv is a server over real HTTP with n devices on 1.0.0, 1.1.0
// published at 5 % and a ramp of 5,25,50,100 every 2 hours scheduled.
type rampEnv struct {
	env     *testEnv
	ts      *httptest.Server
	devices []*watchDevice
	start   time.Time
}

func newRampEnv(t *testing.T, n, silentPerFive, rampMin int, policy ota.ChannelPolicyPatch) *rampEnv {
	env := newTestEnv(t)
	ts := httptest.NewServer(env.srv.Handler())
	t.Cleanup(ts.Close)
	env.publish(testApp, "production", "1.0.0", nil)
	env.patch(testApp, "production", policy)
	e := &rampEnv{env: env, ts: ts}
	for i := range n {
		e.devices = append(e.devices, &watchDevice{simDevice: simDevice{id: fmt.Sprintf("%08x-2c3e-4d5b-9a65-%012x", i*2654435761, i), running: "1.0.0"},
			silent: i%5 < silentPerFive})
	}
	e.round(t) // every device known on 1.0.0
	info, err := env.blobs.Put(context.Background(), strings.NewReader(string(zipOf(map[string]string{"index.html": "<html>1.1.0</html>"}))), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.store.Publish(context.Background(), store.PublishInput{
		Bundle:  ota.Bundle{AppID: testApp, Version: "1.1.0", Kind: ota.KindWeb, SHA256: info.SHA256, Size: info.Size, UploadedBy: testUser},
		Channel: "production", Actor: testUser, Time: env.clock.Now(), Rollout: 5,
	}); err != nil {
		t.Fatal(err)
	}
	if err := env.srv.refreshApp(context.Background(), testApp); err != nil {
		t.Fatal(err)
	}
	e.start = env.clock.Now()
	rec := env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollout", ota.RolloutRequest{Action: ota.RolloutRamp,
		Ramp: &ota.RampRequest{Steps: []int{5, 25, 50, 100}, EverySeconds: 7200, MinDevices: rampMin}})
	wantStatus(t, rec, http.StatusOK, "")
	return e
}

// round makes every device check once, 16 at a time.
func (e *rampEnv) round(t *testing.T) {
	var wg sync.WaitGroup
	work := make(chan *watchDevice)
	for range 16 {
		wg.Go(func() {
			client := e.ts.Client()
			for d := range work {
				d.check(t, client, e.ts.URL)
			}
		})
	}
	for _, d := range e.devices {
		work <- d
	}
	close(work)
	wg.Wait()
}

// run advances the clock by step minutes at a time for total, a round of
// checks and a ramp tick each time, and returns the channel after every
// tick.
func (e *rampEnv) run(t *testing.T, total, step time.Duration, each func(at time.Duration, ch ota.Channel)) {
	for at := step; at <= total; at += step {
		e.env.clock.Advance(step)
		e.round(t)
		if err := e.env.srv.tickRamps(context.Background()); err != nil {
			t.Fatalf("tick at %s: %v", at, err)
		}
		each(at, e.channel(t))
	}
}

func (e *rampEnv) channel(t *testing.T) ota.Channel {
	e.env.token = e.env.issue(testUser) // the clock moved past its expiry
	return decode[ota.Channel](t, e.env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/channels/production", nil))
}

func (e *rampEnv) events(t *testing.T) []ota.Event {
	e.env.token = e.env.issue(testUser)
	return decode[ota.HistoryPage](t, e.env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/history?limit=200", nil)).Events
}

// TestRampHoldsAndHaltsOnSilentFailures: of 500 devices over HTTP, 20 %
// download 1.1.0 and keep polling on 1.0.0 without a failure report.
// Their installs count as stalled once the window passes; the ramp
// never leaves its first step and the channel halts, back to 1.0.0.
func TestRampHoldsAndHaltsOnSilentFailures(t *testing.T) {
	e := newRampEnv(t, 500, 1, 10, ota.ChannelPolicyPatch{MinDevices: ptrTo(10)})
	var haltedAt time.Duration
	e.run(t, 3*time.Hour, 10*time.Minute, func(at time.Duration, ch ota.Channel) {
		r := ch.Rollout
		if r == nil || r.Percent != 5 {
			t.Fatalf("at %s the rollout is %+v; want it held at 5 %%", at, r)
		}
		if r.Halted && haltedAt == 0 {
			haltedAt = at
		}
	})
	ch := e.channel(t)
	if ch.Active != "1.0.0" || !ch.Rollout.Halted || ch.Rollout.Target != "1.1.0" {
		t.Fatalf("after 3 hours: active %s, rollout %+v; want 1.1.0 halted, back to 1.0.0", ch.Active, ch.Rollout)
	}
	// Within the window (30 min) and its polls (3 after the offer, every
	// 10 min) and a round or two.
	if haltedAt < 30*time.Minute || haltedAt > 50*time.Minute {
		t.Errorf("halted %s after the ramp began; want soon after the 30 min window", haltedAt)
	}
	var halt *ota.Event
	for _, ev := range e.events(t) {
		if ev.Type == ota.EventHalt {
			halt = &ev
		}
		if ev.Type == ota.EventRollout && strings.Contains(ev.Note, "ramp step") {
			t.Errorf("a ramp step was taken: %+v", ev)
		}
	}
	if halt == nil || !strings.Contains(halt.Note, "stalled") || halt.Actor != "otad" {
		t.Fatalf("halt event %+v; want otad's, naming the stalled installs", halt)
	}
	// Health shows them beside failures: none failed, about a fifth stalled.
	sum := decode[ota.StatsSummary](t, e.env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health?channel=production", nil))
	var v ota.VersionStats
	for _, vs := range sum.Versions {
		if vs.Version == "1.1.0" {
			v = vs
		}
	}
	if v.Failed != 0 || v.Stalled == 0 || v.Stalled*10 < v.Installed || v.Stalled*2 > v.Installed {
		t.Errorf("health of 1.1.0 = %+v; want no failure and about a quarter as many stalled as installed", v)
	}
	// Every silent device's story says so.
	for _, d := range e.devices {
		if !d.silent {
			continue
		}
		st := decode[ota.DeviceStory](t, e.env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/devices/"+d.id, nil))
		if st.Offer != nil && st.Offer.Version == "1.1.0" && (!st.Offer.Stalled || !st.Offer.Downloaded) {
			t.Errorf("story of silent device %s: offer %+v; want downloaded and stalled", d.id, st.Offer)
		}
	}
}

// TestRampHealthyToFull: the same ramp over 500 healthy devices takes a
// step every 2 hours, on schedule, to 100 %, and every device ends on
// 1.1.0.
func TestRampHealthyToFull(t *testing.T) {
	e := newRampEnv(t, 500, 0, 20, ota.ChannelPolicyPatch{MinDevices: ptrTo(10)})
	percents := map[time.Duration]int{}
	e.run(t, 7*time.Hour, 10*time.Minute, func(at time.Duration, ch ota.Channel) {
		if ch.Rollout.Halted {
			t.Fatalf("halted at %s: %+v", at, ch.Rollout)
		}
		percents[at] = ch.Rollout.Percent
	})
	for _, want := range []struct {
		at      time.Duration
		percent int
	}{{110 * time.Minute, 5}, {2 * time.Hour, 25}, {230 * time.Minute, 25}, {4 * time.Hour, 50}, {6 * time.Hour, 100}, {7 * time.Hour, 100}} {
		if got := percents[want.at]; got != want.percent {
			t.Errorf("at %s the rollout is at %d %%; want %d %%", want.at, got, want.percent)
		}
	}
	var steps []time.Duration
	for _, ev := range e.events(t) {
		if ev.Type == ota.EventRollout && strings.Contains(ev.Note, "ramp step") {
			steps = append(steps, ev.Time.Sub(e.start))
			if ev.Actor != "otad" || !strings.Contains(ev.Note, "approved by "+testUser) {
				t.Errorf("step event %+v; want otad's, approved by %s", ev, testUser)
			}
		}
		if ev.Type == ota.EventRampHold {
			t.Errorf("a healthy ramp held: %+v", ev)
		}
	}
	if len(steps) != 3 || steps[0] != 6*time.Hour || steps[1] != 4*time.Hour || steps[2] != 2*time.Hour {
		t.Errorf("steps after %v (newest first); want 6h, 4h, 2h", steps)
	}
	for _, d := range e.devices {
		if d.running != "1.1.0" {
			t.Fatalf("device %s runs %s at the end", d.id, d.running)
		}
	}
	// Adoption counts today's devices by their latest version.
	rep := decode[ota.AdoptionReport](t, e.env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/adoption?channel=production", nil))
	if n := len(rep.Days); n == 0 || rep.Days[n-1].Devices != 500 || rep.Days[n-1].Versions[0].Version != "1.1.0" {
		t.Errorf("adoption = %+v; want today's 500 devices, most on 1.1.0", rep.Days)
	}
}

// TestRampHoldsForTooFewDevices: a ramp that needs more devices than its
// step reaches holds at its due time, with one ramp_hold event, and steps
// once they report.
func TestRampHoldsForTooFewDevices(t *testing.T) {
	e := newRampEnv(t, 500, 0, 40, ota.ChannelPolicyPatch{MinDevices: ptrTo(10)})
	e.run(t, 150*time.Minute, 30*time.Minute, func(time.Duration, ota.Channel) {})
	ch := e.channel(t)
	if ch.Rollout.Percent != 5 || ch.Rollout.Ramp.Held == "" || !strings.Contains(ch.Rollout.Ramp.Held, "of the 40 devices a step needs") {
		t.Fatalf("rollout %+v ramp %+v; want held at 5 %% for too few devices", ch.Rollout, ch.Rollout.Ramp)
	}
	holds := 0
	for _, ev := range e.events(t) {
		if ev.Type == ota.EventRampHold {
			holds++
		}
	}
	if holds != 1 {
		t.Errorf("%d hold events; want one for one reason", holds)
	}
	// Fewer devices needed (a new ramp), and it steps at its next tick
	// after its interval.
	wantStatus(t, e.env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/channels/production/rollout", ota.RolloutRequest{Action: ota.RolloutRamp,
		Ramp: &ota.RampRequest{Steps: []int{5, 100}, EverySeconds: 60, MinDevices: 10}}), http.StatusOK, "")
	e.env.clock.Advance(time.Minute)
	if err := e.env.srv.tickRamps(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ch := e.channel(t); ch.Rollout.Percent != 100 {
		t.Errorf("after the new ramp's interval: %+v", ch.Rollout)
	}
}

// The ramp survives a restart: the schedule is in the store, and a new
// process takes the step when it is due.
func TestRampSurvivesRestart(t *testing.T) {
	e := newRampEnv(t, 100, 0, 0, ota.ChannelPolicyPatch{MinDevices: ptrTo(10)})
	e.env.srv.Close()
	e.env.reopen()
	e.env.clock.Advance(2 * time.Hour)
	if err := e.env.srv.tickRamps(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.env.srv.WarmUp(context.Background())
	if err := e.env.srv.tickRamps(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ch := e.channel(t); ch.Rollout.Percent != 25 {
		t.Errorf("after a restart and the interval: %+v", ch.Rollout)
	}
}
