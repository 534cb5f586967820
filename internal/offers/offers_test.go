package offers_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/offers"
	"github.com/otaship/ota/internal/store"
)

var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func TestRecordLookup(t *testing.T) {
	m := offers.New(offers.Config{})
	m.Record("app", "production", "1.0.0", "dev-1", t0)
	m.Record("app", "production", "1.0.0", "dev-1", t0.Add(time.Minute))
	m.Record("app", "beta", "1.1.0", "dev-2", t0)
	m.Record("other.app", "production", "9.0.0", "dev-1", t0)

	o, ok := m.Lookup("app", "dev-1")
	want := offers.Offer{Channel: "production", Version: "1.0.0", First: t0, Last: t0.Add(time.Minute), Count: 2,
		Seen: t0.Add(time.Minute), Prod: true}
	if !ok || o != want {
		t.Errorf("Lookup = %+v, %v; want %+v", o, ok, want)
	}
	if o, _ := m.Lookup("other.app", "dev-1"); o.Version != "9.0.0" {
		t.Errorf("the same device id in another app: %+v", o)
	}
	if _, ok := m.Lookup("app", "dev-3"); ok {
		t.Error("a device never offered anything is found")
	}
	// A new offer keeps the one before.
	m.Record("app", "production", "1.0.1", "dev-1", t0.Add(time.Hour))
	o, _ = m.Lookup("app", "dev-1")
	if o.Version != "1.0.1" || o.Previous != "1.0.0" || o.Count != 1 || !o.First.Equal(t0.Add(time.Hour)) {
		t.Errorf("after a new offer: %+v", o)
	}
	for _, tt := range []struct {
		app, device, version string
		want                 bool
	}{
		{"app", "dev-1", "1.0.1", true},
		{"app", "dev-1", "1.0.0", true}, // the offer before
		{"app", "dev-1", "9.0.0", false},
		{"other.app", "dev-1", "9.0.0", true},
		{"other.app", "dev-1", "1.0.1", false},
		{"app", "dev-2", "1.1.0", true},
		{"app", "dev-9", "1.1.0", false},
	} {
		if got := m.Offered(tt.app, tt.device, tt.version); got != tt.want {
			t.Errorf("Offered(%s, %s, %s) = %v, want %v", tt.app, tt.device, tt.version, got, tt.want)
		}
	}
	if n := m.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

// The memory stays within its bound in bytes with a million distinct
// device ids, and keeps the most recently offered ones.
func TestMillionDevicesBounded(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("a million devices: not in -short or -race runs")
	}
	for _, tt := range []struct {
		name     string
		maxBytes int64
		wantAll  bool // every device fits
	}{
		{"default bound holds them all", 0, true},
		{"a small bound forgets the oldest", 4 << 20, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			m := offers.New(offers.Config{MaxBytes: tt.maxBytes})
			const n = 1_000_000
			for i := range n {
				m.Record("com.example.app", "production", "1.0.0", fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i), t0.Add(time.Duration(i)*time.Millisecond))
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			bound := tt.maxBytes
			if bound == 0 {
				bound = offers.DefaultMaxBytes
			}
			if b := m.Bytes(); b > bound {
				t.Errorf("slots take %d bytes, bound %d", b, bound)
			}
			heap := int64(after.HeapAlloc) - int64(before.HeapAlloc)
			if heap > bound+bound/8 {
				t.Errorf("heap grew by %d bytes for a bound of %d", heap, bound)
			}
			// Within the bound, a probe window that is full by chance
			// forgets a device: a few in a million.
			got := m.Len()
			if got > m.MaxDevices() || (tt.wantAll && got < n-n/10000) || (!tt.wantAll && got >= n) {
				t.Errorf("%d devices remembered of %d (room for %d)", got, n, m.MaxDevices())
			}
			t.Logf("%d devices in %d bytes of slots, heap +%d bytes", got, m.Bytes(), heap)
			// The newest are kept.
			missing := 0
			for i := n - 1000; i < n; i++ {
				if !m.Offered("com.example.app", fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i), "1.0.0") {
					missing++
				}
			}
			if missing > 10 {
				t.Errorf("%d of the 1000 most recently offered devices forgotten", missing)
			}
		})
	}
}

func TestRecordDoesNotAllocate(t *testing.T) {
	m := offers.New(offers.Config{})
	m.Record("app", "production", "1.0.0", "dev-1", t0)
	m.TakeDirty(nil, t0) // the dirty list has its capacity
	now := t0
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Second)
		m.Record("app", "production", "1.0.0", "dev-1", now)
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per offer to a known device, want 0", allocs)
	}
}

