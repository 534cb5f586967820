package store

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// Rollout actions that only otad's ramp schedule takes, through
// SetRollout: the API refuses them.
const (
	// RolloutStep moves a ramp to its next step; Percent must be that
	// step's.
	RolloutStep = "ramp_step"
	// RolloutHold records that a ramp holds, for Reason (an
	// ota.EventRampHold event, once per reason).
	RolloutHold = "ramp_hold"
)

// ChangeRollout applies a SetRollout request to a channel's staged
// rollout and says what to record: the rollout after it, the event type
// and note of the history event, and whether anything changed. Both
// stores call it inside their transaction, so the rules are one.
func ChangeRollout(r ota.Rollout, req ota.RolloutRequest, actor string, now time.Time) (after ota.Rollout, event, note string, changed bool, err error) {
	before := r
	if r.Ramp != nil {
		rp := *r.Ramp
		rp.Steps = slices.Clone(rp.Steps)
		r.Ramp = &rp
	}
	event = ota.EventRollout
	var rampNote string
	switch req.Action {
	case ota.RolloutSet:
		if req.Percent < 0 || req.Percent > 100 {
			return before, "", "", false, fmt.Errorf("rollout percent %d is not between 0 and 100: %w", req.Percent, ErrInvalid)
		}
		// Lowering the percent would take the bundle from devices
		// that may already run it; only a paused rollout may shrink.
		if req.Percent < r.Percent && !r.Paused {
			return before, "", "", false, fmt.Errorf("rollout of %s is at %d%%; it only grows (pause it first to lower it): %w",
				r.Target, r.Percent, ErrInvalid)
		}
		r.Percent = req.Percent
		if r.Ramp != nil {
			r.Ramp, rampNote = nil, "ramp cancelled"
		}
	case ota.RolloutPause:
		r.Paused = true
	case ota.RolloutResume:
		// A resumed ramp's step lasts its whole interval again.
		if r.Ramp != nil && (r.Paused || r.Halted) {
			r.Ramp.StepAt, r.Ramp.Held, r.Ramp.HeldAt = now, "", time.Time{}
		}
		r.Paused, r.Halted, r.Reason = false, false, ""
	case ota.RolloutComplete:
		r.Percent, r.Paused, r.Halted, r.Reason = 100, false, false, ""
		if r.Ramp != nil && !r.Ramp.Done() {
			r.Ramp, rampNote = nil, "ramp cancelled"
		}
	case ota.RolloutRamp:
		if req.Ramp == nil {
			return before, "", "", false, fmt.Errorf("rollout action ramp needs its steps: %w", ErrInvalid)
		}
		if err := req.Ramp.Check(); err != nil {
			return before, "", "", false, fmt.Errorf("%v: %w", err, ErrInvalid)
		}
		if r.Halted {
			return before, "", "", false, fmt.Errorf("rollout of %s is halted; resume it before scheduling a ramp: %w", r.Target, ErrInvalid)
		}
		steps := slices.Clone(req.Ramp.Steps)
		// The rollout stays where it is (it never shrinks) at the
		// largest step not above it, or grows to the first step.
		step := 0
		for i, p := range steps {
			if p <= r.Percent {
				step = i
			}
		}
		if r.Percent < steps[0] {
			r.Percent = steps[0]
		}
		r.Ramp = &ota.Ramp{Steps: steps, EverySeconds: req.Ramp.EverySeconds, MinDevices: req.Ramp.MinDevices,
			Step: step, StepAt: now, ApprovedBy: actor}
		rampNote = fmt.Sprintf("ramp %s every %s", joinPercents(steps), r.Ramp.Every())
		if r.Ramp.MinDevices > 0 {
			rampNote += fmt.Sprintf(", at least %d devices a step", r.Ramp.MinDevices)
		}
	case RolloutStep:
		rp := r.Ramp
		switch {
		case rp == nil || rp.Done():
			return before, "", "", false, fmt.Errorf("rollout of %s has no ramp step to take: %w", r.Target, ErrInvalid)
		case r.Paused || r.Halted:
			return before, "", "", false, fmt.Errorf("rollout of %s is paused or halted: %w", r.Target, ErrInvalid)
		case req.Percent != rp.Steps[rp.Step+1]:
			return before, "", "", false, fmt.Errorf("the ramp's next step is %d%%, not %d%%: %w", rp.Steps[rp.Step+1], req.Percent, ErrInvalid)
		}
		rp.Step++
		rp.StepAt, rp.Held, rp.HeldAt = now, "", time.Time{}
		r.Percent = req.Percent
		rampNote = fmt.Sprintf("ramp step %d of %d", rp.Step+1, len(rp.Steps))
		if rp.ApprovedBy != "" {
			rampNote += ", approved by " + rp.ApprovedBy
		}
	case RolloutHold:
		rp := r.Ramp
		if rp == nil || rp.Done() || req.Reason == "" {
			return before, "", "", false, fmt.Errorf("rollout of %s has no ramp step to hold: %w", r.Target, ErrInvalid)
		}
		if rp.Held == req.Reason {
			return before, "", "", false, nil
		}
		rp.Held, rp.HeldAt = req.Reason, now
		event = ota.EventRampHold
		return r, event, fmt.Sprintf("ramp holds at %d%%: %s", r.Percent, req.Reason), true, nil
	default:
		return before, "", "", false, fmt.Errorf("rollout action %q is not one of set, pause, resume, complete, ramp: %w", req.Action, ErrInvalid)
	}
	if SameRollout(r, before) {
		return before, "", "", false, nil
	}
	r.UpdatedAt = now
	note = fmt.Sprintf("%d%% → %d%%", before.Percent, r.Percent)
	switch {
	case r.Paused && !before.Paused:
		note += ", paused"
	case !r.Paused && before.Paused:
		note += ", resumed"
	}
	if before.Halted && !r.Halted {
		note += ", halt lifted"
	}
	if rampNote != "" {
		note += ", " + rampNote
	}
	return r, event, note, true, nil
}

// SameRollout reports whether two rollouts are the same.
func SameRollout(a, b ota.Rollout) bool {
	ra, rb := a.Ramp, b.Ramp
	a.Ramp, b.Ramp = nil, nil
	if a != b || (ra == nil) != (rb == nil) {
		return false
	}
	if ra == nil {
		return true
	}
	return slices.Equal(ra.Steps, rb.Steps) && ra.EverySeconds == rb.EverySeconds && ra.MinDevices == rb.MinDevices &&
		ra.Step == rb.Step && ra.StepAt.Equal(rb.StepAt) && ra.Held == rb.Held && ra.HeldAt.Equal(rb.HeldAt) &&
		ra.ApprovedBy == rb.ApprovedBy
}

func joinPercents(ps []int) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// CheckStalledPatch checks a policy patch's stalled-install fields, which
// both stores refuse alike.
func CheckStalledPatch(p ota.ChannelPolicyPatch) error {
	if v := p.StalledWindowSeconds; v != nil && (*v < 60 || *v > 7*24*3600) {
		return fmt.Errorf("stalled_window_seconds %d is not between 60 (a minute) and 604800 (a week): %w", *v, ErrInvalid)
	}
	if v := p.StalledPolls; v != nil && (*v < 1 || *v > 1000) {
		return fmt.Errorf("stalled_polls %d is not between 1 and 1000: %w", *v, ErrInvalid)
	}
	return nil
}
