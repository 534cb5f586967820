// Package ratelimit is a keyed token-bucket limiter (per client address,
// per user name) with bounded memory: it keeps at most a fixed number of
// keys and drops the least recently used ones first. Login is the policy
// of login attempts built on it, and ClientKey the key of a client
// address (an IPv6 client by its /64).
//
// An Allow for a key already seen does not allocate, since it sits on the
// device hot path.
package ratelimit

import (
	"math"
	"sync"
	"time"
)

// DefaultMaxKeys is how many keys a Limiter keeps unless WithMaxKeys says
// otherwise. An entry is roughly 100 bytes plus its key.
const DefaultMaxKeys = 100_000

// maxRetryAfter caps Allow's answer so the Duration cannot overflow when the
// rate is tiny.
const maxRetryAfter = 24 * time.Hour

// Limiter grants each key perSecond events per second on average, with
// bursts of up to burst events. It is safe for concurrent use. A nil
// *Limiter allows everything.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int
	now     func() time.Time
	on      bool // false: limiting disabled
	// fullAfter is how long an untouched bucket takes to refill completely;
	// an entry idle that long is the same as no entry and can be dropped.
	fullAfter time.Duration

	mu      sync.Mutex
	entries map[string]*entry
	// head is the most recently used entry, tail the least; the list is
	// intrusive so moving an entry to the front does not allocate.
	head, tail *entry
}

type entry struct {
	key        string
	tokens     float64
	last       time.Time
	prev, next *entry
}

// Option configures a Limiter.
type Option func(*Limiter)

// WithMaxKeys bounds the number of keys kept (n <= 0: DefaultMaxKeys).
// When full, the least recently used key is forgotten, which hands that
// client a full bucket: under a flood of distinct keys the limit relaxes
// for the oldest ones rather than memory growing.
func WithMaxKeys(n int) Option {
	return func(l *Limiter) {
		if n > 0 {
			l.maxKeys = n
		}
	}
}

// WithClock sets the time source (tests); the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(l *Limiter) {
		if now != nil {
			l.now = now
		}
	}
}

// New returns a limiter that refills perSecond tokens per second up to
// burst. perSecond <= 0 or burst <= 0 disables limiting: Allow always
// succeeds (so "0" in a config means "off", not "refuse everything").
func New(perSecond float64, burst int, opts ...Option) *Limiter {
	l := &Limiter{
		rate:    perSecond,
		burst:   float64(burst),
		maxKeys: DefaultMaxKeys,
		now:     time.Now,
		entries: make(map[string]*entry),
	}
	for _, o := range opts {
		o(l)
	}
	l.on = l.rate > 0 && l.burst > 0 && !math.IsInf(l.rate, 1) && !math.IsNaN(l.rate)
	if l.on {
		l.fullAfter = time.Duration(l.burst / l.rate * float64(time.Second))
	}
	return l
}

func (l *Limiter) enabled() bool {
	return l != nil && l.on
}

// Allow takes one token from key's bucket. When the bucket is empty it
// returns false and how long until a token is available, rounded up to
// whole seconds and at least one second, ready for a Retry-After header.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	return l.allow(key, nil)
}

// AllowBytes is Allow for a key held in bytes (a client key built on the
// stack, see ClientKey): it allocates only for a key not seen before.
func (l *Limiter) AllowBytes(key []byte) (ok bool, retryAfter time.Duration) {
	return l.allow("", key)
}

// allow is Allow of key, or of kb when it is not nil.
func (l *Limiter) allow(key string, kb []byte) (ok bool, retryAfter time.Duration) {
	if !l.enabled() {
		return true, 0
	}
	now := l.now()

	l.mu.Lock()
	defer l.mu.Unlock()

	var e *entry
	if kb != nil {
		e = l.entries[string(kb)]
	} else {
		e = l.entries[key]
	}
	if e == nil {
		if kb != nil {
			key = string(kb)
		}
		e = l.add(key, now)
	} else {
		elapsed := now.Sub(e.last)
		if elapsed > 0 { // a clock stepping back refills nothing
			e.tokens = math.Min(l.burst, e.tokens+elapsed.Seconds()*l.rate)
			e.last = now
		}
		l.moveToFront(e)
	}
	l.dropIdle(now)

	if e.tokens >= 1 {
		e.tokens--
		return true, 0
	}
	wait := math.Ceil((1 - e.tokens) / l.rate)
	if wait < 1 {
		wait = 1
	}
	if wait > maxRetryAfter.Seconds() {
		return false, maxRetryAfter
	}
	return false, time.Duration(wait) * time.Second
}

// Refund gives back a token Allow took from key (up to the burst): for
// attempts that turned out not to count, such as a correct password.
func (l *Limiter) Refund(key string) {
	if !l.enabled() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[key]; e != nil {
		e.tokens = math.Min(l.burst, e.tokens+1)
	}
}

// Len returns the number of keys currently kept.
func (l *Limiter) Len() int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// add inserts a full bucket for key, evicting the least recently used
// entry if the limiter is at capacity.
func (l *Limiter) add(key string, now time.Time) *entry {
	if len(l.entries) >= l.maxKeys && l.tail != nil {
		l.remove(l.tail)
	}
	e := &entry{key: key, tokens: l.burst, last: now}
	l.entries[key] = e
	l.pushFront(e)
	return e
}

// dropIdle forgets up to two least recently used entries whose buckets
// have refilled completely: they hold no information, and doing a little
// of this on every call keeps memory proportional to recently active keys
// without a background goroutine.
func (l *Limiter) dropIdle(now time.Time) {
	for range 2 {
		t := l.tail
		if t == nil || t == l.head || now.Sub(t.last) < l.fullAfter {
			return
		}
		l.remove(t)
	}
}

func (l *Limiter) remove(e *entry) {
	delete(l.entries, e.key)
	l.unlink(e)
}

func (l *Limiter) pushFront(e *entry) {
	e.prev = nil
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	if l.tail == nil {
		l.tail = e
	}
}

func (l *Limiter) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (l *Limiter) moveToFront(e *entry) {
	if l.head == e {
		return
	}
	l.unlink(e)
	l.pushFront(e)
}
