package dashboard

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/pkg/ota"
)

// TestSlotsRender: the places kept for what otad does not record yet
// (protected channels, ramps, adoption, a device's story) render, escaped,
// when given data; otad gives them none yet, so they stay hidden.
func TestSlotsRender(t *testing.T) {
	e := newEnv(t)
	d := dashboardOf(t, e)
	now := testEpoch
	starts := []time.Time{now, now.Add(24 * time.Hour), now.Add(48 * time.Hour)}
	adoption := NewStackedChart("adoption-chart", "Devices per version", starts, 24*time.Hour, []Series{
		{Name: "1.0.0", Class: "s0", Values: []float64{1, 0.6, 0.2}},
		{Name: "<b>1.1.0</b>", Class: "s1", Values: []float64{0, 0.4, 0.8}},
	})
	yes := true
	ch := ota.Channel{AppID: testApp, Name: "stable", Kind: ota.KindWeb, Active: "1.1.0", Policy: ota.DefaultChannelPolicy(),
		Rollout: &ota.Rollout{Target: "1.1.0", Previous: "1.0.0", Percent: 25, StartedAt: now, UpdatedAt: now}}
	p := channelPage{Channel: ch, Rollout: ch.Rollout, Protected: &yes, Adoption: adoption, Now: now,
		Ramp: &rampView{Steps: []rampStep{{5, now, "done"}, {25, now.Add(2 * time.Hour), "next"}}, Note: "<i>holds</i>"}}
	var buf bytes.Buffer
	if err := d.pages.tmpl["channel"].ExecuteTemplate(&buf, "layout.html", page{Data: p}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{`<span class="badge warn">protected</span>`, `<dt>Protected</dt><dd>yes</dd>`, `id="adoption-h"`,
		`class="band s1"`, `&lt;b&gt;1.1.0&lt;/b&gt;`, `<strong>25 %</strong>`, `&lt;i&gt;holds&lt;/i&gt;`} {
		if !strings.Contains(out, want) {
			t.Errorf("the channel page lacks %q", want)
		}
	}
	if strings.Contains(out, "<b>1.1.0") || strings.Contains(out, "<i>holds") {
		t.Error("slot data is not escaped")
	}
	buf.Reset()
	v := deviceView{App: testApp, Story: []storyEntry{{now, "offer", "offered <script>1.1.0</script>"}}}
	if err := d.pages.tmpl["device"].ExecuteTemplate(&buf, "layout.html", page{Data: v}); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "Recent checks, offers and reports") || strings.Contains(out, "<script>1.1.0") {
		t.Errorf("the device story:\n%s", out)
	}
}
