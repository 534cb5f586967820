package dashboard

import (
	"crypto/sha256"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/update"
)

func TestNiceMax(t *testing.T) {
	for _, tc := range []struct{ in, top, step float64 }{
		{0, 4, 1}, {1, 4, 1}, {3, 3, 1}, {4, 4, 1}, {5, 6, 2}, {13, 15, 5}, {101, 125, 25}, {1999, 2000, 500},
	} {
		top, step := niceMax(tc.in)
		if top < tc.in || top > tc.in*2+4 || top/step > 4.0001 {
			t.Errorf("niceMax(%v) = %v, %v: the axis must hold the value in at most four steps", tc.in, top, step)
		}
		if step < 1 || math.Trunc(step) != step && step > 1 {
			t.Errorf("niceMax(%v) step %v is not a whole count", tc.in, step)
		}
	}
}

func steps(n int, step time.Duration) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = testEpoch.Truncate(step).Add(time.Duration(i) * step)
	}
	return out
}

func TestTimeChart(t *testing.T) {
	starts := steps(24, time.Hour)
	installs := make([]float64, 24)
	failures := make([]float64, 24)
	installs[10], installs[23], failures[23] = 7, 13, 2
	c := NewTimeChart("c", "Devices reporting 1.1.0", starts, time.Hour,
		[]Series{{Name: "Installs", Class: "s-installs", Values: installs}, {Name: "Failures", Class: "s-failures", Values: failures}})
	if top := c.YTicks[len(c.YTicks)-1]; top.Label != "15" || top.Pos != c.Top {
		t.Errorf("top tick = %+v, want 15 at the top of the plot", top)
	}
	if c.YTicks[0].Label != "0" || c.YTicks[0].Pos != c.Plot {
		t.Errorf("bottom tick = %+v, want 0 at the bottom", c.YTicks[0])
	}
	// Only reported steps get a dot, at their value.
	if n := len(c.Lines[0].Dots); n != 2 {
		t.Fatalf("%d install dots, want 2", n)
	}
	d := c.Lines[0].Dots[1]
	if want := c.Plot - 13.0/15*(c.Plot-c.Top); math.Abs(d.Y-want) > 0.01 || math.Abs(d.Pct-(23.5/24*100)) > 0.01 {
		t.Errorf("dot of step 23 at %v%%, %v; want %v%%, %v", d.Pct, d.Y, 23.5/24*100, want)
	}
	if !strings.Contains(d.Title, "13 installs") || !strings.Contains(d.Title, "04:00–05:00") {
		t.Errorf("dot title %q", d.Title)
	}
	if strings.Count(c.Lines[0].Points, ",") != 24 || c.Lines[0].Area == "" || c.Lines[1].Area != "" {
		t.Errorf("lines: %+v", c.Lines)
	}
	if !strings.Contains(c.Desc, "20 installs, 2 failures") || len(c.Rows) != 24 || c.Rows[23][1] != "13" || c.Rows[23][2] != "2" {
		t.Errorf("desc %q, rows %v", c.Desc, c.Rows[23])
	}
	if len(c.XTicks) > 7 || c.XTicks[0].Anchor != "start" || c.XTicks[0].Pct != 0 || !strings.Contains(c.XTicks[0].Label, ",") {
		t.Errorf("x ticks %+v", c.XTicks)
	}
	days := NewTimeChart("d", "t", steps(30, 24*time.Hour), 24*time.Hour, nil)
	if days.XTicks[1].Label == "" || strings.Contains(days.XTicks[1].Label, ":") {
		t.Errorf("a daily chart labels %q", days.XTicks[1].Label)
	}
	if empty := NewTimeChart("e", "t", nil, time.Hour, []Series{{Name: "Installs"}}); len(empty.Rows) != 0 || empty.Lines[0].Area != "" {
		t.Errorf("an empty chart: %+v", empty)
	}
}

