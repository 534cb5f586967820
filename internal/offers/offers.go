// Package offers is otad's memory of each device: per app and device id,
// the bundle version the latest update checks were offered (with its
// channel), the version offered before that, when the current offer was
// first and last made and how often, and what the device's latest check
// said (when it was, the version it ran and on which channel, its native
// version, plugin, platform and build type) and reported (downloading or
// installing the offered version).
//
// Device reports (/stats) count toward a version's health only when otad
// offered that version to that device (see Memory.Offered), so made-up
// reports for made-up devices cost an update check each. Silent-failure
// detection (Check finds stalled installs), adoption counts (the adoption
// tracker it feeds) and per-device stories (Lookup) build on the same
// memory.
//
// The memory is bounded in bytes: each device is one fixed 48-byte slot
// without pointers (the garbage collector never scans it), in 64 shards
// of open-addressed tables that grow up to the bound and then replace the
// device checked least recently of a probe window. Recording a check
// takes a shard lock and does not allocate once the device is known. The
// owner persists what changed in batches (TakeDirty, through the store's
// SaveOffers; changed slots are flagged, not listed, so saving costs no
// memory) and loads it at start (Put).
package offers

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/otaship/ota/internal/adoption"
	"github.com/otaship/ota/internal/store"
)

// DefaultMaxBytes is the memory bound when Config.MaxBytes is zero: room
// for about two million devices.
const DefaultMaxBytes = 96 << 20

// SlotBytes is the memory one remembered device takes.
const SlotBytes = 48

const (
	shardBits  = 6
	shardCount = 1 << shardBits
	// window is how many slots from its home a device may sit in; a full
	// window makes room by forgetting its least recently offered device.
	window    = 32
	firstSize = 64 // slots of a new shard
	// maxTargets bounds the distinct (app, channel, version) offered. They
	// are release names an admin made, never a device's words, so this is
	// a guard, not a limit anyone meets.
	maxTargets = 1 << 16
	// maxWords bounds the distinct native versions and plugin versions
	// remembered (devices choose them); later ones are not remembered.
	maxWords   = 1 << 12
	maxWordLen = 64
	// Saving: a device's slot is written again when its offer changes,
	// while it has been offered fewer than eagerCount times, and then at
	// most every resaveAfter, so a fleet polling all day costs a write per
	// device every ten minutes, not one per poll.
	eagerCount  = 16
	resaveAfter = 10 * 60 // seconds
)

// Slot flags. The device flags (downloaded to source) are the store's
// DeviceOffer.Flags as they are.
const (
	flagDirty      = 1 << 0
	flagDownloaded = 1 << 1 // reported downloading target
	flagInstalled  = 1 << 2 // reported set or app_launch_ready of target
	flagRan        = 1 << 3 // checked while running target
	flagStalled    = 1 << 4 // counted as a stalled install of target
	flagFailed     = 1 << 5 // reported a failure of target
	flagEmulator   = 1 << 6
	flagDev        = 1 << 7 // is_prod false
	platformShift  = 8      // 2 bits: platform
	sourceShift    = 10     // 2 bits: how the channel was chosen
	// targetFlags are about target and go with it.
	targetFlags = flagDownloaded | flagInstalled | flagRan | flagStalled | flagFailed
	// metaFlags are the check's request.
	metaFlags = flagEmulator | flagDev | 3<<platformShift | 3<<sourceShift
)

var platforms = [4]string{"", "android", "ios", "electron"}

// Channel sources, as update's Source* names them.
var sources = [4]string{"", "override", "device", "default"}

func index(list *[4]string, s string) uint16 {
	for i, v := range list {
		if i > 0 && v == s {
			return uint16(i)
		}
	}
	return 0
}

