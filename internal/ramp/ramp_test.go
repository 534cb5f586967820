package ramp

import (
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// TestNext is the ramp's decision table, with an injected clock.
func TestNext(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 8, 0, 0, 0, time.UTC)
	every := 2 * time.Hour
	rollout := func(step int, mut func(*ota.Rollout)) *ota.Rollout {
		r := &ota.Rollout{Target: "1.3.0", Previous: "1.2.0", Percent: []int{5, 25, 50, 100}[step],
			Ramp: &ota.Ramp{Steps: []int{5, 25, 50, 100}, EverySeconds: int64(every / time.Second), MinDevices: 20, Step: step, StepAt: t0}}
		if mut != nil {
			mut(r)
		}
		return r
	}
	pol := ota.DefaultChannelPolicy() // halt at 0.2
	ignore := pol
	ignore.IgnoreStalled = true
	healthy := Health{Devices: 40}
	tests := []struct {
		name   string
		r      *ota.Rollout
		active string
		p      ota.ChannelPolicy
		h      Health
		at     time.Duration
		want   Decision
	}{
		{"no rollout", nil, "1.3.0", pol, healthy, every, Decision{Action: Idle}},
		{"no ramp", rollout(0, func(r *ota.Rollout) { r.Ramp = nil }), "1.3.0", pol, healthy, every, Decision{Action: Idle}},
		{"before the interval", rollout(0, nil), "1.3.0", pol, healthy, every - time.Second, Decision{Action: Wait, At: t0.Add(every)}},
		{"healthy at the interval", rollout(0, nil), "1.3.0", pol, healthy, every, Decision{Action: Step, Percent: 25}},
		{"healthy later", rollout(1, nil), "1.3.0", pol, healthy, 3 * every, Decision{Action: Step, Percent: 50}},
		{"last step to 100", rollout(2, nil), "1.3.0", pol, healthy, every, Decision{Action: Step, Percent: 100}},
		{"done", rollout(3, nil), "1.3.0", pol, healthy, every, Decision{Action: Idle}},
		{"too few devices", rollout(0, nil), "1.3.0", pol, Health{Devices: 19}, every,
			Decision{Action: Hold, Reason: "19 of the 20 devices a step needs reported 1.3.0"}},
		{"failures", rollout(0, nil), "1.3.0", pol, Health{Devices: 40, Failed: 8}, every,
			Decision{Action: Hold, Reason: "failure rate 0.20 (8 of 40 devices) ≥ 0.20"}},
		{"failures under the threshold", rollout(0, nil), "1.3.0", pol, Health{Devices: 40, Failed: 7}, every, Decision{Action: Step, Percent: 25}},
		{"stalled installs", rollout(0, nil), "1.3.0", pol, Health{Devices: 40, Failed: 2, Stalled: 6}, every,
			Decision{Action: Hold, Reason: "failure and stalled rate 0.20 (2 failed, 6 stalled of 40 devices) ≥ 0.20"}},
		{"stalled installs ignored", rollout(0, nil), "1.3.0", ignore, Health{Devices: 40, Stalled: 30}, every, Decision{Action: Step, Percent: 25}},
		{"paused", rollout(0, func(r *ota.Rollout) { r.Paused = true }), "1.3.0", pol, healthy, every, Decision{Action: Idle}},
		{"halted", rollout(0, func(r *ota.Rollout) { r.Halted = true }), "1.2.0", pol, healthy, every, Decision{Action: Idle}},
		{"another version active", rollout(0, nil), "1.4.0", pol, healthy, every, Decision{Action: Idle}},
		{"no minimum, nobody reported", rollout(0, func(r *ota.Rollout) { r.Ramp.MinDevices = 0 }), "1.3.0", pol, Health{}, every,
			Decision{Action: Step, Percent: 25}},
		{"held, still too few", rollout(0, func(r *ota.Rollout) { r.Ramp.Held = "x" }), "1.3.0", pol, Health{Devices: 3}, 5 * every,
			Decision{Action: Hold, Reason: "3 of the 20 devices a step needs reported 1.3.0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Next(tt.r, tt.active, &tt.p, tt.h, t0.Add(tt.at))
			if got != tt.want {
				t.Errorf("Next = %+v (%s); want %+v", got, got.Action, tt.want)
			}
		})
	}
}