func TestStackedChart(t *testing.T) {
	c := NewStackedChart("a", "Adoption", steps(3, 24*time.Hour), 24*time.Hour, []Series{
		{Name: "1.0.0", Class: "s0", Values: []float64{1, 0.5, 0.1}},
		{Name: "1.1.0", Class: "s1", Values: []float64{0, 0.5, 0.95}}, // sums over 1 are clipped
	})
	if len(c.Bands) != 2 || c.YTicks[len(c.YTicks)-1].Label != "100 %" {
		t.Fatalf("bands %+v ticks %+v", c.Bands, c.YTicks)
	}
	// The second band's top edge is at 100 % in every step.
	top := strings.Fields(strings.NewReplacer("M", "", "L", "", "Z", "").Replace(c.Bands[1].Path))
	for _, p := range top[:3] {
		y, _ := strconv.ParseFloat(p[strings.Index(p, ",")+1:], 64)
		if math.Abs(y-c.Top) > 0.01 {
			t.Errorf("the top band reaches %v, want %v (100 %%)", y, c.Top)
		}
	}
	if c.Rows[2][1] != "10 %" || c.Rows[1][2] != "50 %" || !strings.Contains(c.Desc, "1.0.0, 1.1.0") {
		t.Errorf("rows %v desc %q", c.Rows, c.Desc)
	}
}

func TestRateChart(t *testing.T) {
	stalled := 0.05
	c := NewRateChart("r", []RateInput{
		{Version: "1.1.0", Failed: 3, Devices: 10, Rate: 0.3},
		{Version: "1.0.0", Failed: 0, Devices: 40, Rate: 0, Stalled: &stalled},
	}, 0.2)
	if c.Threshold <= 0 || c.Threshold >= 100 || c.ThresholdPct != "20 %" {
		t.Errorf("threshold at %v%% (%s)", c.Threshold, c.ThresholdPct)
	}
	r := c.Rows[0]
	if !r.Over || r.FailPct <= c.Threshold || r.FailPct > 100 || r.Rate != "30 %" || !strings.Contains(r.Title, "3 of 10") {
		t.Errorf("over-threshold row %+v", r)
	}
	if c.Rows[1].Over || c.Rows[1].Stalled != "5 %" || c.Rows[1].StalledPct <= 0 {
		t.Errorf("stalled row %+v", c.Rows[1])
	}
	if off := NewRateChart("r", []RateInput{{Version: "1", Rate: 0.9}}, 0); off.Threshold != 0 || off.Rows[0].Over || off.Rows[0].FailPct > 100 {
		t.Errorf("without auto-halt: %+v", off)
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.example.test/otad":                "https://hooks.example.test/otad",
		"https://u:pw@h.example/p?token=abc&x=1":         "https://u:•••@h.example/p?token=•••&x=•••",
		"https://h.example/a%20b?k":                      "https://h.example/a%20b?k=•••",
		"http://h.example:8080/hook?secret=abc#fragment": "http://h.example:8080/hook?secret=•••",
		"not a url":               "(not a URL)",
		"https://user@h.example/": "https://user@h.example/",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/apps/a": "/ui/apps/a", "": "/ui/", "/ui": "/ui/", "//evil": "/ui/", "/ui//evil": "/ui/", "/ui/\\evil": "/ui/",
		"https://evil/ui/": "/ui/", "/api/v1/me": "/ui/", "/ui/a\r\nSet-Cookie: x": "/ui/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPredecessor(t *testing.T) {
	for in, want := range map[string]string{"2.3.1": "1.0.0", "1.0.0": "0.0.0", "0.5.2": "0.4.0", "0.0.3": "0.0.2", "1.0.0-rc.1": "0.0.0"} {
		v, _ := update.CoerceNative(in)
		p, ok := predecessor(v)
		if !ok || p.String() != want || p.Compare(v) >= 0 {
			t.Errorf("predecessor(%s) = %s, %v; want %s", in, p, ok, want)
		}
	}
	if _, ok := predecessor(update.Version{}); ok {
		t.Error("0.0.0 has a predecessor")
	}
}

func TestRevocations(t *testing.T) {
	var r revocations
	now := testEpoch
	r.add("a", now.Add(time.Hour), now)
	if !r.has("a", now) || r.has("b", now) {
		t.Fatal("revoked a, not b")
	}
	if r.has("a", now.Add(2*time.Hour)) {
		t.Error("a revocation outlived its token")
	}
	for i := 0; i < maxRevoked+10; i++ {
		r.add(strconv.Itoa(i), now.Add(3*time.Hour+time.Duration(i)*time.Second), now.Add(2*time.Hour))
	}
	if len(r.m) > maxRevoked {
		t.Errorf("%d revocations kept, the bound is %d", len(r.m), maxRevoked)
	}
	if !r.has(strconv.Itoa(maxRevoked+9), now.Add(2*time.Hour)) {
		t.Error("the newest revocation was dropped")
	}
	if _, ok := r.m[sha256.Sum256([]byte("a"))]; ok {
		t.Error("an expired revocation was kept when the map was full")
	}
}
