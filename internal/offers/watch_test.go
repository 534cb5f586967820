package offers_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/otaship/ota/internal/offers"
	"github.com/otaship/ota/internal/store"
	"github.com/otaship/ota/pkg/ota"
)

// step is one thing a device does in the stalled-detection table: an
// update check (running, offered) or a report about a version.
type step struct {
	at      time.Duration // since t0
	running string
	offered string
	report  int // with reportOf: offers.Report* kind
	of      string
	want    offers.Result
}

func check(at time.Duration, running, offered string) step {
	return step{at: at, running: running, offered: offered}
}

func report(at time.Duration, kind int, version string) step {
	return step{at: at, report: kind, of: version}
}

func (s step) then(r offers.Result) step { s.want = r; return s }

var stalled13 = offers.Result{Stalled: "1.3.0"}

// TestStalledDetection: the stalled-install decision, step by step with an
// injected clock (no sleeps): a device offered 1.3.0 that keeps polling on
// 1.2.0 past the window (30 min) and the polls (3 after the first offer),
// without a word about installing it or failing, is stalled once.
func TestStalledDetection(t *testing.T) {
	m := time.Minute
	tests := []struct {
		name         string
		after        time.Duration
		polls        int
		steps        []step
		wantStalled  bool // Lookup at the end
		wantReported bool // the last Report said the device was stalled
	}{
		{"keeps polling on the old version", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(10*m, "1.2.0", "1.3.0"), check(20*m, "1.2.0", "1.3.0"),
			check(30*m, "1.2.0", "1.3.0").then(stalled13), check(40*m, "1.2.0", "1.3.0"),
		}, true, false},
		{"many polls, window not over", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(m, "1.2.0", "1.3.0"), check(2*m, "1.2.0", "1.3.0"),
			check(3*m, "1.2.0", "1.3.0"), check(29*m, "1.2.0", "1.3.0"), check(30*m, "1.2.0", "1.3.0").then(stalled13),
		}, true, false},
		{"window over, too few polls", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(40*m, "1.2.0", "1.3.0"), check(80*m, "1.2.0", "1.3.0"),
			check(120*m, "1.2.0", "1.3.0").then(stalled13),
		}, true, false},
		{"downloaded, then silent", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), report(m, offers.ReportDownloaded, "1.3.0"), check(10*m, "1.2.0", "1.3.0"),
			check(20*m, "1.2.0", "1.3.0"), check(31*m, "1.2.0", "1.3.0").then(stalled13),
		}, true, false},
		{"installed: never stalled", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), report(m, offers.ReportInstalled, "1.3.0"), check(10*m, "1.2.0", "1.3.0"),
			check(20*m, "1.2.0", "1.3.0"), check(31*m, "1.2.0", "1.3.0"), check(60*m, "1.2.0", "1.3.0"),
		}, false, false},
		{"reported failing: not silent", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), report(m, offers.ReportFailed, "1.3.0"), check(10*m, "1.2.0", "1.3.0"),
			check(20*m, "1.2.0", "1.3.0"), check(31*m, "1.2.0", "1.3.0"),
		}, false, false},
		{"runs it: installed without a report", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(10*m, "1.3.0", ""), check(20*m, "1.2.0", "1.3.0"),
			check(30*m, "1.2.0", "1.3.0"), check(40*m, "1.2.0", "1.3.0"),
		}, false, false},
		{"stalled, then runs it", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(10*m, "1.2.0", "1.3.0"), check(20*m, "1.2.0", "1.3.0"),
			check(30*m, "1.2.0", "1.3.0").then(stalled13), check(50*m, "1.3.0", "").then(offers.Result{Ran: "1.3.0"}),
		}, false, false},
		{"stalled, then reports the install", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(10*m, "1.2.0", "1.3.0"), check(20*m, "1.2.0", "1.3.0"),
			check(30*m, "1.2.0", "1.3.0").then(stalled13), report(35*m, offers.ReportInstalled, "1.3.0"),
		}, false, true},
		{"a report of another version changes nothing", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), report(m, offers.ReportInstalled, "1.2.0"), check(10*m, "1.2.0", "1.3.0"),
			check(20*m, "1.2.0", "1.3.0"), check(30*m, "1.2.0", "1.3.0").then(stalled13),
		}, true, false},
		{"a new offer starts again", 30 * m, 3, []step{
			check(0, "1.2.0", "1.3.0"), check(10*m, "1.2.0", "1.3.0"), check(20*m, "1.2.0", "1.3.0"),
			check(25*m, "1.2.0", "1.4.0"), check(50*m, "1.2.0", "1.4.0"), check(55*m, "1.2.0", "1.4.0"),
		}, false, false},
		{"the channel's own window and polls", 2 * time.Hour, 1, []step{
			check(0, "1.2.0", "1.3.0"), check(time.Hour, "1.2.0", "1.3.0"),
			check(2*time.Hour, "1.2.0", "1.3.0").then(stalled13),
		}, true, false},
		{"no stalled policy", 0, 0, []step{
			check(0, "1.2.0", "1.3.0"), check(10*m, "1.2.0", "1.3.0"), check(20*m, "1.2.0", "1.3.0"),
			check(30*m, "1.2.0", "1.3.0"), check(99*m, "1.2.0", "1.3.0"),
		}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := offers.New(offers.Config{Now: t0})
			reported := false
			for i, st := range tt.steps {
				if st.of != "" {
					reported = mem.Report("app", "dev-1", st.of, st.report)
					continue
				}
				got := mem.Check(&offers.Check{App: "app", Device: "dev-1", Channel: "production", Running: st.running,
					Offered: st.offered, Now: t0.Add(st.at), StalledAfter: tt.after, StalledPolls: tt.polls, Prod: true})
				if got != st.want {
					t.Errorf("step %d (%s, running %s, offered %q) = %+v; want %+v", i, st.at, st.running, st.offered, got, st.want)
				}
			}
			o, _ := mem.Lookup("app", "dev-1")
			if o.Stalled != tt.wantStalled || reported != tt.wantReported {
				t.Errorf("at the end: stalled %v, last report said stalled %v; want %v, %v (%+v)", o.Stalled, reported, tt.wantStalled, tt.wantReported, o)
			}
		})
	}
}

