package ratelimit_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/otaship/ota/internal/ratelimit"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// step is one Allow call after advancing the clock by wait.
type step struct {
	wait      time.Duration
	key       string
	wantOK    bool
	wantRetry time.Duration
}

func TestAllow(t *testing.T) {
	tests := []struct {
		name      string
		perSecond float64
		burst     int
		steps     []step
	}{
		{
			name: "burst then refusal", perSecond: 1, burst: 3,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", false, time.Second},
				{0, "b", true, 0}, // keys are independent
			},
		},
		{
			name: "refill one token per interval", perSecond: 0.5, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, 2 * time.Second},
				{time.Second, "a", false, time.Second},
				{time.Second, "a", true, 0},
				{0, "a", false, 2 * time.Second},
			},
		},
		{
			name: "refused calls do not consume", perSecond: 1, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, time.Second},
				{0, "a", false, time.Second},
				{time.Second, "a", true, 0},
			},
		},
		{
			name: "refill is capped at burst", perSecond: 10, burst: 2,
			steps: []step{
				{0, "a", true, 0},
				{time.Hour, "a", true, 0},
				{0, "a", true, 0},
				{0, "a", false, time.Second},
			},
		},
		{
			name: "retry after rounds up to whole seconds", perSecond: 1.0 / 90, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, 90 * time.Second},
				{500 * time.Millisecond, "a", false, 90 * time.Second},
				{89 * time.Second, "a", false, time.Second},
				{500 * time.Millisecond, "a", true, 0},
			},
		},
		{
			name: "fast rate still says at least one second", perSecond: 100, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, time.Second},
				{10 * time.Millisecond, "a", true, 0},
			},
		},
		{
			name: "clock stepping back refills nothing", perSecond: 1, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{-time.Hour, "a", false, time.Second},
				{time.Hour, "a", false, time.Second},
				{time.Second, "a", true, 0},
			},
		},
		{
			name: "tiny rate is capped", perSecond: 1e-9, burst: 1,
			steps: []step{
				{0, "a", true, 0},
				{0, "a", false, 24 * time.Hour},
			},
		},
		{
			name: "zero rate disables", perSecond: 0, burst: 1,
			steps: []step{{0, "a", true, 0}, {0, "a", true, 0}, {0, "a", true, 0}},
		},
		{
			name: "zero burst disables", perSecond: 1, burst: 0,
			steps: []step{{0, "a", true, 0}, {0, "a", true, 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newClock()
			l := ratelimit.New(tt.perSecond, tt.burst, ratelimit.WithClock(c.Now))
			for i, s := range tt.steps {
				c.Advance(s.wait)
				ok, retry := l.Allow(s.key)
				if ok != s.wantOK || retry != s.wantRetry {
					t.Errorf("step %d: Allow(%q) = %v, %v; want %v, %v", i, s.key, ok, retry, s.wantOK, s.wantRetry)
				}
			}
		})
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *ratelimit.Limiter
	if ok, retry := l.Allow("x"); !ok || retry != 0 {
		t.Errorf("nil Limiter: Allow = %v, %v; want true, 0", ok, retry)
	}
	if n := l.Len(); n != 0 {
		t.Errorf("nil Limiter: Len = %d", n)
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := newClock()
	l := ratelimit.New(1.0/60, 1, ratelimit.WithClock(c.Now), ratelimit.WithMaxKeys(2))
	drain := func(k string) {
		t.Helper()
		if ok, _ := l.Allow(k); !ok {
			t.Fatalf("first Allow(%q) refused", k)
		}
	}
	drain("a")
	drain("b")
	// Touch a so b becomes the least recently used.
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("a allowed twice with burst 1")
	}
	drain("c") // evicts b
	if n := l.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 (the cap)", n)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("a was evicted, want b (least recently used) evicted")
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Error("b still limited, want it forgotten by eviction")
	}
}

func TestDropsIdleKeys(t *testing.T) {
	c := newClock()
	l := ratelimit.New(1, 5, ratelimit.WithClock(c.Now))
	for i := range 100 {
		l.Allow(fmt.Sprint("idle", i))
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// 5s refills every bucket; after that the idle keys carry no state.
	c.Advance(5 * time.Second)
	for range 60 {
		l.Allow("active")
	}
	if n := l.Len(); n != 1 {
		t.Errorf("Len after the idle keys refilled = %d, want 1 (just the active key)", n)
	}
	// An entry that has not refilled yet must be kept.
	l.Allow("recent")
	c.Advance(time.Second)
	l.Allow("active")
	if ok, _ := l.Allow("recent"); !ok {
		t.Fatal("recent refused")
	}
	if n := l.Len(); n != 2 {
		t.Errorf("Len = %d, want 2: a bucket that is not full yet was dropped", n)
	}
}

func TestConcurrent(t *testing.T) {
	c := newClock()
	l := ratelimit.New(1, 50, ratelimit.WithClock(c.Now), ratelimit.WithMaxKeys(10))
	var mu sync.Mutex
	allowed := map[string]int{}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				k := fmt.Sprint("k", (g+i)%4)
				if ok, _ := l.Allow(k); ok {
					mu.Lock()
					allowed[k]++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for k, n := range allowed {
		if n != 50 {
			t.Errorf("key %s: %d allowed with a frozen clock, want the burst of 50", k, n)
		}
	}
}

func BenchmarkAllow(b *testing.B) {
	l := ratelimit.New(1e9, 1<<30)
	l.Allow("203.0.113.7")
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("203.0.113.7")
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := ratelimit.New(1e9, 1<<30)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = fmt.Sprintf("198.51.100.%d:%d", i%256, i)
		l.Allow(keys[i])
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)])
			i++
		}
	})
}
