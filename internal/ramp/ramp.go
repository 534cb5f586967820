// Package ramp decides the steps of a health-gated rollout ramp: when a
// staged rollout scheduled with steps (ota.Ramp) moves to its next
// percent, and why it holds. The decision is a pure function of the
// rollout, the channel's policy, the target version's health and the
// time, so it is tested with an injected clock; otad's runner
// (internal/server) applies it once a tick, on one replica.
package ramp

import (
	"fmt"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// Health is what otad knows of the ramp's target version: distinct
// devices that reported it (installed, failed or stalled), those that
// reported a failure, and stalled installs without one.
type Health struct {
	Devices, Failed, Stalled int
}

// Action is what a ramp does now.
type Action int

// Actions.
const (
	// Idle: no ramp runs (none, finished, paused, halted, or not of the
	// channel's active version).
	Idle Action = iota
	// Wait: the step has not lasted its interval yet (until At).
	Wait
	// Step: move to Percent.
	Step
	// Hold: the step is due but its health does not allow the next one;
	// Reason says why.
	Hold
)

func (a Action) String() string {
	return [...]string{"idle", "wait", "step", "hold"}[a]
}

// Decision is what Next decided.
type Decision struct {
	Action  Action
	Percent int       // Step: the next percent
	At      time.Time // Wait: when the next step is due
	Reason  string    // Hold: why it holds
}

// Next decides what the ramp of rollout r on a channel serving active
// with policy p does at now, given the target's health h. A step is due
// once the current one lasted Every; it is taken when at least MinDevices
// devices reported the target, its failure rate is under the policy's
// halt threshold, and so is its failure-and-stalled rate unless the
// policy ignores stalled installs. Halting is not decided here: otad's
// halt policy runs first and halts the rollout, which makes Next Idle.
func Next(r *ota.Rollout, active string, p *ota.ChannelPolicy, h Health, now time.Time) Decision {
	if r == nil || r.Ramp == nil || r.Target != active || r.Paused || r.Halted || r.Ramp.Done() ||
		r.Ramp.Step < 0 || r.Ramp.Step >= len(r.Ramp.Steps) {
		return Decision{Action: Idle}
	}
	rp := r.Ramp
	if due := rp.NextAt(); now.Before(due) {
		return Decision{Action: Wait, At: due}
	}
	if h.Devices < rp.MinDevices {
		return Decision{Action: Hold, Reason: fmt.Sprintf("%d of the %d devices a step needs reported %s", h.Devices, rp.MinDevices, r.Target)}
	}
	if h.Devices > 0 {
		thr := p.HaltOnFailureRate
		if rate := float64(h.Failed) / float64(h.Devices); rate >= thr {
			return Decision{Action: Hold, Reason: fmt.Sprintf("failure rate %.2f (%d of %d devices) ≥ %.2f", rate, h.Failed, h.Devices, thr)}
		}
		if !p.IgnoreStalled && h.Stalled > 0 {
			if rate := float64(h.Failed+h.Stalled) / float64(h.Devices); rate >= thr {
				return Decision{Action: Hold, Reason: fmt.Sprintf("failure and stalled rate %.2f (%d failed, %d stalled of %d devices) ≥ %.2f",
					rate, h.Failed, h.Stalled, h.Devices, thr)}
			}
		}
	}
	return Decision{Action: Step, Percent: rp.Steps[rp.Step+1]}
}