// slot is one device: 48 bytes, no pointers.
type slot struct {
	key     uint64 // DeviceKey; 0: empty
	target  uint32 // 1 + index into the target table; 0: none
	prev    uint32 // the target offered before target
	first   uint32 // Unix seconds of the first offer of target
	last    uint32 // Unix seconds of the latest offer
	seen    uint32 // Unix seconds of the latest check, whatever its answer
	running uint32 // target id of (app, channel, version it ran) at the latest check; 0: unknown
	saved   uint32 // Unix seconds last handed to TakeDirty; 0: never
	count   uint16 // offers of target, up to 65535
	build   uint16 // word id of the latest version_build; 0: unknown
	plugin  uint16 // word id of the latest plugin_version
	flags   uint16
}

type shard struct {
	mu    sync.Mutex
	slots []slot
	used  int
	dirty int // slots with flagDirty
	// evicted are keys forgotten since the last TakeDirty that had been
	// saved: the store must forget them too. At most a quarter of the
	// shard's slots are listed; beyond that the store keeps a few stale
	// records, which the next start's Put forgets again.
	evicted []uint64
}

// maxEvicted is the bound of a shard's evicted list for slots slots.
func maxEvicted(slots int) int { return slots / 4 }

// target is what an offer named.
type target struct{ app, channel, version string }

// Config tunes a Memory. The zero value is usable.
type Config struct {
	// MaxBytes bounds the slots' memory (0: DefaultMaxBytes).
	MaxBytes int64
	// OnDirty, when set, is called by Record and Put (never under a lock
	// of the Memory) when the memory goes from saved to changed: the
	// owner schedules a TakeDirty.
	OnDirty func()
	// Now is the time the memory starts at (its adoption tracker's
	// first day); zero: time.Now().
	Now time.Time
	// AdoptionSketches bounds the adoption tracker's sketches (0: its
	// default).
	AdoptionSketches int
}

// Memory is the offer memory. It is safe for concurrent use.
type Memory struct {
	maxSlots int // per shard
	onDirty  func()
	pending  atomic.Bool // changed since the last TakeDirty

	// The target table is copied on write (new targets are new releases,
	// rare), so the update-check path reads it without a lock.
	tmu     sync.Mutex // serialises writers
	targets atomic.Pointer[[]target]
	ids     atomic.Pointer[map[target]uint32]
	// words are native and plugin versions, copied on write like targets.
	wmu   sync.Mutex
	words atomic.Pointer[[]string]
	wids  atomic.Pointer[map[string]uint16]

	adopt *adoption.Tracker

	shards [shardCount]shard
}

// New returns an empty memory.
func New(cfg Config) *Memory {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	// A slot and its share of the evicted list: 48 + 8/4 bytes.
	per := max(firstSize, int(cfg.MaxBytes/(SlotBytes+2)/shardCount))
	m := &Memory{maxSlots: per, onDirty: cfg.OnDirty}
	m.targets.Store(&[]target{})
	m.ids.Store(&map[target]uint32{})
	m.words.Store(&[]string{})
	m.wids.Store(&map[string]uint16{})
	m.adopt = adoption.New(adoption.Config{Names: m.names, Today: cfg.Now, MaxSketches: cfg.AdoptionSketches})
	return m
}

// Adoption is the adoption tracker the memory feeds.
func (m *Memory) Adoption() *adoption.Tracker { return m.adopt }

// names resolves a target id for the adoption tracker.
func (m *Memory) names(id uint32) (app, channel, version string, ok bool) {
	t, ok := m.targetOf(id)
	return t.app, t.channel, t.version, ok
}

// MaxDevices is how many devices the memory can hold.
func (m *Memory) MaxDevices() int { return m.maxSlots * shardCount }

// DeviceKey is the key a device of an app is remembered by: a 64-bit hash
// (FNV-1a, then mixed) of the app id and the lowercase device id. Two
// devices that share one would share a memory; at a million devices that
// is a chance of about 1 in 30 million, and it lets a device pose as
// nothing it could not pose as anyway (device ids are not secret).
func DeviceKey(app, device string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(app); i++ {
		h = (h ^ uint64(app[i])) * prime
	}
	h *= prime // a zero byte between the ids, which no id contains (h ^ 0 is h)
	for i := 0; i < len(device); i++ {
		h = (h ^ uint64(device[i])) * prime
	}
	// splitmix64's finaliser spreads FNV's low-entropy high bits.
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	if h == 0 {
		h = 1 // 0 marks an empty slot
	}
	return h
}

