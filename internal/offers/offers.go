// Package offers is otad's memory of what it offered each device: per app
// and device id, the bundle version the latest update check was offered
// (with its channel), the version offered before that, when the current
// offer was first and last made, and how often.
//
// Device reports (/stats) count toward a version's health only when otad
// offered that version to that device (see Memory.Offered), so made-up
// reports for made-up devices cost an update check each. Silent-failure
// detection, adoption counts and per-device stories build on the same
// memory.
//
// The memory is bounded in bytes: each device is one fixed 32-byte slot
// without pointers (the garbage collector never scans it), in 64 shards
// of open-addressed tables that grow up to the bound and then replace the
// least recently offered device of a probe window. Recording an offer
// takes a shard lock and does not allocate once the device is known. The
// owner persists what changed in batches (TakeDirty, through the store's
// SaveOffers; changed slots are flagged, not listed, so saving costs no
// memory) and loads it at start (Put).
package offers

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/otaship/ota/internal/store"
)

// DefaultMaxBytes is the memory bound when Config.MaxBytes is zero: room
// for about two million devices.
const DefaultMaxBytes = 64 << 20

// SlotBytes is the memory one remembered device takes.
const SlotBytes = 32

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
	// Saving: a device's slot is written again when its offer changes,
	// while it has been offered fewer than eagerCount times, and then at
	// most every resaveAfter, so a fleet polling all day costs a write per
	// device every ten minutes, not one per poll.
	eagerCount  = 16
	resaveAfter = 10 * 60 // seconds
)

const flagDirty = 1

// slot is one device: 32 bytes, no pointers.
type slot struct {
	key    uint64 // DeviceKey; 0: empty
	target uint32 // 1 + index into the target table; 0: none
	prev   uint32 // the target offered before target
	first  uint32 // Unix seconds of the first offer of target
	last   uint32 // Unix seconds of the latest offer
	saved  uint32 // Unix seconds last handed to TakeDirty; 0: never
	count  uint16 // offers of target, up to 65535
	flags  uint16
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

	shards [shardCount]shard
}

// New returns an empty memory.
func New(cfg Config) *Memory {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	// A slot and its share of the evicted list: 32 + 8/4 bytes.
	per := max(firstSize, int(cfg.MaxBytes/(SlotBytes+2)/shardCount))
	m := &Memory{maxSlots: per, onDirty: cfg.OnDirty}
	m.targets.Store(&[]target{})
	m.ids.Store(&map[target]uint32{})
	return m
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
// (lowercase) at now.
func (m *Memory) Record(app, channel, version, device string, now time.Time) {
	tid := m.targetID(target{app, channel, version})
	if tid == 0 {
		return
	}
	key := DeviceKey(app, device)
	at := unix(now)
	sh := m.shardOf(key)
	sh.mu.Lock()
	s := sh.find(key)
	if s == nil {
		s = m.insert(sh, key)
	}
	dirty := false
	switch {
	case s.target != tid:
		if s.target != 0 {
			s.prev = s.target
		}
		s.target, s.first, s.last, s.count = tid, at, at, 1
		dirty = true
	default:
		if s.count < 1<<16-1 {
			s.count++
		}
		s.last = at
		dirty = s.count < eagerCount || at-s.saved >= resaveAfter
	}
	notify := false
	if dirty {
		notify = m.markDirty(sh, s)
	}
	sh.mu.Unlock()
	if notify && m.onDirty != nil {
		m.onDirty()
	}
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

// forget notes that a slot goes, for the store; the caller holds sh.mu.
func (sh *shard) forget(s *slot) {
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
		sh.grow(m.maxSlots)
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
			if oldest == nil || s.last < oldest.last {
				oldest = s
			}
		}
		if len(sh.slots) < m.maxSlots {
			sh.grow(m.maxSlots) // a crowded window before the load factor says so
			continue
		}
		sh.forget(oldest)
		*oldest = slot{key: key}
		return oldest
	}
}

// grow doubles the shard's table, up to max slots; the caller holds sh.mu.
func (sh *shard) grow(max int) {
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
				sh.forget(o)
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
}

// Lookup returns what was last offered to device of app.
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
	t, ok := m.targetOf(c.target)
	if !ok || t.app != app {
		return Offer{}, false
	}
	o := Offer{Channel: t.channel, Version: t.version, First: time.Unix(int64(c.first), 0).UTC(),
		Last: time.Unix(int64(c.last), 0).UTC(), Count: int(c.count)}
	if p, ok := m.targetOf(c.prev); ok {
		o.Previous = p.version
	}
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
// another key's shape (Device 0) or with no version are skipped.
func (m *Memory) Put(r store.DeviceOffer) {
	if r.Device == 0 || r.Version == "" {
		return
	}
	tid := m.targetID(target{r.AppID, r.Channel, r.Version})
	if tid == 0 {
		return
	}
	var prev uint32
	if r.Previous != "" {
		prev = m.targetID(target{r.AppID, r.PreviousChannel, r.Previous})
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
	last := unix(r.Last)
	*s = slot{key: r.Device, target: tid, prev: prev, first: unix(r.First), last: last, saved: max(last, 1),
		count: uint16(min(r.Count, 1<<16-1))}
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
	r := store.DeviceOffer{Device: s.key, First: time.Unix(int64(s.first), 0).UTC(),
		Last: time.Unix(int64(s.last), 0).UTC(), Count: int(s.count)}
	if t, ok := m.targetOf(s.target); ok {
		r.AppID, r.Channel, r.Version = t.app, t.channel, t.version
	}
	if p, ok := m.targetOf(s.prev); ok {
		r.Previous, r.PreviousChannel = p.version, p.channel
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
		if r.Version == "" {
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
