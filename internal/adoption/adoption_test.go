package adoption

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func names(id uint32) (string, string, string, bool) {
	switch id {
	case 1:
		return "app", "production", "1.0.0", true
	case 2:
		return "app", "production", "1.1.0", true
	}
	return "", "", "", false
}

func TestSketchEstimate(t *testing.T) {
	for _, n := range []int{0, 1, 10, 1000, 100_000, 2_000_000} {
		var s sketch
		r := rand.New(rand.NewPCG(1, uint64(n)))
		for range n {
			k := r.Uint64()
			s.add(k)
			s.add(k) // again: nothing changes
		}
		got := s.estimate()
		if d := float64(got-n) / float64(max(n, 1)); d > 0.05 || d < -0.05 {
			t.Errorf("%d distinct keys estimated as %d", n, got)
		}
	}
}

func TestDaysRollPruneLoad(t *testing.T) {
	tr := New(Config{Names: names, Today: t0, Days: 2})
	d0 := dayOf(t0)
	tr.Seen(d0, 0, 1, 11)
	tr.Seen(d0, 0, 1, 12)
	tr.Seen(d0, 1, 2, 12) // moved to 1.1.0 the same day
	tr.Seen(d0-1, 0, 1, 13)
	if got := tr.Days("app", t0); len(got) != 1 || len(got[0].Counts) != 2 || got[0].Counts[0].Devices != 1 || got[0].Counts[1].Devices != 1 {
		t.Fatalf("today = %+v", got)
	}
	tr.Roll(t0.Add(24 * time.Hour))
	tr.Seen(d0+1, 0, 2, 11)
	dirty := tr.TakeDirty()
	if len(dirty) != 2 || !dirty[0].Day.Equal(dayTime(d0)) {
		t.Fatalf("TakeDirty = %+v", dirty)
	}
	tr.Requeue(dirty)
	if again := tr.TakeDirty(); len(again) != 2 {
		t.Errorf("after Requeue: %+v", again)
	}
	tr.Roll(t0.Add(3 * 24 * time.Hour))
	if got := tr.Days("app", time.Time{}); len(got) != 1 || !got[0].Day.Equal(dayTime(d0+1)) {
		t.Errorf("after pruning to 2 days: %+v", got)
	}
	// Loaded days before today are kept; today's are left to the memory.
	tr2 := New(Config{Names: names, Today: t0})
	tr2.Load([]store.AdoptionDay{{AppID: "app", Day: dayTime(d0 - 1), Counts: []store.AdoptionCount{{Version: "1.0.0", Devices: 3}}},
		{AppID: "app", Day: dayTime(d0), Counts: []store.AdoptionCount{{Version: "1.0.0", Devices: 9}}}})
	if got := tr2.Days("app", time.Time{}); len(got) != 1 || got[0].Counts[0].Devices != 3 {
		t.Errorf("loaded = %+v", got)
	}
	if tr2.KeepFrom(t0) != dayTime(d0-DefaultDays) {
		t.Errorf("KeepFrom = %v", tr2.KeepFrom(t0))
	}
}