func (m *Memory) shardOf(key uint64) *shard { return &m.shards[key>>(64-shardBits)] }

// targetID returns the id of t, adding it; 0 when the table is full.
func (m *Memory) targetID(t target) uint32 {
	if id := (*m.ids.Load())[t]; id != 0 {
		return id
	}
	m.tmu.Lock()
	defer m.tmu.Unlock()
	old := *m.ids.Load()
	if id := old[t]; id != 0 {
		return id
	}
	ts := *m.targets.Load()
	if len(ts) >= maxTargets {
		return 0
	}
	// Targets first: a reader that finds the new id finds its target.
	nts := append(ts[:len(ts):len(ts)], t)
	m.targets.Store(&nts)
	ids := make(map[target]uint32, len(old)+1)
	for k, v := range old {
		ids[k] = v
	}
	id := uint32(len(nts))
	ids[t] = id
	m.ids.Store(&ids)
	return id
}

func (m *Memory) targetOf(id uint32) (target, bool) {
	ts := *m.targets.Load()
	if id == 0 || int(id) > len(ts) {
		return target{}, false
	}
	return ts[id-1], true
}

// wordID returns the id of a device-chosen word (a native or plugin
// version), adding it while there is room; 0 for "" or no room.
func (m *Memory) wordID(w string) uint16 {
	if w == "" || len(w) > maxWordLen {
		return 0
	}
	if id := (*m.wids.Load())[w]; id != 0 {
		return id
	}
	m.wmu.Lock()
	defer m.wmu.Unlock()
	old := *m.wids.Load()
	if id := old[w]; id != 0 {
		return id
	}
	ws := *m.words.Load()
	if len(ws) >= maxWords {
		return 0
	}
	w = string([]byte(w)) // not the request's memory
	nws := append(ws[:len(ws):len(ws)], w)
	m.words.Store(&nws)
	ids := make(map[string]uint16, len(old)+1)
	for k, v := range old {
		ids[k] = v
	}
	id := uint16(len(nws))
	ids[w] = id
	m.wids.Store(&ids)
	return id
}

func (m *Memory) wordOf(id uint16) string {
	ws := *m.words.Load()
	if id == 0 || int(id) > len(ws) {
		return ""
	}
	return ws[id-1]
}

func unix(t time.Time) uint32 {
	s := t.Unix()
	switch {
	case s < 0:
		return 0
	case s > 1<<32-1:
		return 1<<32 - 1
	}
	return uint32(s)
}

// Record remembers that version of app was offered on channel to device
// (lowercase) at now: a Check with nothing else known.
func (m *Memory) Record(app, channel, version, device string, now time.Time) {
	m.Check(&Check{App: app, Device: device, Channel: channel, Offered: version, Now: now, Prod: true})
}

// Check is one answered update check, as Memory.Check records it.
type Check struct {
	App, Device string // the device id lowercase
	// Channel is the channel the check resolved to ("" when none), and
	// Source how (update's SourceOverride, SourceDevice, SourceDefault).
	Channel, Source string
	// Running is the version the device runs, as the snapshot names it:
	// a bundle version, ota.VersionBuiltin or ota.VersionUnknown; ""
	// when not known (nothing is recorded about it).
	Running string
	// Offered is the version the answer offers, "" when none.
	Offered string
	// The request's native version, plugin version and platform, and
	// build type.
	Build, Plugin, Platform string
	Prod, Emulator          bool
	Now                     time.Time
	// A device offered the same version that keeps polling on another
	// for StalledAfter and StalledPolls checks after the first offer,
	// without a report of installing it or of a failure, is stalled
	// (0 for either: never).
	StalledAfter time.Duration
	StalledPolls int
}

// Result is what a check changed about a device's stall.
type Result struct {
	// Stalled is the version the device was just found stalled on.
	Stalled string
	// Ran is the version the device was stalled on and now runs.
	Ran string
}

