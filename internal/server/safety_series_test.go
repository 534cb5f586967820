package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// TestHealthSeries: ?step= cuts the window into steps, each counting the
// devices that reported in it, with the window's start rounded down.
func TestHealthSeries(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "stable", "1.0.0", nil)
	stats := func(device, action string) {
		t.Helper()
		d := &simDevice{id: device, running: "1.0.0"}
		env.offered(testApp, "stable", "1.0.0", device) // reports count for versions the device was offered
		ev := ota.StatsEvent{DeviceInfo: d.info(), Action: action}
		wantStatus(t, env.do(http.MethodPost, "/stats", []ota.StatsEvent{ev}, "Authorization", ""), http.StatusOK, "")
	}
	stats("dev-a", "set")
	stats("dev-b", "set")
	env.clock.Advance(2 * time.Hour)
	stats("dev-c", "update_fail")
	env.token = env.issue(testUser) // the first one expired meanwhile

	rec := env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health?channel=stable&window=3h&step=1h", nil)
	wantStatus(t, rec, http.StatusOK, "")
	sum := decode[ota.StatsSummary](t, rec)
	now := env.clock.Now()
	if want := now.Add(-3 * time.Hour).Truncate(time.Hour); !sum.Since.Equal(want) {
		t.Errorf("since = %v, want %v (rounded down to the step)", sum.Since, want)
	}
	if len(sum.Series) != 4 {
		t.Fatalf("got %d steps, want 4: %+v", len(sum.Series), sum.Series)
	}
	got := map[int][2]int{}
	for i, st := range sum.Series {
		if want := sum.Since.Add(time.Duration(i) * time.Hour); !st.Start.Equal(want) {
			t.Errorf("step %d starts at %v, want %v", i, st.Start, want)
		}
		for _, v := range st.Versions {
			if v.Version == "1.0.0" {
				got[i] = [2]int{v.Installed, v.Failed}
			}
		}
	}
	first := int(testEpoch.Sub(sum.Since) / time.Hour)
	if got[first] != [2]int{2, 0} || got[first+2] != [2]int{0, 1} || len(got) != 2 {
		t.Errorf("installed/failed per step = %v, want step %d {2 0} and step %d {0 1}", got, first, first+2)
	}
	if len(sum.Versions) != 1 || sum.Versions[0].Installed != 2 || sum.Versions[0].Failed != 1 {
		t.Errorf("window totals = %+v, want 2 installed and 1 failed", sum.Versions)
	}

	plain := decode[ota.StatsSummary](t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health?window=3h", nil))
	if plain.Series != nil {
		t.Errorf("series without step: %+v", plain.Series)
	}
	for _, q := range []string{"step=30s", "step=soon", "window=400h&step=1h"} {
		wantStatus(t, env.do(http.MethodGet, "/api/v1/apps/"+testApp+"/health?"+q, nil), http.StatusBadRequest, ota.ErrCodeBadRequest)
	}
}

// TestExplainPinned: ?channel= explains for a device pinned to a channel
// it could not choose itself.
func TestExplainPinned(t *testing.T) {
	env := newTestEnv(t)
	env.publish(testApp, "stable", "1.0.0", nil)
	env.publish(testApp, "internal", "2.0.0-rc.1", nil)
	d := &simDevice{id: "probe", running: ota.VersionBuiltin}
	req := d.info()
	req.DefaultChannel = "internal"

	plain := decode[ota.ExplainResponse](t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/explain", req))
	if plain.Response.Version == "2.0.0-rc.1" {
		t.Fatalf("a private channel was reachable by defaultChannel: %+v", plain)
	}
	pinned := decode[ota.ExplainResponse](t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/explain?channel=internal", req))
	if pinned.Response.Version != "2.0.0-rc.1" || pinned.Channel != "internal" || pinned.Source != "override" {
		t.Errorf("pinned explain = %+v, want 2.0.0-rc.1 from internal by override", pinned)
	}
	wantStatus(t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/explain?channel=nope", req), http.StatusNotFound, ota.ErrCodeChannelNotFound)
	wantStatus(t, env.do(http.MethodPost, "/api/v1/apps/"+testApp+"/explain?channel=Bad!", req), http.StatusBadRequest, ota.ErrCodeInvalidName)
}
