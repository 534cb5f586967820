package update

import (
	"fmt"
	"strings"
	"testing"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// memory is a FailureMemory over a fixed set of "version/device" pairs.
type memory map[string]bool

func (m memory) FailedOn(app, version, device string) bool { return m[version+"/"+device] }

// safetyState is one public channel "production" with releases 1.0.0,
// 1.1.0 and 1.2.0 (active). 1.2.0 needs native 2.0.0 or later; 1.1.0 runs
// on native 1.x only.
func safetyState() store.State {
	b := func(v string, c byte, min, max string) ota.Bundle {
		return ota.Bundle{AppID: appID, Version: v, Kind: ota.KindWeb, SHA256: sha(c), MinNative: min, MaxNative: max}
	}
	ch := ota.Channel{
		AppID: appID, ID: 1, Name: "production", Kind: ota.KindWeb, Public: true, Active: "1.2.0",
		Policy:   ota.DefaultChannelPolicy(),
		Releases: []ota.Release{{Version: "1.0.0"}, {Version: "1.1.0"}, {Version: "1.2.0"}},
	}
	return store.State{
		Apps:     []ota.App{{ID: appID, DefaultChannel: "production"}},
		Channels: []ota.Channel{ch},
		Bundles:  []ota.Bundle{b("1.0.0", '0', "", ""), b("1.1.0", '1', "1.0.0", "1.99.99"), b("1.2.0", '2', "2.0.0", "")},
	}
}

// deviceIn finds a device id inside (or outside) the cohort of a bundle.
func deviceIn(t *testing.T, key string, percent int, inside bool) string {
	t.Helper()
	for i := range 100000 {
		id := fmt.Sprintf("device-%d", i)
		if InCohort(id, key, percent) == inside {
			return id
		}
	}
	t.Fatalf("no device found %v the %d%% cohort", inside, percent)
	return ""
}

func TestDecideSafety(t *testing.T) {
	rollout := func(r ota.Rollout) func(*store.State) {
		return func(st *store.State) { st.Channels[0].Rollout = &r }
	}
	in10 := deviceIn(t, sha('2'), 10, true)
	out10 := deviceIn(t, sha('2'), 10, false)
	tests := []struct {
		name      string
		state     func(*store.State)
		native    string // version_build; the device runs bundle 0.9.0
		running   string
		device    string
		mem       memory
		want      string // offered version, or "" when wantCode is set
		wantCode  string
		wantKind  string
		wantInLog string
	}{
		{name: "compatible native gets the active bundle", native: "2.1.0", want: "1.2.0"},
		{name: "native below the range falls back to the newest fitting release", native: "1.4.0", want: "1.1.0",
			wantInLog: `falling back to "1.1.0"`},
		{name: "native above every bounded release gets the unbounded one", native: "0.5.0", want: "1.0.0"},
		{name: "no release fits: blocked", native: "0.5.0",
			state:    func(st *store.State) { st.Bundles[0].MinNative = "1.0.0" },
			wantCode: ota.UpdIncompatibleNative, wantKind: ota.KindBlocked},
		{name: "device already runs the fallback", native: "1.4.0", running: "1.1.0", wantCode: ota.UpdNoNewVersion, wantKind: ota.KindUpToDate},
		{name: "failed version is not offered again: previous release", native: "2.1.0",
			mem: memory{"1.2.0/" + deviceID: true}, want: "1.0.0", wantInLog: "failed on it"},
		{name: "failed fallback is skipped too", native: "1.4.0",
			mem: memory{"1.1.0/" + deviceID: true}, want: "1.0.0"},
		{name: "every release failed: version_failed_on_device", native: "2.1.0",
			mem:      memory{"1.2.0/" + deviceID: true, "1.1.0/" + deviceID: true, "1.0.0/" + deviceID: true},
			wantCode: ota.UpdVersionFailedOnDevice, wantKind: ota.KindBlocked},
		{name: "only release failed: version_failed_on_device", native: "2.1.0",
			state:    func(st *store.State) { st.Channels[0].Releases = st.Channels[0].Releases[2:] },
			mem:      memory{"1.2.0/" + deviceID: true},
			wantCode: ota.UpdVersionFailedOnDevice, wantKind: ota.KindBlocked},
		{name: "failure of another device does not matter", native: "2.1.0", mem: memory{"1.2.0/other": true}, want: "1.2.0"},
		{name: "channel policy comes before failure memory", native: "2.1.0",
			state:    func(st *store.State) { st.Channels[0].Policy.IOS = false },
			mem:      memory{"1.2.0/" + deviceID: true, "1.1.0/" + deviceID: true, "1.0.0/" + deviceID: true},
			wantCode: ota.UpdDisabledPlatformIOS, wantKind: ota.KindBlocked},
		{name: "device in the rollout cohort gets the target", native: "2.1.0", device: in10,
			state: rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 10}), want: "1.2.0", wantInLog: "is in the 10% cohort"},
		{name: "device outside the cohort keeps the previous bundle", native: "2.1.0", device: out10,
			state: rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 10}), want: "1.0.0", wantInLog: "outside the 10% cohort"},
		{name: "device outside the cohort already on the previous bundle", native: "2.1.0", device: out10, running: "1.0.0",
			state:    rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 10}),
			wantCode: ota.UpdNoNewVersion, wantKind: ota.KindUpToDate},
		{name: "a device running the target keeps it even outside the cohort", native: "2.1.0", device: out10, running: "1.2.0",
			state:    rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 10}),
			wantCode: ota.UpdNoNewVersion, wantKind: ota.KindUpToDate},
		{name: "paused rollout offers the target to nobody new", native: "2.1.0", device: in10,
			state: rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 10, Paused: true}), want: "1.0.0", wantInLog: "paused"},
		{name: "0% rollout offers the previous bundle", native: "2.1.0",
			state: rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 0}), want: "1.0.0"},
		{name: "completed rollout offers the target to everyone", native: "2.1.0", device: out10,
			state: rollout(ota.Rollout{Target: "1.2.0", Previous: "1.0.0", Percent: 100}), want: "1.2.0"},
		{name: "rollout of another version is not in effect", native: "2.1.0", device: out10,
			state: rollout(ota.Rollout{Target: "1.1.0", Previous: "1.0.0", Percent: 10}), want: "1.2.0"},
		{name: "halted rollout re-pointed to the previous bundle never falls back to the halted version", native: "1.4.0",
			state: func(st *store.State) {
				st.Channels[0].Active = "1.0.0"
				st.Channels[0].Rollout = &ota.Rollout{Target: "1.1.0", Previous: "1.0.0", Percent: 30, Halted: true, Reason: "failure rate"}
			},
			running: "1.1.0", want: "1.0.0"},
		{name: "halted in place without previous: nobody new gets it", native: "2.1.0", device: in10,
			state: func(st *store.State) {
				st.Channels[0].Releases = st.Channels[0].Releases[2:]
				st.Channels[0].Rollout = &ota.Rollout{Target: "1.2.0", Percent: 10, Halted: true, Reason: "failure rate"}
			},
			wantCode: ota.UpdNoNewVersion, wantKind: ota.KindUpToDate, wantInLog: "halted"},
		{name: "rollout from builtin: outside the cohort goes back to builtin", native: "2.1.0", device: out10, running: "1.0.0",
			state: rollout(ota.Rollout{Target: "1.2.0", Previous: ota.VersionBuiltin, Percent: 10}), want: ota.VersionBuiltin},
		{name: "rollout from an empty channel: outside the cohort stays", native: "2.1.0", device: out10,
			state: func(st *store.State) {
				st.Channels[0].Releases = st.Channels[0].Releases[2:]
				st.Channels[0].Rollout = &ota.Rollout{Target: "1.2.0", Percent: 10}
			},
			wantCode: ota.UpdNoNewVersion, wantKind: ota.KindUpToDate},
		{name: "builtin channel", native: "2.1.0",
			state: func(st *store.State) { st.Channels[0].Active = ota.VersionBuiltin }, want: ota.VersionBuiltin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := safetyState()
			if tt.state != nil {
				tt.state(&st)
			}
			s := Build(st, testURL)
			req := baseRequest()
			req.VersionBuild, req.VersionName = tt.native, "0.9.0"
			if tt.running != "" {
				req.VersionName = tt.running
			}
			if tt.device != "" {
				req.DeviceID = tt.device
			}
			var mem FailureMemory
			if tt.mem != nil {
				mem = tt.mem
			}
			d := DecideWith(s, &req, "", mem)
			e := ExplainWith(s, &req, "", mem)
			if fmt.Sprint(d.Response) != fmt.Sprint(e.Response) {
				t.Errorf("Explain answered %+v, Decide %+v", e.Response, d.Response)
			}
			r := d.Response
			if tt.want != "" {
				if r.Version != tt.want || r.Error != "" {
					t.Fatalf("got %+v; want version %s\n%s", r, tt.want, strings.Join(e.Steps, "\n"))
				}
				if tt.want != ota.VersionBuiltin && (r.URL == "" || r.SessionKey == nil) {
					t.Errorf("success without url or session key: %+v", r)
				}
			} else if r.Error != tt.wantCode || r.Kind != tt.wantKind {
				t.Fatalf("got %+v; want %s (%s)\n%s", r, tt.wantCode, tt.wantKind, strings.Join(e.Steps, "\n"))
			}
			if tt.wantInLog != "" && !strings.Contains(strings.Join(e.Steps, "\n"), tt.wantInLog) {
				t.Errorf("steps do not mention %q:\n%s", tt.wantInLog, strings.Join(e.Steps, "\n"))
			}
		})
	}
}

