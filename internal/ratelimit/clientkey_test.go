package ratelimit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/otaship/ota/internal/ratelimit"
)

func TestClientKey(t *testing.T) {
	tests := []struct {
		a, b   string
		prefix int
		same   bool
	}{
		{"203.0.113.7", "203.0.113.7", 0, true},
		{"203.0.113.7", "203.0.113.8", 0, false},
		{"::ffff:203.0.113.7", "203.0.113.7", 0, true},
		{"2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", 0, true},
		{"2001:db8:1:2::1", "2001:db8:1:3::1", 0, false},
		{"2001:db8:1:2::1", "2001:db8:1:2::2", 128, false},
		{"2001:db8:1:2::1", "2001:db8:1:ff::1", 48, true},
		{"fe80::1%eth0", "fe80::2%eth1", 0, true},
		{"not-an-address", "not-an-address", 0, true},
		{"::", "0.0.0.0", 0, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s /%d", tt.a, tt.b, tt.prefix), func(t *testing.T) {
			ka := ratelimit.ClientKey(nil, tt.a, tt.prefix)
			kb := ratelimit.ClientKey(nil, tt.b, tt.prefix)
			if same := string(ka) == string(kb); same != tt.same {
				t.Errorf("keys %q and %q: same = %v, want %v", ka, kb, same, tt.same)
			}
		})
	}
	if got, want := ratelimit.FormatKey(ratelimit.ClientKey(nil, "2001:db8:1:2::7", 0), 0), "2001:db8:1:2::/64"; got != want {
		t.Errorf("FormatKey = %q, want %q", got, want)
	}
}

// 300 addresses of one /64 are one client.
func TestClientKeyLimitsA64(t *testing.T) {
	l := ratelimit.New(1, 5, ratelimit.WithClock(newClock().Now))
	allowed := 0
	for i := range 300 {
		if ok, _ := l.AllowBytes(ratelimit.ClientKey(nil, fmt.Sprintf("2001:db8:42:7:%x::1", i+1), 0)); ok {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("%d of 300 requests from one /64 allowed, want the burst of 5", allowed)
	}
}

func TestAllowBytesDoesNotAllocate(t *testing.T) {
	l := ratelimit.New(1e9, 1<<30)
	var kb [40]byte
	l.AllowBytes(ratelimit.ClientKey(kb[:0], "2001:db8::1", 0))
	allocs := testing.AllocsPerRun(100, func() {
		var kb [40]byte
		l.AllowBytes(ratelimit.ClientKey(kb[:0], "2001:db8::1", 0))
		l.AllowBytes(ratelimit.ClientKey(kb[:0], "203.0.113.7", 0))
	})
	if allocs != 0 {
		t.Errorf("%.0f allocations for keys seen before, want 0", allocs)
	}
}

func TestRefund(t *testing.T) {
	l := ratelimit.New(1.0/60, 2, ratelimit.WithClock(newClock().Now))
	l.Allow("a")
	l.Allow("a")
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("third Allow with burst 2 allowed")
	}
	l.Refund("a")
	if ok, _ := l.Allow("a"); !ok {
		t.Error("Allow after a Refund refused")
	}
	for range 5 {
		l.Refund("a") // never beyond the burst
	}
	l.Allow("a")
	l.Allow("a")
	if ok, _ := l.Allow("a"); ok {
		t.Error("refunds grew the bucket beyond its burst")
	}
}

func TestLogin(t *testing.T) {
	t.Run("correct passwords do not count", func(t *testing.T) {
		g := ratelimit.NewLogin(newClock().Now)
		for range 50 {
			if ok, _, by := g.AllowUser("admin", "a"); !ok {
				t.Fatalf("refused by %s", by)
			}
			g.Done("admin", "a", true)
		}
	})
	t.Run("pair, then user ceiling", func(t *testing.T) {
		c := newClock()
		g := ratelimit.NewLogin(c.Now)
		fail := func(addr string) (bool, string) {
			ok, _, by := g.AllowUser("admin", addr)
			if ok {
				g.Done("admin", addr, false)
			}
			return ok, by
		}
		for range ratelimit.LoginPairBurst {
			fail("a")
		}
		if ok, by := fail("a"); ok || by != "pair" {
			t.Errorf("after the pair's burst: ok %v by %q, want refused by pair", ok, by)
		}
		// A refusal by the user ceiling takes nothing from the pair.
		for i := range ratelimit.LoginUserBurst - ratelimit.LoginPairBurst {
			fail(fmt.Sprint("x", i))
		}
		if ok, by := fail("fresh"); ok || by != "user" {
			t.Errorf("after the user's burst: ok %v by %q, want refused by user", ok, by)
		}
		if ok, _ := fail("fresh"); ok {
			t.Error("the user ceiling let an attempt through")
		}
		c.Advance(time.Minute) // 10 user tokens, 5 pair tokens
		for i := range 10 {
			if ok, by := fail("fresh"); ok != (i < 5) {
				t.Errorf("attempt %d a minute later: ok %v (by %q)", i, ok, by)
			}
		}
	})
}