// Check records an answered update check. It does not allocate once the
// device, its versions and its channel are known.
func (m *Memory) Check(c *Check) Result {
	var res Result
	var tid, rid uint32
	if c.Offered != "" {
		if tid = m.targetID(target{c.App, c.Channel, c.Offered}); tid == 0 {
			return res
		}
	}
	if c.Running != "" {
		rid = m.targetID(target{c.App, c.Channel, c.Running})
	}
	if tid == 0 && rid == 0 {
		return res
	}
	build, plugin := m.wordID(c.Build), m.wordID(c.Plugin)
	meta := index(&platforms, c.Platform)<<platformShift | index(&sources, c.Source)<<sourceShift
	if c.Emulator {
		meta |= flagEmulator
	}
	if !c.Prod {
		meta |= flagDev
	}
	key := DeviceKey(c.App, c.Device)
	at := unix(c.Now)
	sh := m.shardOf(key)
	sh.mu.Lock()
	s := sh.find(key)
	if s == nil {
		s = m.insert(sh, key)
	}
	dirty := false
	if tid != 0 {
		switch {
		case s.target != tid:
			if s.target != 0 {
				s.prev = s.target
			}
			s.target, s.first, s.last, s.count = tid, at, at, 1
			s.flags &^= targetFlags
			dirty = true
		default:
			if s.count < 1<<16-1 {
				s.count++
			}
			s.last = at
			dirty = s.count < eagerCount
		}
	}
	if rid != 0 {
		if s.running != rid {
			dirty = true
		}
		// Adoption: the device's first check of the day, or one on
		// another version or channel than its previous one that day.
		day := adoption.Day(at)
		switch {
		case s.seen == 0 || adoption.Day(s.seen) != day:
			m.adopt.Seen(day, 0, rid, key)
		case s.running != rid:
			m.adopt.Seen(day, s.running, rid, key)
		}
		s.running = rid
		// Running what it was offered: the install happened.
		if s.target != 0 && s.flags&flagRan == 0 {
			if t, ok := m.targetOf(s.target); ok && t.version == c.Running {
				s.flags |= flagRan
				dirty = true
				if s.flags&flagStalled != 0 {
					s.flags &^= flagStalled
					res.Ran = t.version
				}
			}
		}
	}
	s.seen = at
	if s.build != build || s.plugin != plugin || s.flags&metaFlags != meta {
		s.build, s.plugin = build, plugin
		s.flags = s.flags&^metaFlags | meta
		dirty = true
	}
	// Silent failure: offered again and again while running another
	// version, past the window, without a word about installing it.
	if tid != 0 && s.target == tid && c.StalledPolls > 0 && c.StalledAfter > 0 &&
		s.flags&(flagInstalled|flagRan|flagStalled|flagFailed) == 0 &&
		int(s.count)-1 >= c.StalledPolls && time.Duration(at-s.first)*time.Second >= c.StalledAfter {
		s.flags |= flagStalled
		res.Stalled = c.Offered
		dirty = true
	}
	dirty = dirty || at-s.saved >= resaveAfter
	notify := false
	if dirty {
		notify = m.markDirty(sh, s)
	}
	sh.mu.Unlock()
	if notify && m.onDirty != nil {
		m.onDirty()
	}
	return res
}

// Report kinds for Memory.Report.
const (
	ReportDownloaded = iota // download_complete, download_zip_complete, download_manifest_complete, set_next
	ReportInstalled         // set, app_launch_ready
	ReportFailed            // a failure of the version
)

// Report records what a device reported about version: when it is the
// version it was offered last, the device is no longer a candidate for a
// stalled install. stalled says whether it was counted as one (the
// caller takes it back for an install).
func (m *Memory) Report(app, device, version string, kind int) (stalled bool) {
	key := DeviceKey(app, device)
	sh := m.shardOf(key)
	sh.mu.Lock()
	s := sh.find(key)
	var t target
	ok := false
	if s != nil {
		t, ok = m.targetOf(s.target)
	}
	if !ok || t.app != app || t.version != version {
		sh.mu.Unlock()
		return false
	}
	flag := uint16(flagDownloaded)
	switch kind {
	case ReportInstalled:
		flag = flagInstalled
	case ReportFailed:
		flag = flagFailed
	}
	stalled = s.flags&flagStalled != 0
	notify := false
	if s.flags&flag == 0 {
		s.flags |= flag
		if kind == ReportInstalled {
			s.flags &^= flagStalled
		}
		notify = m.markDirty(sh, s)
	}
	sh.mu.Unlock()
	if notify && m.onDirty != nil {
		m.onDirty()
	}
	return stalled
}

