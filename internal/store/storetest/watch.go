package storetest

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// testOfferChecks: the latest check's fields of an offer record come back
// as they were saved, and a record of a device only checked (Running, no
// Version) is kept, not taken for a removal.
func testOfferChecks(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	full := store.DeviceOffer{Device: 7, AppID: "demo", Channel: "stable", Version: "1.0.0", First: at, Last: at.Add(time.Hour), Count: 4,
		Seen: at.Add(2 * time.Hour), Running: ota.VersionBuiltin, RunningChannel: "stable", Flags: 0x5a2, Build: "1.0.0", Plugin: "7.1.0"}
	checked := store.DeviceOffer{Device: 8, AppID: "demo", Seen: at, Running: "1.0.0", RunningChannel: "stable", Build: "2.0"}
	if err := f.s.SaveOffers(ctx, []store.DeviceOffer{full, checked}); err != nil {
		t.Fatalf("save offers: %v", err)
	}
	got := map[uint64]store.DeviceOffer{}
	if err := f.s.LoadOffers(ctx, func(o store.DeviceOffer) error { got[o.Device] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, want := range []store.DeviceOffer{full, checked} {
		g := got[want.Device]
		if g.AppID != want.AppID || g.Version != want.Version || g.Count != want.Count || !g.Seen.Equal(want.Seen) ||
			g.Running != want.Running || g.RunningChannel != want.RunningChannel || g.Flags != want.Flags ||
			g.Build != want.Build || g.Plugin != want.Plugin || !g.First.Equal(want.First) || !g.Last.Equal(want.Last) {
			t.Errorf("offer %d = %+v\nwant %+v", want.Device, g, want)
		}
	}
	if err := f.s.SaveOffers(ctx, []store.DeviceOffer{{Device: 8}}); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = f.s.LoadOffers(ctx, func(o store.DeviceOffer) error { n++; return nil })
	if n != 1 {
		t.Errorf("%d records after removing device 8; want 1", n)
	}
}

// testAdoption: adoption days are kept per app and day, replaced, pruned
// before keepFrom, read from since on, oldest first; unknown apps' days
// are dropped.
func testAdoption(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	f.web("b", "stable", "1.0.0")
	day := func(n int) time.Time { return time.Date(2026, 3, 1+n, 0, 0, 0, 0, time.UTC) }
	counts := func(n int) []store.AdoptionCount {
		return []store.AdoptionCount{{Channel: "stable", Version: "1.0.0", Devices: n}, {Channel: "stable", Version: ota.VersionBuiltin, Devices: 2, Estimated: true}}
	}
	if days, err := f.s.LoadAdoption(ctx, time.Time{}); err != nil || len(days) != 0 {
		t.Fatalf("adoption of a new store = %+v, %v", days, err)
	}
	in := []store.AdoptionDay{
		{AppID: "a", Day: day(0), Counts: counts(10)},
		{AppID: "a", Day: day(1), Counts: counts(11)},
		{AppID: "b", Day: day(1), Counts: counts(5)},
		{AppID: "no.such.app", Day: day(1), Counts: counts(1)},
	}
	if err := f.s.SaveAdoption(ctx, in, day(-100)); err != nil {
		t.Fatalf("save adoption: %v", err)
	}
	days, err := f.s.LoadAdoption(ctx, time.Time{})
	if err != nil || !reflect.DeepEqual(days, in[:3]) {
		t.Fatalf("LoadAdoption = %+v, %v\nwant %+v", days, err, in[:3])
	}
	// Replaced; days before keepFrom removed; since bounds the read.
	repl := store.AdoptionDay{AppID: "a", Day: day(1), Counts: counts(12)}
	if err := f.s.SaveAdoption(ctx, []store.AdoptionDay{repl}, day(1)); err != nil {
		t.Fatal(err)
	}
	days, err = f.s.LoadAdoption(ctx, time.Time{})
	if err != nil || !reflect.DeepEqual(days, []store.AdoptionDay{repl, in[2]}) {
		t.Errorf("after replace and prune: %+v, %v", days, err)
	}
	if days, err := f.s.LoadAdoption(ctx, day(2)); err != nil || len(days) != 0 {
		t.Errorf("LoadAdoption from a later day = %+v, %v", days, err)
	}
}

// testLead: one holder of a name at a time; another name is free; a
// released lease can be taken again.
func testLead(t *testing.T, f *fixture) {
	ctx := t.Context()
	l1, ok, err := f.s.Lead(ctx, "ramps")
	if err != nil || !ok {
		t.Fatalf("first Lead = %v, %v", ok, err)
	}
	if _, ok, err := f.s.Lead(ctx, "ramps"); err != nil || ok {
		t.Fatalf("second Lead while held = %v, %v; want not the leader", ok, err)
	}
	l2, ok, err := f.s.Lead(ctx, "other")
	if err != nil || !ok {
		t.Fatalf("Lead of another name = %v, %v", ok, err)
	}
	l2.Release()
	select {
	case <-l1.Lost():
		t.Fatal("a held lease is lost")
	default:
	}
	l1.Release()
	l1.Release() // twice is harmless
	l3, ok, err := f.s.Lead(ctx, "ramps")
	if err != nil || !ok {
		t.Fatalf("Lead after the release = %v, %v", ok, err)
	}
	l3.Release()
}

// testRamp: a ramp schedules a staged rollout's steps; otad's steps and
// holds follow its rules; set and complete cancel it, pause and resume
// suspend and restart it.
func testRamp(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	f.staged("a", "stable", "1.1.0", 5)
	ramp := &ota.RampRequest{Steps: []int{5, 25, 50, 100}, EverySeconds: 7200, MinDevices: 20}
	set := func(req ota.RolloutRequest) (ota.Channel, error) {
		return f.s.SetRollout(ctx, "a", "stable", req, actor, f.tick())
	}
	for _, bad := range []*ota.RampRequest{
		nil, {Steps: []int{5, 25}, EverySeconds: 7200}, {Steps: []int{50, 25, 100}, EverySeconds: 7200},
		{Steps: []int{5, 100}, EverySeconds: 10}, {Steps: []int{0, 100}, EverySeconds: 7200},
	} {
		_, err := set(ota.RolloutRequest{Action: ota.RolloutRamp, Ramp: bad})
		wantErr(t, "a bad ramp", err, store.ErrInvalid)
	}
	start := *f.now
	ch, err := set(ota.RolloutRequest{Action: ota.RolloutRamp, Ramp: ramp})
	wantErr(t, "ramp", err, nil)
	rp := ch.Rollout.Ramp
	if rp == nil || ch.Rollout.Percent != 5 || rp.Step != 0 || !rp.StepAt.Equal(start.Add(time.Second)) || rp.ApprovedBy != actor ||
		rp.MinDevices != 20 || rp.Every() != 2*time.Hour {
		t.Fatalf("after ramp: %+v ramp %+v", ch.Rollout, rp)
	}
	if ev := f.last("a"); ev.Type != ota.EventRollout || ev.Note != "5% → 5%, ramp 5,25,50,100 every 2h0m0s, at least 20 devices a step" {
		t.Errorf("ramp event %+v", ev)
	}
	// Holds: one event per reason.
	before := f.countEvents()
	for _, reason := range []string{"3 of 20 devices reported", "3 of 20 devices reported", "failure rate 0.30"} {
		if _, err := set(ota.RolloutRequest{Action: store.RolloutHold, Reason: reason}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.countEvents() - before; n != 2 {
		t.Errorf("%d hold events for two reasons", n)
	}
	if ev := f.last("a"); ev.Type != ota.EventRampHold || ev.Note != "ramp holds at 5%: failure rate 0.30" {
		t.Errorf("hold event %+v", ev)
	}
	if rp := f.channel("a", "stable").Rollout.Ramp; rp.Held != "failure rate 0.30" {
		t.Errorf("held %q", rp.Held)
	}
	// Steps: only the next one; a step clears the hold.
	_, err = set(ota.RolloutRequest{Action: store.RolloutStep, Percent: 50})
	wantErr(t, "a step past the next", err, store.ErrInvalid)
	ch, err = set(ota.RolloutRequest{Action: store.RolloutStep, Percent: 25})
	wantErr(t, "step", err, nil)
	if r := ch.Rollout; r.Percent != 25 || r.Ramp.Step != 1 || r.Ramp.Held != "" || !r.Ramp.StepAt.Equal(*f.now) {
		t.Errorf("after a step: %+v %+v", r, r.Ramp)
	}
	if ev := f.last("a"); ev.Note != "25% → 25%, ramp step 2 of 4, approved by alice" && ev.Note != "5% → 25%, ramp step 2 of 4, approved by alice" {
		t.Errorf("step event note %q", ev.Note)
	}
	// Pause suspends: no step; resume restarts the step's interval.
	if _, err := set(ota.RolloutRequest{Action: ota.RolloutPause}); err != nil {
		t.Fatal(err)
	}
	_, err = set(ota.RolloutRequest{Action: store.RolloutStep, Percent: 50})
	wantErr(t, "a step while paused", err, store.ErrInvalid)
	ch, err = set(ota.RolloutRequest{Action: ota.RolloutResume})
	wantErr(t, "resume", err, nil)
	if r := ch.Rollout; r.Paused || r.Ramp == nil || !r.Ramp.StepAt.Equal(*f.now) {
		t.Errorf("after resume: %+v %+v", r, r.Ramp)
	}
	// A manual percent cancels the ramp.
	ch, err = set(ota.RolloutRequest{Action: ota.RolloutSet, Percent: 60})
	wantErr(t, "set", err, nil)
	if ch.Rollout.Ramp != nil || ch.Rollout.Percent != 60 {
		t.Errorf("after set: %+v", ch.Rollout)
	}
	if ev := f.last("a"); ev.Note != "25% → 60%, ramp cancelled" {
		t.Errorf("set event note %q", ev.Note)
	}
	_, err = set(ota.RolloutRequest{Action: store.RolloutHold, Reason: "x"})
	wantErr(t, "hold without a ramp", err, store.ErrInvalid)
	// The last step ends the ramp; it stays on record.
	if _, err := set(ota.RolloutRequest{Action: ota.RolloutRamp, Ramp: &ota.RampRequest{Steps: []int{60, 100}, EverySeconds: 60}}); err != nil {
		t.Fatal(err)
	}
	ch, err = set(ota.RolloutRequest{Action: store.RolloutStep, Percent: 100})
	wantErr(t, "last step", err, nil)
	if r := ch.Rollout; r.Percent != 100 || !r.Ramp.Done() || r.InEffect(ch.Active) {
		t.Errorf("after the last step: %+v %+v", r, r.Ramp)
	}
	_, err = set(ota.RolloutRequest{Action: store.RolloutStep, Percent: 100})
	wantErr(t, "a step after the last", err, store.ErrInvalid)
	if errors.Is(err, store.ErrNotFound) {
		t.Error("not found")
	}
}

// testProtected: the protected and stalled-install policy fields are
// stored and patched like the others; tokens keep their protected scope.
func testProtected(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("a", "stable", "1.0.0")
	yes, window, polls := true, int64(3600), 5
	ch, err := f.s.UpdateChannel(ctx, "a", "stable", ota.ChannelPolicyPatch{Protected: &yes, StalledWindowSeconds: &window,
		StalledPolls: &polls, IgnoreStalled: &yes}, actor, f.tick())
	wantErr(t, "patch", err, nil)
	p := f.channel("a", "stable").Policy
	if !p.Protected || p.StalledWindow() != time.Hour || p.StalledChecks() != 5 || !p.IgnoreStalled || !reflect.DeepEqual(p, ch.Policy) {
		t.Errorf("policy %+v", p)
	}
	if ev := f.last("a"); ev.Type != ota.EventPolicy || ev.Note == "" {
		t.Errorf("policy event %+v", ev)
	}
	for _, bad := range []ota.ChannelPolicyPatch{{StalledWindowSeconds: new(int64)}, {StalledPolls: new(int)}} {
		_, err := f.s.UpdateChannel(ctx, "a", "stable", bad, actor, f.tick())
		wantErr(t, "a bad stalled policy", err, store.ErrInvalid)
	}
	if d := ota.DefaultChannelPolicy(); d.Protected || d.StalledWindow() != ota.DefaultStalledWindow || d.StalledChecks() != ota.DefaultStalledPolls {
		t.Errorf("default policy %+v", d)
	}
	tk := store.CIToken{ID: "pppp", Name: "release", SecretHash: []byte{1}, Protected: true, CreatedBy: actor,
		CreatedAt: f.tick(), ExpiresAt: f.now.Add(time.Hour)}
	if err := f.s.CreateToken(ctx, tk); err != nil {
		t.Fatal(err)
	}
	if got, err := f.s.GetToken(ctx, "pppp"); err != nil || !got.Protected {
		t.Errorf("token %+v, %v; want protected", got, err)
	}
}
