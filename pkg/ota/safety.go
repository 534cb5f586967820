package ota

import (
	"fmt"
	"strings"
	"time"
)

// Rollout is the state of a staged rollout on a channel. While it is in
// effect (Target is the channel's active version, Percent < 100, or it is
// paused or halted), only devices whose cohort falls below Percent are
// offered Target; the others keep Previous.
type Rollout struct {
	Target string `json:"target"`
	// Previous is what devices outside the cohort get: a version,
	// VersionBuiltin, or "" when the channel served nothing before.
	Previous string `json:"previous,omitempty"`
	// Percent of devices (0–100) offered Target.
	Percent int `json:"percent"`
	// Paused stops offering Target to devices that do not run it yet.
	Paused bool `json:"paused,omitempty"`
	// Halted is set when the rollout was stopped for failures; Reason says
	// why.
	Halted    bool      `json:"halted,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	StartedAt time.Time `json:"started_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Ramp, when set, is the schedule otad grows the rollout by.
	Ramp *Ramp `json:"ramp,omitempty"`
}

// Ramp is a health-gated schedule of a staged rollout: otad moves it from
// one step to the next once the step has lasted Every, at least
// MinDevices distinct devices reported the target, and its failure and
// stalled rates stay under the channel's halt threshold; otherwise the
// ramp holds (Held says why) until they do.
type Ramp struct {
	// Steps are the percents, increasing, the last one 100.
	Steps        []int `json:"steps"`
	EverySeconds int64 `json:"every_seconds"`
	// MinDevices is how many distinct devices must report the target
	// before a step (0: none).
	MinDevices int `json:"min_devices,omitempty"`
	// Step is the index in Steps of the step the rollout is at, begun at
	// StepAt.
	Step   int       `json:"step"`
	StepAt time.Time `json:"step_at"`
	// Held, when not empty, is why the ramp does not take its next step,
	// since HeldAt.
	Held   string    `json:"held,omitempty"`
	HeldAt time.Time `json:"held_at,omitzero"`
	// ApprovedBy is who scheduled the ramp: its steps are taken in that
	// person's (or token's) name.
	ApprovedBy string `json:"approved_by,omitempty"`
}

// Every is the time each step lasts at least.
func (r *Ramp) Every() time.Duration { return time.Duration(r.EverySeconds) * time.Second }

// Done reports whether the ramp took its last step.
func (r *Ramp) Done() bool { return r.Step >= len(r.Steps)-1 }

// NextAt is when the next step is due (once its health allows).
func (r *Ramp) NextAt() time.Time { return r.StepAt.Add(r.Every()) }

// Bounds of a ramp.
const (
	MaxRampSteps = 20
	MinRampEvery = time.Minute
)

// RampRequest schedules a rollout's steps: the body's ramp with action
// "ramp".
type RampRequest struct {
	Steps        []int `json:"steps"`
	EverySeconds int64 `json:"every_seconds"`
	MinDevices   int   `json:"min_devices,omitempty"`
}

// Check says what is wrong with a ramp request, if anything.
func (r *RampRequest) Check() error {
	if len(r.Steps) == 0 || len(r.Steps) > MaxRampSteps {
		return fmt.Errorf("a ramp has 1 to %d steps, e.g. 5,25,50,100; got %d", MaxRampSteps, len(r.Steps))
	}
	for i, p := range r.Steps {
		if p < 1 || p > 100 {
			return fmt.Errorf("ramp step %d%% is not between 1 and 100", p)
		}
		if i > 0 && p <= r.Steps[i-1] {
			return fmt.Errorf("ramp steps must grow: %d%% after %d%%", p, r.Steps[i-1])
		}
	}
	if r.Steps[len(r.Steps)-1] != 100 {
		return fmt.Errorf("a ramp ends at 100%%, e.g. 5,25,50,100; it ends at %d%%", r.Steps[len(r.Steps)-1])
	}
	if time.Duration(r.EverySeconds)*time.Second < MinRampEvery {
		return fmt.Errorf("a ramp's steps last at least %s each; got %ds", MinRampEvery, r.EverySeconds)
	}
	if r.MinDevices < 0 {
		return fmt.Errorf("min_devices %d is negative", r.MinDevices)
	}
	return nil
}

// InEffect reports whether the rollout limits who gets active, the
// channel's active version.
func (r *Rollout) InEffect(active string) bool {
	return r != nil && r.Target == active && (r.Percent < 100 || r.Paused || r.Halted)
}

// Rollout actions, in RolloutRequest.Action.
const (
	RolloutSet      = "set" // set Percent (increases only, unless paused)
	RolloutPause    = "pause"
	RolloutResume   = "resume"
	RolloutComplete = "complete" // 100 %
	// RolloutRamp schedules the rollout's steps (Ramp); set and complete
	// cancel the schedule, pause suspends it and resume takes it up again.
	RolloutRamp = "ramp"
)