// TestCohort checks the rollout share over 100,000 device ids (within one
// percentage point of the target), stickiness (the same answer every
// time) and monotonicity (raising the percent never drops a device).
func TestCohort(t *testing.T) {
	const n = 100000
	key := sha('7')
	prev := make([]bool, n)
	for _, pct := range []int{0, 1, 10, 25, 50, 90, 100} {
		in := 0
		for i := range n {
			id := fmt.Sprintf("%08x-device-%d", i*7919, i)
			got := InCohort(id, key, pct)
			if got != InCohort(id, key, pct) {
				t.Fatalf("device %s: cohort not sticky", id)
			}
			if prev[i] && !got {
				t.Fatalf("device %s was in the cohort below %d%% and is not at %d%%", id, pct, pct)
			}
			prev[i] = got
			if got {
				in++
			}
		}
		share := float64(in) * 100 / n
		if share < float64(pct)-1 || share > float64(pct)+1 {
			t.Errorf("%d%% rollout reached %.2f%% of devices; want within 1 point", pct, share)
		}
	}
	// Another bundle draws another cohort: the same devices are not always
	// the guinea pigs.
	same := 0
	for i := range 10000 {
		id := fmt.Sprintf("device-%d", i)
		if InCohort(id, key, 10) && InCohort(id, sha('8'), 10) {
			same++
		}
	}
	if same > 300 { // about 100 expected when independent
		t.Errorf("%d of 10000 devices are in both 10%% cohorts; cohorts of two bundles should be independent", same)
	}
}

type pairMemory map[[2]string]bool

func (m pairMemory) FailedOn(app, version, device string) bool { return m[[2]string{version, device}] }

// TestDecideWithAllocs: the safety rules keep the hot path free of
// allocations, fallbacks included.
func TestDecideWithAllocs(t *testing.T) {
	st := safetyState()
	st.Channels[0].Rollout = &ota.Rollout{Target: "1.2.0", Previous: "1.1.0", Percent: 50}
	snap := Build(st, testURL)
	mem := pairMemory{{"1.2.0", deviceID}: true}
	req := baseRequest()
	req.VersionBuild, req.VersionName = "1.4.0", "0.9.0"
	if d := DecideWith(snap, &req, "", mem); d.Response.Version != "1.1.0" {
		t.Fatalf("got %+v; want the fallback 1.1.0", d.Response)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = DecideWith(snap, &req, "", mem) }); allocs != 0 {
		t.Errorf("DecideWith allocates %.0f times per call; want 0", allocs)
	}
}
