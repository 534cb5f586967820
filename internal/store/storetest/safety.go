package storetest

import (
	"reflect"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// staged publishes a web bundle with a staged rollout.
func (f *fixture) staged(app, channel, version string, percent int) ota.UploadResult {
	f.t.Helper()
	res, err := f.s.Publish(f.t.Context(), store.PublishInput{
		Bundle:  ota.Bundle{AppID: app, Version: version, Kind: ota.KindWeb, SHA256: Sum(app + version), Size: 1},
		Channel: channel, Actor: actor, Time: f.tick(), Rollout: percent,
	})
	if err != nil {
		f.t.Fatalf("publish %s %s %s at %d%%: %v", app, channel, version, percent, err)
	}
	return res
}

func testRollout(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	f.staged("a", "stable", "1.1.0", 10)
	ch := f.channel("a", "stable")
	if r := ch.Rollout; ch.Active != "1.1.0" || r == nil || r.Target != "1.1.0" || r.Previous != "1.0.0" || r.Percent != 10 || r.Paused || r.Halted {
		t.Fatalf("after a staged publish: active %s rollout %+v", ch.Active, ch.Rollout)
	}
	if ev := f.last("a"); ev.Note != "rollout 10%" {
		t.Errorf("upload event note %q; want the rollout", ev.Note)
	}

	steps := []struct {
		req      ota.RolloutRequest
		err      error
		percent  int
		paused   bool
		newEvent bool
	}{
		{ota.RolloutRequest{Action: ota.RolloutSet, Percent: 50}, nil, 50, false, true},
		{ota.RolloutRequest{Action: ota.RolloutSet, Percent: 50}, nil, 50, false, false}, // a retry records nothing
		{ota.RolloutRequest{Action: ota.RolloutSet, Percent: 20}, store.ErrInvalid, 50, false, false},
		{ota.RolloutRequest{Action: ota.RolloutSet, Percent: 101}, store.ErrInvalid, 50, false, false},
		{ota.RolloutRequest{Action: "jump"}, store.ErrInvalid, 50, false, false},
		{ota.RolloutRequest{Action: ota.RolloutPause}, nil, 50, true, true},
		{ota.RolloutRequest{Action: ota.RolloutSet, Percent: 20}, nil, 20, true, true}, // paused: may shrink
		{ota.RolloutRequest{Action: ota.RolloutResume}, nil, 20, false, true},
		{ota.RolloutRequest{Action: ota.RolloutComplete}, nil, 100, false, true},
	}
	for i, st := range steps {
		before := f.countEvents()
		got, err := f.s.SetRollout(ctx, "a", "stable", st.req, actor, f.tick())
		wantErr(t, st.req.Action, err, st.err)
		ch := f.channel("a", "stable")
		if r := ch.Rollout; r == nil || r.Percent != st.percent || r.Paused != st.paused {
			t.Fatalf("step %d %+v: rollout %+v; want %d%% paused=%v", i, st.req, r, st.percent, st.paused)
		}
		if err == nil && !reflect.DeepEqual(got.Rollout, ch.Rollout) {
			t.Errorf("step %d: returned rollout %+v, stored %+v", i, got.Rollout, ch.Rollout)
		}
		if n := f.countEvents() - before; (n == 1) != st.newEvent || n > 1 {
			t.Errorf("step %d %+v: %d new events; want new=%v", i, st.req, n, st.newEvent)
		}
		if st.newEvent {
			checkEvent(t, f.last("a"), ota.Event{Type: ota.EventRollout, AppID: "a", Channel: "stable", Version: "1.1.0"})
		}
	}

	// A channel without a staged rollout, or an unknown one, refuses.
	f.web("a", "beta", "2.0.0")
	_, err := f.s.SetRollout(ctx, "a", "beta", ota.RolloutRequest{Action: ota.RolloutPause}, actor, f.tick())
	wantErr(t, "rollout of an unstaged channel", err, store.ErrInvalid)
	_, err = f.s.SetRollout(ctx, "a", "nope", ota.RolloutRequest{Action: ota.RolloutPause}, actor, f.tick())
	wantErr(t, "rollout of a missing channel", err, store.ErrNotFound)

	// Re-pointing the channel ends the rollout; a plain publish has none.
	f.staged("a", "stable", "1.2.0", 5)
	if _, err := f.s.Rollback(ctx, "a", "stable", "", actor, f.tick()); err != nil {
		t.Fatal(err)
	}
	if ch := f.channel("a", "stable"); ch.Rollout != nil || ch.Active != "1.1.0" {
		t.Errorf("after a rollback: active %s rollout %+v; want 1.1.0 and none", ch.Active, ch.Rollout)
	}
	f.web("a", "stable", "1.3.0")
	if ch := f.channel("a", "stable"); ch.Rollout != nil {
		t.Errorf("after a plain publish: rollout %+v", ch.Rollout)
	}
	for _, pct := range []int{-1, 101} {
		_, err := f.s.Publish(ctx, store.PublishInput{
			Bundle:  ota.Bundle{AppID: "a", Version: "9.0.0", Kind: ota.KindWeb, SHA256: Sum("a9"), Size: 1},
			Channel: "stable", Actor: actor, Time: f.tick(), Rollout: pct,
		})
		wantErr(t, "publish at an impossible percent", err, store.ErrInvalid)
	}
}

func testHalt(t *testing.T, f *fixture) {
	ctx := t.Context()
	const reason = "failure rate 0.31 (31/100 devices) ≥ 0.20"
	f.web("a", "stable", "1.0.0")
	f.staged("a", "stable", "1.1.0", 30)
	before := f.countEvents()
	ch, err := f.s.Halt(ctx, "a", "stable", "1.1.0", reason, "otad", f.tick())
	wantErr(t, "halt", err, nil)
	if ch.From != "1.1.0" || ch.To != "1.0.0" {
		t.Errorf("halt change %+v; want 1.1.0 → 1.0.0", ch)
	}
	got := f.channel("a", "stable")
	if r := got.Rollout; got.Active != "1.0.0" || r == nil || !r.Halted || r.Reason != reason || r.Target != "1.1.0" || r.Percent != 30 {
		t.Fatalf("after the halt: active %s rollout %+v", got.Active, r)
	}
	ev := f.last("a")
	if ev.Type != ota.EventHalt || ev.Actor != "otad" || ev.From != "1.1.0" || ev.To != "1.0.0" || ev.Note != reason || ev.SHA256 != Sum("a1.0.0") {
		t.Errorf("halt event %+v", ev)
	}
	// A retried halt (another stats batch) changes nothing.
	if _, err := f.s.Halt(ctx, "a", "stable", "1.1.0", reason, "otad", f.tick()); err != nil {
		t.Fatal(err)
	}
	if n := f.countEvents() - before; n != 1 {
		t.Errorf("%d events after two halts; want 1", n)
	}
	// The device-facing state carries the halt.
	st, err := f.s.LoadAppState(ctx, "a")
	wantErr(t, "load state", err, nil)
	if r := st.Channels[0].Rollout; r == nil || !r.Halted {
		t.Errorf("state rollout %+v; want halted", r)
	}

	// A fully released version halts back to the previous release.
	f.web("b", "stable", "1.0.0")
	f.web("b", "stable", "2.0.0")
	if ch, err := f.s.Halt(ctx, "b", "stable", "2.0.0", reason, "otad", f.tick()); err != nil || ch.To != "1.0.0" {
		t.Errorf("halt of a full release: %+v, %v", ch, err)
	}
	// With nothing before it, the version stays, halted.
	f.web("c", "stable", "1.0.0")
	if ch, err := f.s.Halt(ctx, "c", "stable", "1.0.0", reason, "otad", f.tick()); err != nil || ch.To != "1.0.0" {
		t.Errorf("halt without a previous release: %+v, %v", ch, err)
	}
	if r := f.channel("c", "stable").Rollout; r == nil || !r.Halted {
		t.Errorf("rollout of c %+v; want halted in place", r)
	}
	_, err = f.s.Halt(ctx, "nope", "stable", "1.0.0", reason, "otad", f.tick())
	wantErr(t, "halt of a missing app", err, store.ErrNotFound)
}

func testHealth(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	hs := []store.VersionHealth{
		{AppID: "a", Version: "1.0.0", Installed: []string{"d1", "d2"}, Failed: map[string][]string{"d3": {"update_fail"}}, UpdatedAt: f.tick()},
		{AppID: "unknown-app", Version: "1.0.0", Installed: []string{"d1"}},
	}
	wantErr(t, "save health", f.s.SaveHealth(ctx, hs), nil)
	got, err := f.s.LoadHealth(ctx)
	wantErr(t, "load health", err, nil)
	if len(got) != 1 || !reflect.DeepEqual(got[0].Installed, hs[0].Installed) || !reflect.DeepEqual(got[0].Failed, hs[0].Failed) ||
		!got[0].UpdatedAt.Equal(hs[0].UpdatedAt) {
		t.Fatalf("loaded health %+v; want only the known app's record %+v", got, hs[0])
	}
	// A later save replaces the record.
	hs[0].Installed = append(hs[0].Installed, "d4")
	wantErr(t, "save health again", f.s.SaveHealth(ctx, hs[:1]), nil)
	got, err = f.s.LoadHealth(ctx)
	wantErr(t, "load health", err, nil)
	if len(got) != 1 || len(got[0].Installed) != 3 {
		t.Errorf("health after a second save %+v", got)
	}
	// An empty record removes the stored one; removing one never stored
	// is no error.
	wantErr(t, "remove health", f.s.SaveHealth(ctx, []store.VersionHealth{
		{AppID: "a", Version: "1.0.0"}, {AppID: "a", Version: "9.9.9"}, {AppID: "unknown-app", Version: "1.0.0"},
	}), nil)
	got, err = f.s.LoadHealth(ctx)
	wantErr(t, "load health", err, nil)
	if len(got) != 0 {
		t.Errorf("health after removing it: %+v", got)
	}
}

func testSafetyPolicy(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	p := f.channel("a", "stable").Policy
	if !p.AutoHalt || p.HaltOnFailureRate != ota.DefaultHaltOnFailureRate || p.MinDevices != ota.DefaultMinDevices {
		t.Fatalf("new channel policy %+v; want auto-halt on at the defaults", p)
	}
	off, rate, min := false, 0.5, 10
	ch, err := f.s.UpdateChannel(ctx, "a", "stable", ota.ChannelPolicyPatch{AutoHalt: &off, HaltOnFailureRate: &rate, MinDevices: &min}, actor, f.tick())
	wantErr(t, "patch", err, nil)
	if ch.Policy.AutoHalt || ch.Policy.HaltOnFailureRate != 0.5 || ch.Policy.MinDevices != 10 {
		t.Errorf("patched policy %+v", ch.Policy)
	}
	if ev := f.last("a"); ev.Note != "auto_halt=false, halt_on_failure_rate=0.5, min_devices=10" {
		t.Errorf("policy event note %q", ev.Note)
	}
	for _, bad := range []ota.ChannelPolicyPatch{
		{HaltOnFailureRate: ptr(0.0)}, {HaltOnFailureRate: ptr(1.5)}, {MinDevices: ptr(0)},
	} {
		_, err := f.s.UpdateChannel(ctx, "a", "stable", bad, actor, f.tick())
		wantErr(t, "bad safety patch", err, store.ErrInvalid)
	}
	if ch := f.channel("a", "stable"); ch.Policy.HaltOnFailureRate != 0.5 {
		t.Errorf("a refused patch changed the policy: %+v", ch.Policy)
	}
	// A bundle keeps its native fingerprint.
	fp := &ota.NativeFingerprint{Capacitor: "7.0.0", Plugins: []string{"@capacitor/app@7.0.0"}}
	_, err = f.s.Publish(ctx, store.PublishInput{
		Bundle:  ota.Bundle{AppID: "a", Version: "1.1.0", Kind: ota.KindAPK, SHA256: Sum("apk1.1.0"), Size: 1, Native: fp},
		Channel: ota.APKChannel, Actor: actor, Time: f.tick(),
	})
	wantErr(t, "publish apk with fingerprint", err, nil)
	if b := f.bundle("a", ota.KindAPK, "1.1.0"); !reflect.DeepEqual(b.Native, fp) {
		t.Errorf("stored fingerprint %+v; want %+v", b.Native, fp)
	}
}

func ptr[T any](v T) *T { return &v }