// The latest check's request comes back in Lookup, and through the
// store's record (TakeDirty, Put) after a restart.
func TestCheckRemembersRequest(t *testing.T) {
	m := offers.New(offers.Config{Now: t0})
	m.Check(&offers.Check{App: "app", Device: "dev-1", Channel: "beta", Source: "device", Running: ota.VersionBuiltin,
		Offered: "1.3.0", Build: "1.0.0", Plugin: "7.1.0", Platform: "ios", Prod: false, Emulator: true, Now: t0})
	m.Report("app", "dev-1", "1.3.0", offers.ReportDownloaded)
	want := offers.Offer{Channel: "beta", Version: "1.3.0", First: t0, Last: t0, Count: 1, Seen: t0, Running: ota.VersionBuiltin,
		RunningChannel: "beta", Downloaded: true, Build: "1.0.0", Plugin: "7.1.0", Platform: "ios", Source: "device", Emulator: true}
	if o, ok := m.Lookup("app", "dev-1"); !ok || o != want {
		t.Errorf("Lookup = %+v\nwant     %+v", o, want)
	}
	again := offers.New(offers.Config{Now: t0})
	for _, r := range m.TakeDirty(nil, t0) {
		again.Put(r)
	}
	if o, ok := again.Lookup("app", "dev-1"); !ok || o != want {
		t.Errorf("after a reload: %+v\nwant           %+v", o, want)
	}
	// A device only checked (up to date) is remembered and saved too.
	m.Check(&offers.Check{App: "app", Device: "dev-2", Channel: "beta", Running: "1.3.0", Now: t0, Prod: true})
	recs := m.TakeDirty(nil, t0)
	if len(recs) != 1 || recs[0].Version != "" || recs[0].Running != "1.3.0" {
		t.Errorf("a checked device's record: %+v", recs)
	}
	if o, ok := m.Lookup("app", "dev-2"); !ok || o.Running != "1.3.0" || o.Version != "" {
		t.Errorf("Lookup of a checked device: %+v, %v", o, ok)
	}
}

