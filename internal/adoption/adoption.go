// Package adoption counts, per app, channel and UTC day, the distinct
// devices last seen on each bundle version (the built-in bundle and
// versions otad does not know included), for the 90 days before today.
//
// The offer memory (internal/offers) tells the tracker when a device is
// seen for the first time in a day, or on another version (or channel)
// than at its previous check that day; repeated checks on the same
// version cost the tracker nothing. Counting is exact while the offer
// memory holds every device seen that day: each device is counted once,
// on the version of its latest check of the day. When the memory had to
// forget a device seen that day (more devices than it holds), the app's
// counts of that day are HyperLogLog estimates instead (about 1.6 % off),
// of the devices seen on each version at any time of the day, so a device
// that updated that day counts on both versions and shares may add up to
// a little more than 100 %. Such counts are marked Estimated.
//
// Memory is bounded: a counter per series (app, channel, version) seen
// today, at most MaxSketches sketches of 4 KiB, and per app and past day
// at most maxCountsPerDay counts.
package adoption

import (
	"cmp"
	"slices"
	"sync"
	"time"

	"github.com/otaship/ota/internal/store"
)

// Names gives a series id's app, channel and version.
type Names func(id uint32) (app, channel, version string, ok bool)

// Defaults of Config.
const (
	DefaultDays        = 90
	DefaultMaxSketches = 1024 // 4 MiB
	// maxCountsPerDay bounds the counts kept per app and past day; the
	// versions with the fewest devices go first.
	maxCountsPerDay = 512
	// Counts stay exact while the devices seen today that the offer
	// memory forgot are at most minSlack, or 1/exactSlack of the app's.
	minSlack   = 100
	exactSlack = 1000
)

// Config tunes a Tracker.
type Config struct {
	// Names resolves series ids; required.
	Names Names
	// Today is the day the tracker starts on (the current time).
	Today time.Time
	// Days is how many days before today are kept (0: 90).
	Days int
	// MaxSketches bounds the sketches of today (0: DefaultMaxSketches).
	MaxSketches int
}

// Tracker is one process's adoption counts. It is safe for concurrent use.
type Tracker struct {
	names       Names
	days        int
	maxSketches int

	mu       sync.Mutex
	day      uint32             // today, in Unix days
	counts   map[uint32]int32   // series → devices whose latest check today was on it
	sketches map[uint32]*sketch // series → devices seen on it today
	forgot   map[string]int     // per app, devices seen today the offer memory forgot
	changed  bool               // today changed since the last TakeDirty
	past     map[string]map[uint32][]store.AdoptionCount
	unsaved  []dayKey // closed days not handed to TakeDirty yet
}

type dayKey struct {
	app string
	day uint32
}

// Day returns the Unix day of a Unix second.
func Day(unix uint32) uint32 { return unix / 86400 }

func dayOf(t time.Time) uint32 {
	if t.Unix() < 0 {
		return 0
	}
	return uint32(t.Unix() / 86400)
}

func dayTime(d uint32) time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// New returns an empty tracker.
func New(cfg Config) *Tracker {
	if cfg.Days <= 0 {
		cfg.Days = DefaultDays
	}
	if cfg.MaxSketches <= 0 {
		cfg.MaxSketches = DefaultMaxSketches
	}
	return &Tracker{names: cfg.Names, days: cfg.Days, maxSketches: cfg.MaxSketches, day: dayOf(cfg.Today),
		counts: map[uint32]int32{}, sketches: map[uint32]*sketch{}, forgot: map[string]int{},
		past: map[string]map[uint32][]store.AdoptionCount{}}
}

// Seen moves a device (key) seen on day from series from (0: not seen
// yet that day) to series to. A day before today is ignored (a check
// racing midnight); a later one closes today first.
func (t *Tracker) Seen(day, from, to uint32, key uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if day > t.day {
		t.roll(day)
	}
	if day < t.day || from == to {
		return
	}
	if from != 0 {
		if n := t.counts[from]; n > 0 {
			t.counts[from] = n - 1
		}
	}
	if to != 0 {
		t.counts[to]++
		sk := t.sketches[to]
		if sk == nil && len(t.sketches) < t.maxSketches {
			sk = new(sketch)
			t.sketches[to] = sk
		}
		if sk != nil {
			sk.add(key)
		}
	}
	t.changed = true
}

// Forgot notes that the offer memory forgot a device last seen on day on
// series: when that is today, the app's counts of today become estimates.
func (t *Tracker) Forgot(day, series uint32) {
	if series == 0 {
		return
	}
	app, _, _, ok := t.names(series)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if day == t.day {
		t.forgot[app]++
		t.changed = true
	}
}

// Roll closes the days before now's; Seen does it at the first check of
// a day, and the owner calls it periodically so quiet days close too.
func (t *Tracker) Roll(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d := dayOf(now); d > t.day {
		t.roll(d)
	}
}

// roll closes today and starts day; the caller holds mu.
func (t *Tracker) roll(day uint32) {
	for app, cs := range t.todayLocked() {
		t.putPast(app, t.day, cs)
		t.unsaved = append(t.unsaved, dayKey{app, t.day})
	}
	t.day = day
	clear(t.counts)
	clear(t.sketches)
	clear(t.forgot)
	t.changed = false
	t.prune()
}