// markDirty flags s for saving and reports whether the memory just went
// from saved to changed; the caller holds sh.mu.
func (m *Memory) markDirty(sh *shard, s *slot) bool {
	if s.flags&flagDirty == 0 {
		s.flags |= flagDirty
		sh.dirty++
	}
	return !m.pending.Load() && m.pending.CompareAndSwap(false, true)
}

// forget notes that a slot goes, for the store and the adoption counts;
// the caller holds sh.mu.
func (m *Memory) forget(sh *shard, s *slot) {
	if s.running != 0 {
		m.adopt.Forgot(adoption.Day(s.seen), s.running)
	}
	if s.flags&flagDirty != 0 {
		sh.dirty--
	}
	if s.saved != 0 && len(sh.evicted) < maxEvicted(len(sh.slots)) {
		sh.evicted = append(sh.evicted, s.key)
	}
}

// home is where key's probe window starts: the low 32 bits of the key
// scaled to the table (tables are not all powers of two; the top bits
// chose the shard).
func (sh *shard) home(key uint64) int { return int(uint64(uint32(key)) * uint64(len(sh.slots)) >> 32) }

// at is slot h+i of the table, wrapping around.
func (sh *shard) at(h, i int) *slot {
	j := h + i
	if j >= len(sh.slots) {
		j -= len(sh.slots)
	}
	return &sh.slots[j]
}

// find returns key's slot or nil; the caller holds sh.mu.
func (sh *shard) find(key uint64) *slot {
	if len(sh.slots) == 0 {
		return nil
	}
	for i, h := 0, sh.home(key); i < window; i++ {
		s := sh.at(h, i)
		switch s.key {
		case key:
			return s
		case 0:
			return nil // slots are never emptied, so key is not further on
		}
	}
	return nil
}

// insert makes a slot for key: an empty one of its window, after growing
// the shard while it may, or else the window's least recently offered
// device, which is forgotten. The caller holds sh.mu.
func (m *Memory) insert(sh *shard, key uint64) *slot {
	if len(sh.slots) == 0 {
		sh.slots = make([]slot, min(firstSize, m.maxSlots))
	}
	for len(sh.slots) < m.maxSlots && sh.used*4 >= len(sh.slots)*3 {
		m.grow(sh, m.maxSlots)
	}
	for {
		var oldest *slot
		for i, h := 0, sh.home(key); i < window; i++ {
			s := sh.at(h, i)
			if s.key == 0 {
				*s = slot{key: key}
				sh.used++
				return s
			}
			if oldest == nil || s.seen < oldest.seen {
				oldest = s
			}
		}
		if len(sh.slots) < m.maxSlots {
			m.grow(sh, m.maxSlots) // a crowded window before the load factor says so
			continue
		}
		m.forget(sh, oldest)
		*oldest = slot{key: key}
		return oldest
	}
}

// grow doubles the shard's table, up to max slots; the caller holds sh.mu.
func (m *Memory) grow(sh *shard, max int) {
	old := sh.slots
	sh.slots = make([]slot, min(2*len(old), max))
	sh.used = 0
	for i := range old {
		o := &old[i]
		if o.key == 0 {
			continue
		}
		for j, h := 0, sh.home(o.key); ; j++ {
			if j == window { // beyond find's reach: forgotten (all but never happens at this load)
				m.forget(sh, o)
				break
			}
			s := sh.at(h, j)
			if s.key == 0 {
				*s = *o
				sh.used++
				break
			}
		}
	}
	sh.dirty = 0
	for i := range sh.slots {
		if sh.slots[i].flags&flagDirty != 0 {
			sh.dirty++
		}
	}
}