func TestTakeDirty(t *testing.T) {
	notified := 0
	m := offers.New(offers.Config{OnDirty: func() { notified++ }})
	m.Record("app", "production", "1.0.0", "dev-1", t0)
	m.Record("app", "production", "1.0.0", "dev-2", t0)
	if notified != 1 {
		t.Errorf("OnDirty called %d times for one change of state, want 1", notified)
	}
	recs := m.TakeDirty(nil, t0)
	if len(recs) != 2 || recs[0].AppID != "app" || recs[0].Version != "1.0.0" || recs[0].Channel != "production" {
		t.Fatalf("first TakeDirty = %+v", recs)
	}
	if recs := m.TakeDirty(nil, t0); len(recs) != 0 {
		t.Errorf("nothing changed, TakeDirty = %+v", recs)
	}
	// The first polls are saved each time; after eagerCount, every ten
	// minutes; a new offer at once.
	saves := 0
	at := t0
	for i := range 100 {
		at = t0.Add(time.Duration(i+1) * time.Second)
		m.Record("app", "production", "1.0.0", "dev-1", at)
		saves += len(m.TakeDirty(nil, at))
	}
	if saves != 14 {
		t.Errorf("100 polls within two minutes saved %d times, want 14 (counts 2 to 15)", saves)
	}
	m.Record("app", "production", "1.0.0", "dev-1", at.Add(11*time.Minute))
	if recs := m.TakeDirty(nil, at); len(recs) != 1 || recs[0].Count != 102 {
		t.Errorf("a poll ten minutes after the last save: %+v", recs)
	}
	m.Record("app", "production", "1.0.1", "dev-1", at.Add(12*time.Minute))
	if recs := m.TakeDirty(nil, at); len(recs) != 1 || recs[0].Version != "1.0.1" || recs[0].Previous != "1.0.0" {
		t.Errorf("a new offer: %+v", recs)
	}
	// A failed save is queued again.
	m.Record("app", "production", "1.0.2", "dev-2", at)
	recs = m.TakeDirty(nil, at)
	m.Requeue(recs)
	if again := m.TakeDirty(nil, at); len(again) != 1 || again[0].Device != recs[0].Device {
		t.Errorf("after Requeue: %+v", again)
	}
}

// Forgotten devices that were saved come back as removals, so the store
// stays as bounded as the memory.
func TestEvictionRemovesFromStore(t *testing.T) {
	m := offers.New(offers.Config{MaxBytes: 64 * offers.SlotBytes * 64}) // the smallest: 64 slots a shard
	saved := map[uint64]store.DeviceOffer{}
	apply := func(recs []store.DeviceOffer) {
		for _, r := range recs {
			if r.Version == "" {
				delete(saved, r.Device)
			} else {
				saved[r.Device] = r
			}
		}
	}
	for i := range 20_000 {
		m.Record("app", "production", "1.0.0", fmt.Sprint("dev-", i), t0.Add(time.Duration(i)*time.Second))
		if i%100 == 0 { // within what the eviction lists hold between saves
			apply(m.TakeDirty(nil, t0))
		}
	}
	apply(m.TakeDirty(nil, t0))
	if len(saved) != m.Len() || len(saved) > m.MaxDevices() {
		t.Errorf("store holds %d records, memory %d devices (room for %d)", len(saved), m.Len(), m.MaxDevices())
	}
	// Loaded into a new memory, the same devices are known: in another
	// order a full table may not hold every one; those it forgets it
	// reports for removal, and nothing loaded is reported as changed.
	again := offers.New(offers.Config{MaxBytes: 64 * offers.SlotBytes * 64})
	for _, r := range saved {
		again.Put(r)
	}
	if again.Len() < len(saved)*95/100 {
		t.Errorf("reloaded %d of %d records", again.Len(), len(saved))
	}
	for _, r := range again.TakeDirty(nil, t0) {
		if r.Version != "" {
			t.Fatalf("a loaded record is reported changed: %+v", r)
		}
		delete(saved, r.Device)
	}
	if len(saved) != again.Len() {
		t.Errorf("after the removals the store holds %d records, the memory %d", len(saved), again.Len())
	}
	if !again.Offered("app", "dev-19999", "1.0.0") {
		t.Error("the newest device is not known after a reload")
	}
}

func TestConcurrent(t *testing.T) {
	m := offers.New(offers.Config{MaxBytes: 1 << 20})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			m.Requeue(m.TakeDirty(nil, t0))
		}
	}()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				dev := fmt.Sprint("dev-", g, "-", i%700)
				m.Record("app", "production", fmt.Sprint("1.0.", i%3), dev, t0.Add(time.Duration(i)*time.Second))
				m.Offered("app", dev, "1.0.1")
			}
		})
	}
	wg.Wait()
	<-done
	if n := m.Len(); n == 0 || n > m.MaxDevices() {
		t.Errorf("Len = %d (room for %d)", n, m.MaxDevices())
	}
}

// BenchmarkRecord is the offer memory's share of an update check: a known
// device offered the same bundle again, from several goroutines.
func BenchmarkRecord(b *testing.B) {
	m := offers.New(offers.Config{})
	devices := make([]string, 4096)
	for i := range devices {
		devices[i] = fmt.Sprintf("%08x-2c3e-4d5b-9a65-2f4f1a1e7c11", i)
		m.Record("com.example.app", "production", "1.0.1", devices[i], t0)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Record("com.example.app", "production", "1.0.1", devices[i%len(devices)], t0)
			i++
		}
	})
}
