package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// RunStatsLimits checks that a store bounds each app's device stats by
// count and by bytes, newest kept, whatever the events hold: open makes a
// new, empty store with the given limits.
func RunStatsLimits(t *testing.T, open func(t *testing.T, lim store.StatsLimits) store.Store) {
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	event := func(app string, i int, meta int) store.StoredStat {
		ev := ota.StatsEvent{DeviceInfo: ota.DeviceInfo{AppID: app, DeviceID: fmt.Sprintf("dev-%d", i), VersionName: "1.0.0"},
			Action: "set", Timestamp: int64(i)}
		if meta > 0 {
			ev.Metadata = map[string]string{"stack": strings.Repeat("x", meta)}
		}
		return store.StoredStat{Received: start.Add(time.Duration(i) * time.Millisecond), Event: ev}
	}
	appendN := func(t *testing.T, s store.Store, app string, from, n, meta int) {
		t.Helper()
		batch := make([]store.StoredStat, 0, 100)
		for i := from; i < from+n; i++ {
			batch = append(batch, event(app, i, meta))
			if len(batch) == cap(batch) || i == from+n-1 {
				if err := s.AppendStats(t.Context(), batch); err != nil {
					t.Fatalf("append stats: %v", err)
				}
				batch = batch[:0]
			}
		}
	}
	kept := func(t *testing.T, s store.Store, app string) []store.StoredStat {
		t.Helper()
		got, err := s.Stats(t.Context(), app, time.Time{}, 10000)
		if err != nil {
			t.Fatalf("stats: %v", err)
		}
		return got
	}
	newest := func(t *testing.T, got []store.StoredStat, last int) {
		t.Helper()
		if len(got) == 0 || got[len(got)-1].Event.Timestamp != int64(last) {
			t.Fatalf("newest kept event is not %d: %d kept", last, len(got))
		}
		for i := 1; i < len(got); i++ {
			if got[i].Event.Timestamp != got[i-1].Event.Timestamp+1 {
				t.Fatalf("kept events are not the newest in a row: %d after %d", got[i].Event.Timestamp, got[i-1].Event.Timestamp)
			}
		}
	}
	t.Run("events per app", func(t *testing.T) {
		s := open(t, store.StatsLimits{MaxEventsPerApp: 50})
		f := &fixture{t: t, s: s, now: &start}
		f.web("demo", "stable", "1.0.0")
		f.web("other", "stable", "1.0.0")
		appendN(t, s, "demo", 0, 180, 0)
		appendN(t, s, "other", 0, 10, 0)
		got := kept(t, s, "demo")
		if len(got) != 50 {
			t.Errorf("%d events kept, want 50", len(got))
		}
		newest(t, got, 179)
		if n := len(kept(t, s, "other")); n != 10 {
			t.Errorf("the other app keeps %d events, want its 10", n)
		}
	})
	t.Run("bytes per app", func(t *testing.T) {
		const limit = 64 << 10
		s := open(t, store.StatsLimits{MaxBytesPerApp: limit})
		f := &fixture{t: t, s: s, now: &start}
		f.web("demo", "stable", "1.0.0")
		appendN(t, s, "demo", 0, 300, 1000) // about 300 KB of events
		got := kept(t, s, "demo")
		// Each event is more than 1000 bytes: at most limit/1000 fit.
		if len(got) == 0 || len(got) > limit/1000 {
			t.Errorf("%d events of more than 1000 bytes kept within %d bytes", len(got), limit)
		}
		newest(t, got, 299)
		// Small events after big ones: the bound is bytes, so more fit.
		appendN(t, s, "demo", 300, 400, 0)
		if got := kept(t, s, "demo"); len(got) <= limit/1000 {
			t.Errorf("only %d small events kept; the byte bound should keep more than %d", len(got), limit/1000)
		} else {
			newest(t, got, 699)
		}
	})
}

// testOffers: offer records are kept by device key, replaced, removed by
// a record without a version, and dropped for apps the store does not
// know.
func testOffers(t *testing.T, f *fixture) {
	ctx := t.Context()
	f.web("demo", "stable", "1.0.0")
	at := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	rec := func(key uint64, version string, count int) store.DeviceOffer {
		return store.DeviceOffer{Device: key, AppID: "demo", Channel: "stable", Version: version, Previous: "0.9.0",
			PreviousChannel: "stable", First: at, Last: at.Add(time.Duration(count) * time.Minute), Count: count}
	}
	load := func() map[uint64]store.DeviceOffer {
		t.Helper()
		got := map[uint64]store.DeviceOffer{}
		if err := f.s.LoadOffers(ctx, func(o store.DeviceOffer) error { got[o.Device] = o; return nil }); err != nil {
			t.Fatalf("load offers: %v", err)
		}
		return got
	}
	if got := load(); len(got) != 0 {
		t.Fatalf("offers of a new store: %+v", got)
	}
	unknown := rec(3, "1.0.0", 1)
	unknown.AppID = "no.such.app"
	big := rec(1<<63+5, "1.0.0", 70000) // keys use all 64 bits
	if err := f.s.SaveOffers(ctx, []store.DeviceOffer{rec(1, "1.0.0", 1), rec(2, "1.0.0", 2), unknown, big}); err != nil {
		t.Fatalf("save offers: %v", err)
	}
	got := load()
	if len(got) != 3 || got[3].Version != "" {
		t.Fatalf("offers = %+v; want devices 1, 2 and the big key, not the unknown app's", got)
	}
	for _, want := range []store.DeviceOffer{rec(1, "1.0.0", 1), rec(2, "1.0.0", 2), big} {
		if g := got[want.Device]; g.AppID != want.AppID || g.Channel != want.Channel || g.Version != want.Version ||
			g.Previous != want.Previous || g.PreviousChannel != want.PreviousChannel || !g.First.Equal(want.First) ||
			!g.Last.Equal(want.Last) || g.Count != want.Count {
			t.Errorf("offer %d = %+v; want %+v", want.Device, g, want)
		}
	}
	// Replaced, removed, and a removal of a key never stored.
	if err := f.s.SaveOffers(ctx, []store.DeviceOffer{rec(1, "1.1.0", 1), {Device: 2}, {Device: 99}}); err != nil {
		t.Fatalf("save offers: %v", err)
	}
	got = load()
	if len(got) != 2 || got[1].Version != "1.1.0" || got[2].Device != 0 {
		t.Errorf("offers after replace and remove = %+v", got)
	}
	// fn's error stops the walk and comes back.
	stop := errors.New("stop")
	if err := f.s.LoadOffers(ctx, func(store.DeviceOffer) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("LoadOffers with a failing fn = %v; want its error", err)
	}
}