// Offer is what the memory holds for one device.
type Offer struct {
	Channel, Version string
	// Previous is the version offered before Version ("" when none).
	Previous string
	// First and Last are the first and the latest offer of Version.
	First, Last time.Time
	// Count is how often Version was offered (at most 65535).
	Count int

	// Seen is the latest check, whatever it was answered; Running the
	// version the device ran then (a bundle version, ota.VersionBuiltin,
	// ota.VersionUnknown, or "" when not known) on RunningChannel.
	Seen                    time.Time
	Running, RunningChannel string
	// What the device reported of Version, and whether otad counts it
	// as a stalled install of it.
	Downloaded, Installed, Ran, Failed, Stalled bool
	// The latest check's request: native and plugin versions ("" when
	// not remembered), platform, how its channel was chosen, build type.
	Build, Plugin, Platform, Source string
	Prod, Emulator                  bool
}

// Lookup returns what the memory holds of device of app.
func (m *Memory) Lookup(app, device string) (Offer, bool) {
	key := DeviceKey(app, device)
	sh := m.shardOf(key)
	sh.mu.Lock()
	s := sh.find(key)
	var c slot
	if s != nil {
		c = *s
	}
	sh.mu.Unlock()
	if c.key == 0 {
		return Offer{}, false
	}
	var o Offer
	t, ok := m.targetOf(c.target)
	if ok && t.app == app {
		o = Offer{Channel: t.channel, Version: t.version, First: time.Unix(int64(c.first), 0).UTC(),
			Last: time.Unix(int64(c.last), 0).UTC(), Count: int(c.count)}
		if p, ok := m.targetOf(c.prev); ok {
			o.Previous = p.version
		}
	}
	r, rok := m.targetOf(c.running)
	if rok && r.app == app {
		o.Running, o.RunningChannel = r.version, r.channel
	}
	if (!ok || t.app != app) && (!rok || r.app != app) {
		return Offer{}, false
	}
	if c.seen != 0 {
		o.Seen = time.Unix(int64(c.seen), 0).UTC()
	}
	f := c.flags
	o.Downloaded, o.Installed, o.Ran = f&flagDownloaded != 0, f&flagInstalled != 0, f&flagRan != 0
	o.Failed, o.Stalled = f&flagFailed != 0, f&flagStalled != 0
	o.Build, o.Plugin = m.wordOf(c.build), m.wordOf(c.plugin)
	o.Platform, o.Source = platforms[f>>platformShift&3], sources[f>>sourceShift&3]
	o.Prod, o.Emulator = f&flagDev == 0, f&flagEmulator != 0
	return o, true
}

// Offered reports whether version of app is what device was last offered,
// or the offer before that (a report may come after the next check, and
// a failure after a rollback was offered).
func (m *Memory) Offered(app, device, version string) bool {
	key := DeviceKey(app, device)
	sh := m.shardOf(key)
	sh.mu.Lock()
	var cur, prev uint32
	if s := sh.find(key); s != nil {
		cur, prev = s.target, s.prev
	}
	sh.mu.Unlock()
	for _, id := range [2]uint32{cur, prev} {
		if t, ok := m.targetOf(id); ok && t.app == app && t.version == version {
			return true
		}
	}
	return false
}

// Len returns how many devices the memory holds.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += sh.used
		sh.mu.Unlock()
	}
	return n
}

// Bytes returns the memory the slots take (allocated, used or not).
func (m *Memory) Bytes() int64 {
	var n int64
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += int64(len(sh.slots)) * SlotBytes
		sh.mu.Unlock()
	}
	return n
}