// RolloutRequest is the body of POST .../channels/{channel}/rollout.
type RolloutRequest struct {
	Action  string       `json:"action"`
	Percent int          `json:"percent,omitempty"`
	Ramp    *RampRequest `json:"ramp,omitempty"`
	// Reason is what otad's own ramp actions record (the store's
	// ramp_hold); the API never takes it.
	Reason string `json:"-"`
}

// ExplainResponse is the answer to POST .../apps/{app}/explain: what the
// device would get, from which channel, and the decision's steps.
type ExplainResponse struct {
	Response UpdateResponse `json:"response"`
	Channel  string         `json:"channel,omitempty"`
	Source   string         `json:"source,omitempty"`
	Steps    []string       `json:"steps"`
}

// VersionStats is the health of one bundle version over a time window:
// distinct devices that installed it (a set or app_launch_ready) and that
// reported failures, by failure kind.
type VersionStats struct {
	Version   string `json:"version"`
	Installed int    `json:"installed"`
	// Failed counts distinct devices that reported any failure.
	Failed      int            `json:"failed"`
	FailureRate float64        `json:"failure_rate"`
	Failures    map[string]int `json:"failures,omitempty"`
	// Stalled counts the devices otad sees stalled on the version now
	// (offered it, kept polling on another version past the channel's
	// stalled window without installing it, and reported no failure):
	// silent failures. It is live, not limited to the window.
	Stalled int `json:"stalled,omitempty"`
	// Files names the files of a delta release that devices failed to
	// fetch or verify (the file part of "<version>:<file>" in per-file
	// failure events), the most reported first, at most MaxFileFailures.
	Files []FileFailure `json:"files,omitempty"`
}

// FileFailure counts the distinct devices that reported one failing file
// of a delta release, by action (download_manifest_file_fail,
// download_manifest_checksum_fail, download_manifest_brotli_fail,
// manifest_path_fail). File is as the plugin sent it: iOS sends the path,
// Android only the file's base name.
type FileFailure struct {
	File     string         `json:"file"`
	Devices  int            `json:"devices"`
	Failures map[string]int `json:"failures"`
}

// MaxFileFailures bounds VersionStats.Files.
const MaxFileFailures = 50

// StatsSummary is the answer to GET .../apps/{app}/health.
type StatsSummary struct {
	AppID    string         `json:"app_id"`
	Channel  string         `json:"channel,omitempty"`
	Since    time.Time      `json:"since"`
	Versions []VersionStats `json:"versions"`
	// Series, asked for with ?step=, holds the same summary for each step
	// of the window, oldest first.
	Series []HealthStep `json:"series,omitempty"`
}

// HealthStep is the health of one step of a summary's window: the
// distinct devices that reported in [Start, Start+step).
type HealthStep struct {
	Start    time.Time      `json:"start"`
	Versions []VersionStats `json:"versions"`
}

// NativeFingerprint is the native side of a Capacitor app: the
// @capacitor/core version and the native plugins compiled in, as
// "name@version", sorted.
type NativeFingerprint struct {
	Capacitor string   `json:"capacitor"`
	Plugins   []string `json:"plugins"`
}

// MissingFrom lists what a web bundle built with fingerprint web needs and
// the APK with fingerprint apk lacks: native plugins absent from the APK
// or there at another version, and another Capacitor major version. Each
// entry is a sentence fragment for an explanation.
func (web NativeFingerprint) MissingFrom(apk NativeFingerprint) []string {
	var out []string
	if major(web.Capacitor) != "" && major(apk.Capacitor) != "" && major(web.Capacitor) != major(apk.Capacitor) {
		out = append(out, fmt.Sprintf("Capacitor %s, but the APK has %s", web.Capacitor, apk.Capacitor))
	}
	shipped := make(map[string]string, len(apk.Plugins))
	for _, p := range apk.Plugins {
		name, version := splitPlugin(p)
		shipped[name] = version
	}
	for _, p := range web.Plugins {
		name, version := splitPlugin(p)
		have, ok := shipped[name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("native plugin %s, which the APK lacks", p))
		case have != version:
			out = append(out, fmt.Sprintf("native plugin %s, but the APK has %s@%s", p, name, have))
		}
	}
	return out
}

// splitPlugin cuts "name@version" at its last @ (scoped names start with one).
func splitPlugin(p string) (name, version string) {
	if i := strings.LastIndex(p, "@"); i > 0 {
		return p[:i], p[i+1:]
	}
	return p, ""
}

func major(v string) string {
	v = strings.TrimPrefix(v, "v")
	m, _, _ := strings.Cut(v, ".")
	return m
}
