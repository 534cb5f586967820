package cli

import (
	"encoding/json"
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
	if r := e.run("", "explain", "--channel", "stable"); r.code != ExitUsage || !strings.Contains(r.err, "--native") {
		t.Errorf("explain without --native: exit %d stderr %q", r.code, r.err)
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