// Put loads a stored record (at start), as already saved. Records of
// another key's shape (Device 0) or with neither an offer nor a check are
// skipped. A device checked on the adoption tracker's first day counts
// toward that day again.
func (m *Memory) Put(r store.DeviceOffer) {
	if r.Device == 0 || (r.Version == "" && r.Running == "") {
		return
	}
	var tid, prev, rid uint32
	if r.Version != "" {
		if tid = m.targetID(target{r.AppID, r.Channel, r.Version}); tid == 0 {
			return
		}
	}
	if r.Previous != "" {
		prev = m.targetID(target{r.AppID, r.PreviousChannel, r.Previous})
	}
	if r.Running != "" {
		rid = m.targetID(target{r.AppID, r.RunningChannel, r.Running})
	}
	sh := m.shardOf(r.Device)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	s := sh.find(r.Device)
	if s == nil {
		s = m.insert(sh, r.Device)
	} else if s.flags&flagDirty != 0 {
		sh.dirty--
	}
	last, seen := unix(r.Last), unix(r.Seen)
	*s = slot{key: r.Device, target: tid, prev: prev, first: unix(r.First), last: last, seen: seen, running: rid,
		saved: max(last, seen, 1), count: uint16(min(r.Count, 1<<16-1)),
		build: m.wordID(r.Build), plugin: m.wordID(r.Plugin), flags: r.Flags &^ flagDirty}
	if rid != 0 && seen != 0 {
		m.adopt.Seen(adoption.Day(seen), 0, rid, r.Device)
	}
}

// TakeDirty appends to out the records changed since the last call (a
// record with only its Device key removes a forgotten device) and marks them
// saved. Hand them to the store's SaveOffers; when that fails, give them
// back with Requeue.
func (m *Memory) TakeDirty(out []store.DeviceOffer, now time.Time) []store.DeviceOffer {
	m.pending.Store(false)
	at := max(unix(now), 1)
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		for _, key := range sh.evicted {
			if sh.find(key) == nil {
				out = append(out, store.DeviceOffer{Device: key})
			}
		}
		sh.evicted = sh.evicted[:0]
		recs := make([]slot, 0, sh.dirty)
		for j := 0; sh.dirty > 0 && j < len(sh.slots); j++ {
			s := &sh.slots[j]
			if s.flags&flagDirty == 0 {
				continue
			}
			s.flags &^= flagDirty
			s.saved = at
			sh.dirty--
			recs = append(recs, *s)
		}
		sh.mu.Unlock()
		for i := range recs {
			out = append(out, m.record(&recs[i]))
		}
	}
	return out
}

// record is a slot as the store keeps it.
func (m *Memory) record(s *slot) store.DeviceOffer {
	r := store.DeviceOffer{Device: s.key, Count: int(s.count), Flags: s.flags &^ flagDirty,
		Build: m.wordOf(s.build), Plugin: m.wordOf(s.plugin)}
	if t, ok := m.targetOf(s.target); ok {
		r.AppID, r.Channel, r.Version = t.app, t.channel, t.version
		r.First, r.Last = time.Unix(int64(s.first), 0).UTC(), time.Unix(int64(s.last), 0).UTC()
	}
	if p, ok := m.targetOf(s.prev); ok {
		r.Previous, r.PreviousChannel = p.version, p.channel
	}
	if t, ok := m.targetOf(s.running); ok {
		r.AppID, r.Running, r.RunningChannel = t.app, t.version, t.channel
	}
	if s.seen != 0 {
		r.Seen = time.Unix(int64(s.seen), 0).UTC()
	}
	return r
}

// Requeue puts records TakeDirty returned back in the queue after a
// failed save.
func (m *Memory) Requeue(rs []store.DeviceOffer) {
	if len(rs) == 0 {
		return
	}
	for _, r := range rs {
		sh := m.shardOf(r.Device)
		sh.mu.Lock()
		if r.Version == "" && r.Running == "" {
			if len(sh.evicted) < maxEvicted(len(sh.slots)) {
				sh.evicted = append(sh.evicted, r.Device)
			}
		} else if s := sh.find(r.Device); s != nil && s.flags&flagDirty == 0 {
			s.flags |= flagDirty
			sh.dirty++
		}
		sh.mu.Unlock()
	}
	if m.pending.CompareAndSwap(false, true) && m.onDirty != nil {
		m.onDirty()
	}
}