// putPast keeps a day's counts of an app, within maxCountsPerDay.
func (t *Tracker) putPast(app string, day uint32, cs []store.AdoptionCount) {
	if len(cs) > maxCountsPerDay {
		slices.SortFunc(cs, func(a, b store.AdoptionCount) int { return b.Devices - a.Devices })
		cs = cs[:maxCountsPerDay]
	}
	sortCounts(cs)
	days := t.past[app]
	if days == nil {
		days = map[uint32][]store.AdoptionCount{}
		t.past[app] = days
	}
	days[day] = cs
}

// prune forgets the days more than Days before today.
func (t *Tracker) prune() {
	for app, days := range t.past {
		for d := range days {
			if d+uint32(t.days) < t.day {
				delete(days, d)
			}
		}
		if len(days) == 0 {
			delete(t.past, app)
		}
	}
}

// todayLocked is today's counts per app; the caller holds mu.
func (t *Tracker) todayLocked() map[string][]store.AdoptionCount {
	out := map[string][]store.AdoptionCount{}
	// A forgotten device that comes back is counted twice: exact counts
	// stand while that is at most exactSlack of the app's devices.
	total := map[string]int{}
	if len(t.forgot) > 0 {
		for id, n := range t.counts {
			if app, _, _, ok := t.names(id); ok {
				total[app] += int(n)
			}
		}
	}
	over := func(app string) bool {
		f := t.forgot[app]
		return f > 0 && f > max(minSlack, total[app]/exactSlack)
	}
	add := func(id uint32, exact int) {
		app, channel, version, ok := t.names(id)
		if !ok {
			return
		}
		c := store.AdoptionCount{Channel: channel, Version: version, Devices: exact}
		if over(app) {
			if sk := t.sketches[id]; sk != nil {
				c.Devices, c.Estimated = sk.estimate(), true
			}
		}
		if c.Devices > 0 {
			out[app] = append(out[app], c)
		}
	}
	for id, n := range t.counts {
		add(id, int(n))
	}
	for app, cs := range out {
		sortCounts(cs)
		out[app] = cs
	}
	return out
}

func sortCounts(cs []store.AdoptionCount) {
	slices.SortFunc(cs, func(a, b store.AdoptionCount) int {
		return cmp.Or(cmp.Compare(a.Channel, b.Channel), cmp.Compare(a.Version, b.Version))
	})
}

// Days returns app's days from since to today (today's counts so far
// included), oldest first. Days without a device are left out.
func (t *Tracker) Days(app string, since time.Time) []store.AdoptionDay {
	from := dayOf(since)
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []store.AdoptionDay
	for d, cs := range t.past[app] {
		if d >= from && d < t.day {
			out = append(out, store.AdoptionDay{AppID: app, Day: dayTime(d), Counts: slices.Clone(cs)})
		}
	}
	if cs := t.todayLocked()[app]; len(cs) > 0 && t.day >= from {
		out = append(out, store.AdoptionDay{AppID: app, Day: dayTime(t.day), Counts: cs})
	}
	slices.SortFunc(out, func(a, b store.AdoptionDay) int { return a.Day.Compare(b.Day) })
	return out
}

// Today returns today's counts of every app.
func (t *Tracker) Today() []store.AdoptionDay {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []store.AdoptionDay
	for app, cs := range t.todayLocked() {
		out = append(out, store.AdoptionDay{AppID: app, Day: dayTime(t.day), Counts: cs})
	}
	slices.SortFunc(out, func(a, b store.AdoptionDay) int { return cmp.Compare(a.AppID, b.AppID) })
	return out
}

// Load puts stored days back (at start): days before today are kept as
// they are, today's are ignored (the offer memory rebuilds them).
func (t *Tracker) Load(days []store.AdoptionDay) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range days {
		if day := dayOf(d.Day); day < t.day && day+uint32(t.days) >= t.day {
			t.putPast(d.AppID, day, slices.Clone(d.Counts))
		}
	}
}

// TakeDirty returns the days to save: the closed days not saved yet and
// today's counts so far, when they changed. Hand them to the store's
// SaveAdoption; after a failure, give them back with Requeue.
func (t *Tracker) TakeDirty() []store.AdoptionDay {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []store.AdoptionDay
	for _, k := range t.unsaved {
		if cs, ok := t.past[k.app][k.day]; ok {
			out = append(out, store.AdoptionDay{AppID: k.app, Day: dayTime(k.day), Counts: slices.Clone(cs)})
		}
	}
	t.unsaved = t.unsaved[:0]
	if t.changed {
		for app, cs := range t.todayLocked() {
			out = append(out, store.AdoptionDay{AppID: app, Day: dayTime(t.day), Counts: cs})
		}
		t.changed = false
	}
	return out
}

// Requeue marks days TakeDirty returned as unsaved again.
func (t *Tracker) Requeue(days []store.AdoptionDay) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, d := range days {
		switch day := dayOf(d.Day); {
		case day == t.day:
			t.changed = true
		case day < t.day:
			t.unsaved = append(t.unsaved, dayKey{d.AppID, day})
		}
	}
}

// KeepFrom is the first day the store should keep at now.
func (t *Tracker) KeepFrom(now time.Time) time.Time {
	return dayTime(dayOf(now) - min(dayOf(now), uint32(t.days)))
}

// Bytes is about the memory the tracker takes.
func (t *Tracker) Bytes() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := int64(len(t.sketches))*SketchBytes + int64(len(t.counts))*16
	for _, days := range t.past {
		for _, cs := range days {
			n += int64(len(cs)) * 64
		}
	}
	return n
}