func TestCheckDoesNotAllocate(t *testing.T) {
	m := offers.New(offers.Config{Now: t0})
	c := &offers.Check{App: "app", Device: "dev-1", Channel: "production", Running: "1.2.0", Offered: "1.3.0",
		Build: "1.0.0", Plugin: "7.1.0", Platform: "android", Prod: true, Now: t0, StalledAfter: time.Hour, StalledPolls: 3}
	m.Check(c)
	m.TakeDirty(nil, t0)
	allocs := testing.AllocsPerRun(1000, func() {
		c.Now = c.Now.Add(time.Second)
		m.Check(c)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per check of a known device, want 0", allocs)
	}
}

// Adoption: each device counts once a day, on the version of its latest
// check that day; the next day starts again; past days stay.
func TestAdoptionCounts(t *testing.T) {
	m := offers.New(offers.Config{Now: t0})
	chk := func(dev, running string, at time.Time) {
		m.Check(&offers.Check{App: "app", Device: dev, Channel: "production", Running: running, Now: at, Prod: true})
	}
	for i := range 10 {
		chk(fmt.Sprint("dev-", i), ota.VersionBuiltin, t0)
	}
	for i := range 4 { // four update during the day
		chk(fmt.Sprint("dev-", i), "1.3.0", t0.Add(time.Hour))
		chk(fmt.Sprint("dev-", i), "1.3.0", t0.Add(2*time.Hour)) // again: nothing changes
	}
	today := m.Adoption().Days("app", t0.Add(-48*time.Hour))
	wantDay := []store.AdoptionCount{{Channel: "production", Version: "1.3.0", Devices: 4}, {Channel: "production", Version: ota.VersionBuiltin, Devices: 6}}
	if len(today) != 1 || !equalCounts(today[0].Counts, wantDay) {
		t.Fatalf("today = %+v; want %+v", today, wantDay)
	}
	next := t0.Add(24 * time.Hour)
	chk("dev-0", "1.3.0", next)
	days := m.Adoption().Days("app", t0.Add(-48*time.Hour))
	if len(days) != 2 || !equalCounts(days[0].Counts, wantDay) || len(days[1].Counts) != 1 || days[1].Counts[0].Devices != 1 {
		t.Errorf("two days = %+v", days)
	}
	if saved := m.Adoption().TakeDirty(); len(saved) != 2 {
		t.Errorf("TakeDirty = %+v; want the closed day and today", saved)
	}
}

func equalCounts(a, b []store.AdoptionCount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Past the memory's bound the day's counts are HyperLogLog estimates,
// marked so, within a few percent.
func TestAdoptionEstimatedPastTheBound(t *testing.T) {
	if testing.Short() {
		t.Skip("200,000 devices")
	}
	m := offers.New(offers.Config{Now: t0, MaxBytes: 64 * 64 * (offers.SlotBytes + 2) * 4}) // 16,384 devices
	const n = 200_000
	for i := range n {
		v := "1.2.0"
		if i%4 == 0 {
			v = "1.3.0"
		}
		m.Check(&offers.Check{App: "app", Device: fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i), Channel: "production",
			Running: v, Now: t0.Add(time.Duration(i) * time.Millisecond), Prod: true})
	}
	days := m.Adoption().Days("app", t0)
	if len(days) != 1 || len(days[0].Counts) != 2 {
		t.Fatalf("days = %+v", days)
	}
	for _, c := range days[0].Counts {
		want := n * 3 / 4
		if c.Version == "1.3.0" {
			want = n / 4
		}
		if !c.Estimated || c.Devices < want*95/100 || c.Devices > want*105/100 {
			t.Errorf("%s: %d devices (estimated %v); want about %d, estimated", c.Version, c.Devices, c.Estimated, want)
		}
	}
}

// A million distinct devices checking (each offered a release, most on
// the old version, some stalled) stay within the memory's bound in bytes,
// adoption counts included, and are all remembered at the default bound.
func TestMillionDevicesChecking(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("a million devices: not in -short or -race runs")
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rss0 := rssBytes()
	m := offers.New(offers.Config{Now: t0})
	const n = 1_000_000
	c := &offers.Check{App: "com.example.app", Channel: "production", Offered: "1.3.0", Build: "1.0.0", Plugin: "7.1.0",
		Platform: "android", Prod: true, StalledAfter: 30 * time.Minute, StalledPolls: 3}
	for round := range 2 {
		for i := range n {
			c.Device = fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i)
			c.Running = []string{"1.2.0", "1.2.0", ota.VersionBuiltin}[i%3]
			c.Now = t0.Add(time.Duration(round)*time.Hour + time.Duration(i)*time.Microsecond)
			m.Check(c)
		}
	}
	debug.FreeOSMemory() // what the table growth left behind goes back
	runtime.ReadMemStats(&after)
	heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	bound := int64(offers.DefaultMaxBytes)
	if b := m.Bytes(); b > bound {
		t.Errorf("slots take %d bytes, bound %d", b, bound)
	}
	if a := m.Adoption().Bytes(); a > 8<<20 {
		t.Errorf("adoption counts take %d bytes", a)
	}
	if heap > bound+bound/8+8<<20 {
		t.Errorf("heap grew by %d bytes for a bound of %d", heap, bound)
	}
	if got := m.Len(); got < n-n/10000 {
		t.Errorf("%d of %d devices remembered", got, n)
	}
	days := m.Adoption().Days("com.example.app", t0)
	total := 0
	for _, d := range days {
		for _, c := range d.Counts {
			total += c.Devices
			if c.Estimated {
				t.Errorf("estimated counts with every device in memory: %+v", c)
			}
		}
	}
	// Devices forgotten by chance (a full probe window) and checked
	// again count twice: a few in a million.
	if total < n || total > n+n/10000 {
		t.Errorf("adoption counts %d devices; want %d", total, n)
	}
	t.Logf("%d devices: %d bytes of slots, adoption %d bytes, heap +%d bytes (%.1f bytes a device), RSS +%d bytes",
		m.Len(), m.Bytes(), m.Adoption().Bytes(), heap, float64(heap)/n, rssBytes()-rss0)
}

// rssBytes is the process's resident set (Linux; 0 elsewhere).
func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss int64
	if _, err := fmt.Sscan(string(b), &size, &rss); err != nil {
		return 0
	}
	return rss * int64(os.Getpagesize())
}
